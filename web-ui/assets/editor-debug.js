// The debugger's answer, drawn in its tabs: items, follows, logs, timings, html, preview.
// Everything from the crawled page or the server goes in as text; the page itself goes only
// into the sandboxed preview iframe (no scripts: no allow-scripts, every <script> removed, a
// CSP meta that forbids scripts), through `srcdoc`.

import { el, fmtMs } from './ui.js';
import { formatHtml, renderLines } from './htmlview.js';

/** Bytes as "12.3 KB". */
export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  return (n / 1024 / 1024).toFixed(2) + ' MB';
}

const ms = fmtMs;

/** A JSON value as highlighted, indented text (a <pre> of spans). */
export function jsonView(value, className = 'json') {
  const text = JSON.stringify(value, null, 2) ?? 'undefined';
  const pre = el('pre', { class: className });
  const re = /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    if (m[1]) {
      pre.append(el('span', { class: m[2] ? 'j-key' : 'j-str' }, m[1]));
      if (m[2]) pre.append(m[2]);
    } else if (m[3]) {
      pre.append(el('span', { class: m[3] === 'null' ? 'j-null' : 'j-bool' }, m[3]));
    } else {
      pre.append(el('span', { class: 'j-num' }, m[4]));
    }
    last = re.lastIndex;
  }
  pre.append(text.slice(last));
  return pre;
}

/** One value of an item, as a node: strings as text, links for http(s) URLs, JSON for the rest. */
function valueNode(v) {
  if (v === null || v === undefined) return el('span', { class: 'v-null', title: 'no value' }, 'null');
  if (typeof v === 'string') {
    if (/^https?:\/\/\S+$/.test(v) && v.length < 2000) {
      return el('a', { class: 'v-str v-url', href: v, target: '_blank', rel: 'noopener noreferrer' }, v);
    }
    if (v === '') return el('span', { class: 'v-null' }, '""');
    return el('span', { class: 'v-str' }, v.length > 2000 ? v.slice(0, 2000) + '… (' + v.length + ' characters)' : v);
  }
  if (typeof v === 'number') return el('span', { class: 'v-num' }, String(v));
  if (typeof v === 'boolean') return el('span', { class: 'v-bool' }, String(v));
  if (Array.isArray(v) && v.every(x => x === null || typeof x !== 'object') && v.length <= 50) {
    return el('span', { class: 'v-list' }, v.length ? v.map(x => el('span', { class: 'v-chip' }, valueNode(x))) : el('span', { class: 'v-null' }, '[]'));
  }
  return jsonView(v, 'json inline');
}

/** The items tab: one card per item, a key/value table or its raw JSON. */
export function renderItems(into, report, { raw = false, fields = [], onErrors } = {}) {
  const items = report.items || [];
  into.replaceChildren();
  const errors = report.errors || [];
  if (errors.length) {
    into.append(el('div', { class: 'callout bad' },
      el('strong', {}, errors.length === 1 ? 'Error: ' : `${errors.length} errors: `), String(errors[0]).slice(0, 300),
      onErrors ? el('button', { type: 'button', class: 'link', onclick: onErrors }, ' See the logs') : null));
  }
  if (report.dropped) {
    into.append(el('div', { class: 'callout warn' },
      `${report.dropped} item(s) dropped: a required or key field was empty (the logs say which).`));
  }
  if (report.items_replaced) {
    into.append(el('div', { class: 'callout warn' },
      `${report.items_replaced} item(s) replaced by later ones with the same key: the store keeps one per key.`));
  }
  if (report.form_values_literal) {
    into.append(el('div', { class: 'callout warn' },
      `${report.form_values_literal} form value(s) sent as written: they start with $ but name no page value (the logs say which; write $$ for a literal $).`));
  }
  if (!items.length) {
    into.append(el('div', { class: 'empty' }, el('strong', {}, 'No items'),
      el('span', {}, 'This handler emitted no item on this page. Add item.NAME fields, or pick a value in the preview with the selector helper.')));
    return;
  }
  items.forEach((item, i) => {
    const data = item.data ?? {};
    const keys = typeof data === 'object' && data !== null && !Array.isArray(data) ? Object.keys(data) : [];
    const body = raw || !keys.length
      ? jsonView(data)
      : el('table', { class: 'item-kv' }, el('tbody', {}, keys.map(k => el('tr', { class: data[k] === null ? 'is-null' : null },
        el('th', { scope: 'row' }, k), el('td', {}, valueNode(data[k]))))));
    const missing = fields.filter(f => keys.length && !keys.includes(f));
    into.append(el('article', { class: 'item-card' },
      el('header', {},
        el('span', { class: 'item-no' }, '#' + (i + 1)),
        el('span', { class: 'item-url', title: item.url || '' }, item.url || ''),
        el('span', { class: 'item-id', title: 'item key (task id)' }, (item.taskid || '').slice(0, 12))),
      body,
      missing.length ? el('div', { class: 'item-missing' }, 'not in this item: ' + missing.join(', ')) : null));
  });
}

