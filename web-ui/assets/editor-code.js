// The code editor: a <textarea> whose text is transparent over a highlighted copy of it
// (toml.js), with a gutter of line numbers, the current line and an error line marked.
// Editing stays the browser's own (undo, selection, IME, spell-check off); this only draws.

import { highlightLines } from './toml.js';

const INDENT = '  ';

export class CodeEditor {
  /**
   * Wraps `textarea` (already in the page) in the editor's frame. `onChange(text)` runs
   * after every edit, `onCursor({line, column})` after every caret move.
   */
  constructor(textarea, { onChange = () => {}, onCursor = () => {} } = {}) {
    this.textarea = textarea;
    this.onChange = onChange;
    this.onCursor = onCursor;
    this.errorLine = null;
    this.activeLine = 0;
    this.lineCount = 0;
    this.frame = document.createElement('div');
    this.frame.className = 'code';
    this.gutter = document.createElement('div');
    this.gutter.className = 'gutter';
    this.gutter.setAttribute('aria-hidden', 'true');
    this.numbers = document.createElement('div');
    this.numbers.className = 'gutter-inner';
    this.gutter.append(this.numbers);
    this.body = document.createElement('div');
    this.body.className = 'code-body';
    this.layer = document.createElement('pre');
    this.layer.className = 'hl';
    this.layer.setAttribute('aria-hidden', 'true');
    textarea.replaceWith(this.frame);
    this.body.append(this.layer, textarea);
    this.frame.append(this.gutter, this.body);
    textarea.spellcheck = false;
    textarea.setAttribute('autocapitalize', 'off');
    textarea.setAttribute('autocomplete', 'off');
    textarea.wrap = 'off';

    let queued = false;
    textarea.addEventListener('input', () => {
      if (!queued) {
        queued = true;
        requestAnimationFrame(() => { queued = false; this.render(); });
      }
      this.onChange(this.value);
    });
    textarea.addEventListener('scroll', () => this.syncScroll());
    textarea.addEventListener('keydown', e => this.keydown(e));
    for (const type of ['keyup', 'click', 'select', 'focus']) {
      textarea.addEventListener(type, () => this.cursorMoved());
    }
    document.addEventListener('selectionchange', () => {
      if (document.activeElement === textarea) this.cursorMoved();
    });
    this.gutter.addEventListener('wheel', e => { textarea.scrollTop += e.deltaY; e.preventDefault(); }, { passive: false });
    this.render();
  }

  get value() { return this.textarea.value; }

  /** Replaces the whole text (not an edit: no onChange, undo starts over). */
  set value(text) {
    this.textarea.value = text;
    this.render();
  }

  set readOnly(on) {
    this.textarea.readOnly = on;
    this.frame.classList.toggle('readonly', on);
    this.frame.dispatchEvent(new CustomEvent('readonly', { bubbles: true, detail: on }));
  }

  get readOnly() { return this.textarea.readOnly; }

  focus() { this.textarea.focus({ preventScroll: true }); }

  /** Redraws the highlighted layer and the gutter from the text. */
  render() {
    const lines = highlightLines(this.textarea.value);
    if (this.errorLine && lines[this.errorLine - 1]) lines[this.errorLine - 1].classList.add('error');
    const active = lines[this.activeLine];
    if (active) active.classList.add('active');
    this.layer.replaceChildren(...lines);
    if (lines.length !== this.lineCount) {
      this.lineCount = lines.length;
      const numbers = [];
      for (let i = 1; i <= lines.length; i++) {
        const div = document.createElement('div');
        div.textContent = i;
        numbers.push(div);
      }
      this.numbers.replaceChildren(...numbers);
      this.frame.style.setProperty('--gutter-digits', String(String(lines.length).length));
    }
    this.markLines();
    this.syncScroll();
  }

  markLines() {
    const rows = this.numbers.children;
    for (const row of this.numbers.querySelectorAll('.error-line, .active')) row.classList.remove('error-line', 'active');
    if (this.errorLine && rows[this.errorLine - 1]) rows[this.errorLine - 1].classList.add('error-line');
    if (rows[this.activeLine]) rows[this.activeLine].classList.add('active');
  }

  syncScroll() {
    const { scrollTop, scrollLeft } = this.textarea;
    this.layer.style.transform = `translate(${-scrollLeft}px, ${-scrollTop}px)`;
    this.numbers.style.transform = `translateY(${-scrollTop}px)`;
  }

  /** The caret: `{offset, line, column}`, line and column from 1. */
  cursor() {
    const offset = this.textarea.selectionStart;
    const before = this.textarea.value.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return { offset, line, column };
  }

  cursorMoved() {
    const { line, column } = this.cursor();
    if (line - 1 !== this.activeLine) {
      const lines = this.layer.children;
      lines[this.activeLine]?.classList.remove('active');
      this.activeLine = line - 1;
      lines[this.activeLine]?.classList.add('active');
      this.markLines();
    }
    this.onCursor({ line, column });
  }

