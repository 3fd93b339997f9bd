// The selector helper in the preview: hover outlines an element, a click proposes the
// shortest selector for its place in the page (selector.js), every match is highlighted, and
// the element's path is shown as chips whose features can be switched on and off.
//
// The preview document has no scripts (sandbox without allow-scripts); the listeners here
// belong to this page and are attached to the iframe's document (same origin through
// allow-same-origin). Highlighting is one <style> element in that document.

import { el } from './ui.js';
import { proposeSelector, selectorFor, countMatches, suggestName, widenings } from './selector.js';

const HOVER = 'data-spindle-hover';
const PICKED = 'data-spindle-picked';
const STYLE_ID = 'spindle-helper-style';

export class SelectorHelper {
  /**
   * `ui`: the DOM hooks (iframe, toggle, panel, input, count, chips, hoverInfo, copy, field,
   * follow); `onField(name, selector)` and `onFollow(selector, element)` insert the rules.
   */
  constructor(ui, { onField, onFollow }) {
    this.ui = ui;
    this.onField = onField;
    this.onFollow = onFollow;
    this.enabled = false;
    this.doc = null;
    this.picked = null;
    this.parts = null;
    this.ancestors = [];
    ui.toggle.addEventListener('click', () => this.setEnabled(!this.enabled));
    ui.input.addEventListener('input', () => { this.parts = null; this.renderChips(); this.update(); });
    ui.input.addEventListener('keydown', e => { if (e.key === 'Escape') this.setEnabled(false); });
    ui.copy.addEventListener('click', async () => {
      try { await navigator.clipboard.writeText(ui.input.value); ui.copy.textContent = 'Copied'; }
      catch { ui.input.select(); document.execCommand('copy'); ui.copy.textContent = 'Copied'; }
      setTimeout(() => { ui.copy.textContent = 'Copy'; }, 1200);
    });
    ui.field.addEventListener('click', () => {
      const selector = ui.input.value.trim();
      if (!selector) return;
      const name = prompt('Field name (item.NAME):', this.picked ? suggestName(this.picked) : 'field');
      if (name && name.trim()) this.onField(name.trim(), selector);
    });
    ui.follow.addEventListener('click', () => {
      const selector = ui.input.value.trim();
      if (selector) this.onFollow(selector, this.picked);
    });
  }

  /** Turns picking on or off. */
  setEnabled(on) {
    this.enabled = on;
    this.ui.toggle.setAttribute('aria-pressed', String(on));
    this.ui.toggle.classList.toggle('on', on);
    this.ui.panel.hidden = !on;
    if (!on) this.clearHover();
    this.update();
    if (on && !this.ui.input.value) this.ui.count.textContent = 'click an element in the page';
  }

  /** Hooks into the preview's document after each load. */
  attach() {
    const doc = this.ui.iframe.contentDocument;
    if (!doc || !doc.documentElement) return;
    this.doc = doc;
    this.picked = null;
    this.ancestors = [];
    const style = doc.createElement('style');
    style.id = STYLE_ID;
    (doc.head || doc.documentElement).append(style);
    doc.addEventListener('mouseover', e => this.hover(e.target), true);
    doc.addEventListener('mouseout', () => this.clearHover(), true);
    doc.addEventListener('click', e => this.click(e), true);
    doc.addEventListener('auxclick', e => e.preventDefault(), true);
    doc.addEventListener('submit', e => e.preventDefault(), true);
    doc.addEventListener('keydown', e => {
      if (e.key === 'Escape' && this.enabled) this.setEnabled(false);
      // The page's shortcuts (save, run) work with the focus in the preview too.
      if ((e.ctrlKey || e.metaKey) && (e.key === 's' || e.key === 'Enter')) {
        e.preventDefault();
        document.dispatchEvent(new KeyboardEvent('keydown', { key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, bubbles: true }));
      }
    });
    if (this.ui.input.value) {
      // The selector of the previous page, tried on this one.
      this.parts = null;
      this.renderChips();
    }
    this.update();
  }

  hover(target) {
    const element = target && target.nodeType === 1 ? target : target && target.parentElement;
    if (!element) return;
    const link = element.closest('a[href]');
    this.ui.hoverInfo.textContent = link ? link.href : '';
    if (!this.enabled) return;
    this.clearHover();
    if (element.localName === 'html' || element.localName === 'body') return;
    element.setAttribute(HOVER, '');
    this.ui.hoverInfo.textContent = describe(element) + (link ? '  →  ' + link.href : '');
  }

  clearHover() {
    if (!this.doc) return;
    for (const e of this.doc.querySelectorAll('[' + HOVER + ']')) e.removeAttribute(HOVER);
  }

  click(e) {
    const target = e.target && e.target.nodeType === 1 ? e.target : e.target && e.target.parentElement;
    // The preview never navigates: links, buttons and forms do nothing here.
    if (target && target.closest('a, button, input[type=submit], input[type=image], label, summary')) e.preventDefault();
    if (!this.enabled || !target) return;
    e.preventDefault();
    e.stopPropagation();
    if (target.localName === 'html' || target.localName === 'body') return;
    this.pick(target);
  }