/** A short summary of a follow's own options (priority, depth, save, method, fetch). */
function followMeta(task) {
  const bits = [];
  if (task.priority) bits.push('priority ' + task.priority);
  if (task.depth !== undefined) bits.push('depth ' + task.depth);
  if (task.save && Object.keys(task.save).length) bits.push('save: ' + Object.keys(task.save).join(', '));
  if (task.fetch && task.fetch.method && task.fetch.method !== 'GET') bits.push(task.fetch.method);
  if (task.force) bits.push('force');
  return bits.join(' · ');
}

/** A URL with its origin dimmed, so that the paths of a list read at a glance. */
function urlNode(url) {
  const m = /^(https?:\/\/[^/?#]+)(.*)$/.exec(url || '');
  return el('span', { class: 'f-url', title: url }, m ? [el('span', { class: 'f-origin' }, m[1]), m[2] || '/'] : url);
}

/** A log line with its `code` spans set apart. */
function logText(text) {
  return el('span', { class: 'log-text' }, text.split(/(`[^`\n]+`)/).map(part =>
    /^`[^`]+`$/.test(part) ? el('code', {}, part.slice(1, -1)) : part));
}

/**
 * The follows tab: `callback › URL` rows, one `li` per follow, each expanding to its task
 * JSON, with a ▶ to run it; `bar` gets the filter, `extra` the empty state and "show more".
 */
export function renderFollows(list, bar, extra, report, { notes, onPlay, canRun = true, limit = 300 }) {
  const follows = report.follows || [];
  list.replaceChildren();
  bar.replaceChildren();
  extra.replaceChildren();
  // The rules' warnings are about follows (a value read once for the page and given to every
  // link), so they stand above the list they concern.
  notes.replaceChildren(...(report.warnings || []).map(w =>
    el('div', { class: 'callout warn' }, el('strong', {}, 'Warning: '), String(w))));
  if (!follows.length) {
    extra.append(el('div', { class: 'empty' }, el('strong', {}, 'No follows'),
      el('span', {}, 'This handler queued no link on this page. Add a follow rule, or pick links in the preview with the selector helper.')));
    return;
  }
  const byCallback = new Map();
  for (const f of follows) byCallback.set(f.callback, (byCallback.get(f.callback) || 0) + 1);
  const filter = el('input', { type: 'search', class: 'input filter', placeholder: `Filter ${follows.length} follows…`, 'aria-label': 'Filter follows' });
  bar.append(filter, el('span', { class: 'by-callback' },
    [...byCallback].map(([cb, n]) => el('button', { class: 'cb-chip', type: 'button', title: 'Show only ' + cb, onclick: () => { filter.value = filter.value === cb ? '' : cb; draw(); } },
      el('span', { class: 'callback' }, cb), ' ', String(n)))));
  const row = (task, i) => {
    let json = null;
    const li = el('li', { class: 'follow' });
    const toggle = () => {
      if (!json) { json = jsonView(task, 'json task-json'); li.append(json); } else json.hidden = !json.hidden;
      li.classList.toggle('open', !json.hidden);
    };
    li.append(
      el('button', { class: 'play', type: 'button', title: canRun ? `Run this follow: ${task.callback} on ${task.url}` : 'Debugger runs need the admin role', disabled: !canRun, onclick: e => { e.stopPropagation(); onPlay(task, i); } }, '▶'),
      el('div', { class: 'f-main', role: 'button', tabindex: '0', title: 'Show the task', onclick: toggle, onkeydown: e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } } },
        el('span', { class: 'callback' }, task.callback),
        el('span', { class: 'sep' }, '›'),
        urlNode(task.url),
        el('span', { class: 'f-meta' }, followMeta(task))));
    return li;
  };
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = follows.map((f, i) => [f, i]).filter(([f]) => !q || f.callback.toLowerCase() === q || f.url.toLowerCase().includes(q));
    list.replaceChildren(...shown.slice(0, limit).map(([f, i]) => row(f, i)));
    list.hidden = !shown.length;
    extra.replaceChildren();
    if (shown.length > limit) {
      extra.append(el('div', { class: 'more' }, el('button', { class: 'btn sm', type: 'button', onclick: () => { limit += 1000; draw(); } }, `Show more (${shown.length - limit} left)`)));
    }
    if (!shown.length) extra.append(el('div', { class: 'empty' }, el('span', {}, 'No follow matches the filter.')));
  };
  filter.addEventListener('input', draw);
  draw();
}