  /** Marks `line` (from 1) as the line of an error, or clears the mark with null. */
  markError(line) {
    this.errorLine = line || null;
    const lines = this.layer.children;
    for (const l of this.layer.querySelectorAll('.ln.error')) l.classList.remove('error');
    if (this.errorLine && lines[this.errorLine - 1]) lines[this.errorLine - 1].classList.add('error');
    this.markLines();
  }

  /** Briefly highlights `line` (from 1), e.g. a line just inserted. */
  flash(line) {
    requestAnimationFrame(() => {
      const row = this.layer.children[line - 1];
      if (!row) return;
      row.classList.add('flash');
      setTimeout(() => row.classList.remove('flash'), 1600);
    });
  }

  /** Moves the caret to `line`, `column` (from 1) and scrolls it into the middle of the view. */
  goTo(line, column = 1) {
    const lines = this.textarea.value.split('\n');
    const l = Math.min(Math.max(line, 1), lines.length);
    let offset = 0;
    for (let i = 0; i < l - 1; i++) offset += lines[i].length + 1;
    offset += Math.min(Math.max(column - 1, 0), lines[l - 1].length);
    this.focus();
    this.textarea.setSelectionRange(offset, offset);
    const lineHeight = parseFloat(getComputedStyle(this.textarea).lineHeight) || 20;
    this.textarea.scrollTop = Math.max(0, (l - 1) * lineHeight - this.textarea.clientHeight / 2 + lineHeight);
    this.cursorMoved();
    this.syncScroll();
  }

  /**
   * Replaces `start`..`end` with `text` as an edit (undoable where the browser allows),
   * then puts the caret at `caret` (an offset in the new text; default after the insertion).
   */
  replace(start, end, text, caret = start + text.length) {
    const ta = this.textarea;
    ta.focus({ preventScroll: true });
    ta.setSelectionRange(start, end);
    // execCommand keeps the browser's undo history; setRangeText is the fallback.
    let done = false;
    try { done = document.execCommand('insertText', false, text); } catch { done = false; }
    if (!done || ta.value.slice(start, start + text.length) !== text) {
      ta.setRangeText(text, start, end, 'end');
      ta.dispatchEvent(new Event('input', { bubbles: true }));
    }
    ta.setSelectionRange(caret, caret);
    this.cursorMoved();
  }

  keydown(e) {
    const ta = this.textarea;
    if (ta.readOnly) return;
    const { selectionStart: start, selectionEnd: end, value } = ta;
    if (e.key === 'Tab' && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      const lineStart = value.lastIndexOf('\n', start - 1) + 1;
      if (start === end && !e.shiftKey) {
        this.replace(start, end, INDENT);
        return;
      }
      // Indent or dedent every line of the selection.
      const blockEnd = end > start && value[end - 1] === '\n' ? end - 1 : end;
      const block = value.slice(lineStart, blockEnd);
      const lines = block.split('\n');
      const changed = lines.map(l => (e.shiftKey ? l.replace(/^ {1,2}|^\t/, '') : INDENT + l)).join('\n');
      this.replace(lineStart, blockEnd, changed, lineStart + changed.length);
      const first = e.shiftKey ? Math.max(lineStart, start - (lines[0].length - lines[0].replace(/^ {1,2}|^\t/, '').length)) : start + INDENT.length;
      ta.setSelectionRange(start === end ? first : Math.min(first, lineStart + changed.length), lineStart + changed.length);
      return;
    }
    if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && !e.altKey && !e.shiftKey) {
      // Keep the line's indentation, one step more after an opening bracket.
      const lineStart = value.lastIndexOf('\n', start - 1) + 1;
      const line = value.slice(lineStart, start);
      let indent = /^[ \t]*/.exec(line)[0];
      const trimmed = line.replace(/\s+$/, '');
      if (/[[{(]$/.test(trimmed)) indent += INDENT;
      if (indent) {
        e.preventDefault();
        const next = value[end];
        if (/[[{(]$/.test(trimmed) && (next === ']' || next === '}' || next === ')')) {
          const outer = indent.slice(INDENT.length);
          this.replace(start, end, '\n' + indent + '\n' + outer, start + 1 + indent.length);
        } else {
          this.replace(start, end, '\n' + indent);
        }
      }
      return;
    }
    if ((e.ctrlKey || e.metaKey) && e.key === '/') {
      // Toggle `# ` comments on the selected lines.
      e.preventDefault();
      const lineStart = value.lastIndexOf('\n', start - 1) + 1;
      let lineEnd = value.indexOf('\n', end > start && value[end - 1] === '\n' ? end - 1 : end);
      if (lineEnd < 0) lineEnd = value.length;
      const lines = value.slice(lineStart, lineEnd).split('\n');
      const commented = lines.filter(l => l.trim()).every(l => /^\s*#/.test(l));
      const changed = lines.map(l => {
        if (!l.trim()) return l;
        return commented ? l.replace(/^(\s*)# ?/, '$1') : l.replace(/^(\s*)/, '$1# ');
      }).join('\n');
      this.replace(lineStart, lineEnd, changed, lineStart + changed.length);
    }
  }
}