  /** Proposes the selector of `element` and shows it. */
  pick(element) {
    if (this.picked) this.picked.removeAttribute(PICKED);
    this.picked = element;
    element.setAttribute(PICKED, '');
    this.ancestors = [];
    for (let e = element; e && e.nodeType === 1 && e.localName !== 'body' && e.localName !== 'html'; e = e.parentElement) this.ancestors.unshift(e);
    this.exclude = new Set();
    this.propose();
  }

  /** Proposes the selector of the picked element, without the features left out so far. */
  propose() {
    const proposal = proposeSelector(this.picked, this.doc, undefined, this.exclude);
    this.parts = proposal.parts;
    this.wider = widenings(this.picked, this.doc, this.exclude);
    this.ui.input.value = proposal.selector;
    this.renderChips();
    this.update();
  }

  /** The path chips: one group per element, one toggle per feature. */
  renderChips() {
    const chips = this.ui.chips;
    if (!this.parts) {
      chips.replaceChildren(this.picked || !this.ui.input.value ? '' : el('span', { class: 'chips-hint' }, 'Click an element in the page to see its path.'));
      return;
    }
    const groups = [];
    this.parts.forEach((node, i) => {
      if (i) groups.push(el('span', { class: 'chip-sep', 'aria-hidden': 'true' }, '›'));
      const used = node.features.some(f => f.on);
      groups.push(el('span', {
        class: 'chip-node' + (used ? ' used' : '') + (i === this.parts.length - 1 ? ' target' : ''),
        onmouseenter: () => { this.clearHover(); this.ancestors[i]?.setAttribute(HOVER, ''); },
        onmouseleave: () => this.clearHover(),
      }, node.features.map(f => el('button', {
        type: 'button',
        class: 'feat feat-' + f.kind + (f.on ? ' on' : ''),
        'aria-pressed': String(!!f.on),
        title: (f.on ? 'Used: click to leave out ' : 'Not used: click to require ') + f.text,
        onclick: () => { f.on = !f.on; this.ui.input.value = selectorFor(this.parts); this.renderChips(); this.update(); },
      }, f.text))));
    });
    if (this.wider && this.wider.length) {
      groups.push(el('span', { class: 'widen' }, el('span', { class: 'widen-label' }, 'similar:'),
        this.wider.map(w => el('button', {
          type: 'button', class: 'widen-btn', title: `Leave ${w.text} out of the element's path: ${w.count} elements`,
          onclick: () => { this.exclude.add(w.key); this.propose(); },
        }, 'without ', el('code', {}, w.text), ' → ' + w.count))));
    }
    chips.replaceChildren(...groups);
    // Keep the clicked element's end of the path in view.
    chips.scrollLeft = chips.scrollWidth;
  }

  /** Recounts the selector's matches and redraws the highlight. */
  update() {
    const style = this.doc && this.doc.getElementById(STYLE_ID);
    const selector = this.ui.input.value.trim();
    const count = this.ui.count;
    count.classList.remove('bad', 'warn');
    let rules = this.enabled ? 'html, html * { cursor: crosshair !important; }' : '';
    if (this.enabled && selector && this.doc) {
      const n = countMatches(selector, this.doc);
      if (n < 0 || /[{}]/.test(selector)) {
        count.textContent = 'not a valid selector';
        count.classList.add('bad');
      } else {
        count.textContent = n === 1 ? '1 match' : n + ' matches';
        if (!n) count.classList.add('bad');
        else if (this.picked && !this.picked.matches(selector)) { count.textContent += ' (not the clicked one)'; count.classList.add('warn'); }
        // :where() takes the selector's specificity away, so the hover and picked marks win.
        rules += `\n:where(${selector}) { outline: 2px solid #f08c00 !important; outline-offset: -1px !important; background-color: rgba(255, 200, 40, .28) !important; }`;
      }
    }
    if (this.enabled) rules += `\n[${HOVER}] { outline: 2px dashed #3b5bdb !important; outline-offset: 1px !important; }`;
    if (this.enabled && this.picked) rules += `\n[${PICKED}] { outline: 2px solid #c2255c !important; outline-offset: 2px !important; }`;
    if (this.enabled && !selector) {
      count.textContent = 'click an element in the page';
    }
    if (style) style.textContent = rules;
    this.ui.field.disabled = !selector;
    this.ui.follow.disabled = !selector;
    this.ui.copy.disabled = !selector;
  }
}

/** `tag#id.class` of an element, for the hover line. */
function describe(element) {
  const id = element.getAttribute('id');
  const classes = (element.getAttribute('class') || '').trim().split(/\s+/).filter(Boolean).slice(0, 3);
  return element.localName + (id ? '#' + id : '') + classes.map(c => '.' + c).join('');
}