/** The logs tab: errors first (red), then the handler's log lines. */
export function renderLogs(into, report) {
  const errors = report.errors || [];
  const logs = report.logs || [];
  into.replaceChildren();
  if (!errors.length && !logs.length) {
    into.append(el('div', { class: 'empty' }, el('strong', {}, 'No log lines'), el('span', {}, 'Follow rules log what they found; scripts log with log(…).')));
    return;
  }
  for (const e of errors) into.append(el('div', { class: 'log error' }, el('span', { class: 'log-kind' }, 'error'), logText(String(e))));
  for (const l of logs) {
    const text = typeof l === 'string' ? l : JSON.stringify(l);
    into.append(el('div', { class: 'log' + (/dropped|skipped|failed|^warning:|replaced by later|sent as written/.test(text) ? ' warn' : '') }, el('span', { class: 'log-kind' }, 'log'), logText(text)));
  }
}

/** The timings tab: fetch and process time, status, type, size, final URL. */
export function renderTimings(into, report, request) {
  const page = report.page || {};
  const t = report.timings || {};
  const fetch = Number(t.fetch_ms) || 0;
  const process = Number(t.process_ms) || 0;
  const total = fetch + process || 1;
  const statusClass = !page.status ? 'bad' : page.status < 300 ? 'ok' : page.status < 400 ? 'info' : 'bad';
  const stat = (label, value, cls) => el('div', { class: 'stat ' + (cls || '') }, el('div', { class: 'stat-label' }, label), el('div', { class: 'stat-value' }, value));
  into.replaceChildren(
    el('div', { class: 'stats' },
      stat('Fetch', ms(fetch)),
      stat('Process', ms(process)),
      stat('HTTP status', page.status ? String(page.status) : 'no answer', 'status-' + statusClass),
      stat('Size', fmtBytes(page.body_len))),
    el('div', { class: 'timebar', title: `fetch ${ms(fetch)}, process ${ms(process)}` },
      el('span', { class: 'tb-fetch', dataset: { w: String(fetch / total) } }),
      el('span', { class: 'tb-process', dataset: { w: String(process / total) } })),
    el('div', { class: 'tb-legend' },
      el('span', {}, el('i', { class: 'tb-fetch' }), 'fetch ' + Math.round((fetch / total) * 100) + '%'),
      el('span', {}, el('i', { class: 'tb-process' }), 'process ' + Math.round((process / total) * 100) + '%')),
    el('table', { class: 'details' }, el('tbody', {},
      el('tr', {}, el('th', {}, 'Content type'), el('td', {}, page.content_type || '–')),
      el('tr', {}, el('th', {}, 'Final URL'), el('td', { class: 'mono' }, page.url || '–')),
      request.url !== page.url ? el('tr', {}, el('th', {}, 'Requested URL'), el('td', { class: 'mono' }, report.url || request.url || '–')) : null,
      el('tr', {}, el('th', {}, 'Handler'), el('td', { class: 'mono' }, report.handler || '–')),
      el('tr', {}, el('th', {}, 'Body'), el('td', {}, report.body === null || report.body === undefined ? 'not shown (not text)' : report.body_truncated ? 'cut at 2 MiB for the debugger' : 'complete')))));
  for (const span of into.querySelectorAll('.timebar span')) span.style.flexGrow = span.dataset.w;
}

/** Whether the answer's body is JSON (by type or by look): the parsed value, or undefined. */
export function jsonBody(report) {
  const body = report.body;
  if (typeof body !== 'string') return undefined;
  const type = (report.page && report.page.content_type) || '';
  if (!/json/i.test(type) && !/^\s*[[{]/.test(body)) return undefined;
  try { return JSON.parse(body); } catch { return undefined; }
}

const isHtml = report => /html|xml/i.test((report.page && report.page.content_type) || '') || /^\s*</.test(report.body || '');

/** The html tab: the page source indented and highlighted (JSON pretty-printed). */
export function renderSource(into, report) {
  into.replaceChildren();
  if (typeof report.body !== 'string') {
    into.append(el('div', { class: 'empty' }, el('strong', {}, 'No page source'), el('span', {}, report.page && report.page.status ? 'The body is not text (' + (report.page.content_type || 'unknown type') + ').' : 'The fetch failed: see the logs.')));
    return;
  }
  if (report.body_truncated) into.append(el('div', { class: 'callout' }, 'The body is cut at 2 MiB here (the handler saw all of it).'));
  const json = jsonBody(report);
  if (json !== undefined) { into.append(jsonView(json, 'json source')); return; }
  const box = el('div', { class: 'source' + (isHtml(report) ? '' : ' plain') });
  into.append(box);
  if (isHtml(report)) renderLines(formatHtml(report.body), box);
  else renderLines(report.body.split('\n').map(l => ({ depth: 0, parts: [['text', l]] })), box);
}

/**
 * The document shown in the preview: the page with a `<base href>` first in its head (the
 * page's own base resolved against its URL), a CSP meta forbidding scripts, and every
 * script, refresh, frame and event-handler attribute removed.
 */
export function previewDocument(body, pageUrl) {
  const doc = new DOMParser().parseFromString(body, 'text/html');
  let base = pageUrl;
  const own = doc.querySelector('base[href]');
  if (own) { try { base = new URL(own.getAttribute('href'), pageUrl).href; } catch { /* keep the page URL */ } }
  for (const node of doc.querySelectorAll('script, noscript, base, iframe, frame, frameset, object, embed, applet, meta[http-equiv], link[rel~="import"], link[rel~="preload"][as="script"], link[rel~="modulepreload"]')) node.remove();
  for (const node of doc.querySelectorAll('*')) {
    for (const attr of [...node.attributes]) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on') || ((name === 'href' || name === 'src' || name === 'action' || name === 'formaction') && /^\s*javascript:/i.test(attr.value))) node.removeAttribute(attr.name);
    }
  }
  const head = doc.head || doc.documentElement.insertBefore(doc.createElement('head'), doc.body);
  const csp = doc.createElement('meta');
  csp.setAttribute('http-equiv', 'Content-Security-Policy');
  csp.setAttribute('content', "script-src 'none'; object-src 'none'; frame-src 'none'");
  const baseEl = doc.createElement('base');
  baseEl.setAttribute('href', base);
  head.prepend(baseEl, csp);
  return '<!DOCTYPE html>\n' + doc.documentElement.outerHTML;
}

/** Fills the preview: the page in the sandboxed iframe, or JSON / text beside it. */
export function renderPreview(iframe, alt, report) {
  const json = jsonBody(report);
  alt.replaceChildren();
  if (typeof report.body !== 'string' || json !== undefined || !isHtml(report)) {
    iframe.hidden = true;
    iframe.removeAttribute('srcdoc');
    alt.hidden = false;
    if (json !== undefined) alt.append(jsonView(json, 'json source'));
    else if (typeof report.body === 'string') alt.append(el('pre', { class: 'plain-text' }, report.body));
    else alt.append(el('div', { class: 'empty' }, el('strong', {}, 'Nothing to preview'), el('span', {}, 'The page has no text body.')));
    return false;
  }
  alt.hidden = true;
  iframe.hidden = false;
  iframe.srcdoc = previewDocument(report.body, (report.page && report.page.url) || report.url);
  return true;
}
