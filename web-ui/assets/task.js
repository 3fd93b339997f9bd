// One task: status, URL, timings of its last fetch, its last error and the whole task as a
// collapsible JSON tree; re-run it in the debugger or cancel it. Also exports the JSON tree
// and copy helpers for the results page (the page code runs only on the task page).
import { api, el, topBar, toast, fmtNum, fmtTime, fmtAgo, fmtMs, canEdit } from '/assets/ui.js';

/* ---------------- JSON tree (shared with results.js) ---------------- */

function primitive(value) {
  if (value === null || value === undefined) return el('span', { class: 'j-null' }, 'null');
  if (typeof value === 'string') return el('span', { class: 'j-str' }, JSON.stringify(value));
  if (typeof value === 'number') return el('span', { class: 'j-num' }, String(value));
  if (typeof value === 'boolean') return el('span', { class: 'j-bool' }, String(value));
  return el('span', {}, String(value));
}

function node(value, key, depth, last, openDepth) {
  const keyPart = key === undefined ? [] : [el('span', { class: 'j-key' }, JSON.stringify(key)), ': '];
  const comma = last ? '' : ',';
  const isObject = value !== null && typeof value === 'object';
  const entries = isObject ? (Array.isArray(value) ? value.map(v => [undefined, v]) : Object.entries(value)) : [];
  if (!isObject || !entries.length) {
    const text = isObject ? (Array.isArray(value) ? '[]' : '{}') : null;
    return el('div', { class: 'jt-line' }, keyPart, text ? el('span', { class: 'j-punct' }, text) : primitive(value), comma);
  }
  const isArray = Array.isArray(value);
  const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
  const n = entries.length;
  return el('details', { class: 'jt', open: depth < openDepth },
    el('summary', {}, keyPart, el('span', { class: 'j-punct' }, open),
      el('span', { class: 'jt-closed' }, '…' + close + comma,
        el('span', { class: 'jt-count' }, ` ${fmtNum(n)} ${isArray ? (n === 1 ? 'item' : 'items') : (n === 1 ? 'key' : 'keys')}`))),
    el('div', { class: 'jt-body' }, entries.map(([k, v], i) => node(v, k, depth + 1, i === n - 1, openDepth))),
    el('div', { class: 'jt-line jt-end' }, el('span', { class: 'j-punct' }, close), comma));
}

/** A JSON value as a tree of collapsible objects and arrays (open to `openDepth` levels). */
export function jsonTree(value, openDepth = 3) {
  return el('div', { class: 'json-tree' }, node(value, undefined, 0, true, openDepth));
}

/** Opens or closes every object of a tree built by jsonTree. */
export function setTreeOpen(tree, open) {
  for (const d of tree.querySelectorAll('details.jt')) d.open = open;
}

/** Copies text to the clipboard (with a fallback where the Clipboard API is not available). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    const area = el('textarea', { class: 'offscreen', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (err) { ok = false; }
    area.remove();
    return ok;
  }
}

/** A card with a JSON tree, its copy / expand / collapse buttons. */
export function jsonCard(title, value, { openDepth = 3, collapsed = false } = {}) {
  const tree = jsonTree(value, openDepth);
  const copy = el('button', { class: 'btn sm ghost', type: 'button' }, 'Copy');
  copy.addEventListener('click', async e => {
    e.preventDefault();
    const ok = await copyText(JSON.stringify(value, null, 2));
    toast(ok ? title + ' copied' : 'Copy failed: select the text instead', ok ? 'ok' : 'error');
  });
  const expand = el('button', { class: 'btn sm ghost', type: 'button', onclick: e => { e.preventDefault(); details.open = true; setTreeOpen(tree, true); } }, 'Expand all');
  const fold = el('button', { class: 'btn sm ghost', type: 'button', onclick: e => { e.preventDefault(); setTreeOpen(tree, false); tree.querySelector('details.jt').open = true; } }, 'Collapse');
  const details = el('details', { class: 'collapsible card json-card', open: !collapsed },
    el('summary', { class: 'card-head' }, el('h2', {}, title), el('div', { class: 'meta' }, expand, fold, copy)),
    el('div', { class: 'card-body' }, tree));
  return details;
}

/* ---------------- the task page ---------------- */

const $ = id => document.getElementById(id);
/** A timing of the track: integer milliseconds, so 0 means under one. */
const ms = v => (v === 0 ? '<1 ms' : fmtMs(v));
const isWeb = url => /^https?:\/\//i.test(url || '');

function fact(label, value, title) {
  return el('div', {}, el('div', { class: 'k' }, label), el('div', { class: 'v', title: title || (typeof value === 'string' ? value : null) }, value));
}

function whenCell(ms, now) {
  if (!ms) return el('span', { class: 'faint' }, '–');
  return el('span', { title: fmtTime(ms) }, fmtAgo(ms, now));
}

function render(t, editable) {
  const now = Date.now();
  const task = t.task || {};
  const track = t.track;
  document.title = `${t.callback || 'task'} · ${t.project} · Spindle`;
  $('crumbs').replaceChildren(el('a', { href: '/tasks' }, 'Tasks'), ' › ',
    el('a', { href: '/tasks?project=' + encodeURIComponent(t.project) }, t.project), ' › ',
    el('span', { class: 'mono' }, t.taskid));
  $('title').replaceChildren(el('span', { class: 'mono handler' }, t.callback || 'task'),
    el('span', { class: 'faint task-of' }, ' of '), el('a', { href: '/projects/' + encodeURIComponent(t.project) }, t.project));
  const status = String(t.status || '').toLowerCase();
  $('status').replaceChildren(el('span', { class: 'badge st-' + status }, status || '?'),
    t.claimed ? el('span', { class: 'badge st-info plain', title: 'A fetcher holds the task right now' }, 'claimed') : '');
  $('url').replaceChildren(
    isWeb(t.url) ? el('a', { href: t.url, target: '_blank', rel: 'noopener noreferrer', title: 'Open the URL in a new tab' }, t.url, ' ↗')
      : el('span', {}, t.url));

  const rerun = document.querySelector('button.rerun');
  rerun.classList.remove('hidden');
  rerun.onclick = () => { location.href = '/projects/' + encodeURIComponent(t.project) + '?taskid=' + encodeURIComponent(t.taskid); };
  const cancel = document.querySelector('button.cancel');
  cancel.classList.toggle('hidden', !editable || status === 'bad');
  cancel.onclick = () => cancelTask(t);

  const cards = [];
  cards.push(el('section', { class: 'card' },
    el('div', { class: 'card-head' }, el('h2', {}, 'Overview')),
    el('div', { class: 'facts-grid' },
      fact('Claimed', t.claimed ? 'by a fetcher now' : 'no'),
      fact('Handler', el('span', { class: 'mono' }, t.callback || '–'), t.callback),
      fact('Priority', fmtNum(t.priority ?? task.priority ?? 0)),
      fact('Retries', fmtNum(t.retries ?? task.retries ?? 0)),
      fact('Last crawl', whenCell(t.last_crawl_ms, now)),
      fact('Updated', whenCell(t.updated_ms, now)),
      fact('Due (exetime)', t.exetime ? whenCell(t.exetime, now) : el('span', { class: 'faint' }, 'now')),
      fact('Depth', task.depth === undefined ? '–' : fmtNum(task.depth)),
      fact('Task id', el('span', { class: 'mono' }, t.taskid), t.taskid),
      fact('Project', el('a', { href: '/projects/' + encodeURIComponent(t.project) }, t.project), t.project),
      fact('Method', task.fetch && task.fetch.method ? task.fetch.method : 'GET'),
      fact('Forced', task.force ? 'yes' : 'no'))));

  if (t.last_error) {
    cards.push(el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', {}, 'Last error'),
        track && track.error_kind ? el('span', { class: 'chip bad' }, track.error_kind) : ''),
      el('div', { class: 'card-body' }, el('pre', { class: 'error-box' }, t.last_error))));
  }

  cards.push(trackCard(track));
  cards.push(jsonCard('Task', t.task !== undefined ? t.task : t, { openDepth: 3 }));
  const rest = { ...t };
  delete rest.task;
  cards.push(jsonCard('Stored row', rest, { openDepth: 2, collapsed: true }));
  $('content').replaceChildren(...cards);
}

function trackCard(track) {
  const head = el('div', { class: 'card-head' }, el('h2', {}, 'Last attempt'));
  if (!track) {
    return el('section', { class: 'card' }, head, el('div', { class: 'state' },
      el('div', { class: 'state-title' }, 'Not fetched yet'), 'The task waits in the queue; its figures show after its first fetch.'));
  }
  const f = track.fetch_ms, p = track.process_ms;
  const total = (f || 0) + (p || 0);
  const ok = !track.error_kind;
  head.append(el('div', { class: 'meta' }, ok ? el('span', { class: 'badge st-success' }, 'ok')
    : el('span', { class: 'badge st-failed' }, track.error_kind)));
  const code = track.status_code;
  const timing = el('div', { class: 'timing', title: `fetch ${ms(f)} + process ${ms(p)}` },
    el('span', { class: 'fetch' }), el('span', { class: 'process' }));
  timing.children[0].style.flexGrow = f || 0;
  timing.children[1].style.flexGrow = p || 0;
  return el('section', { class: 'card' }, head,
    el('div', { class: 'facts-grid' },
      fact('HTTP status', code ? el('span', { class: code >= 400 ? 'code bad' : code >= 300 ? 'code warn' : 'code' }, String(code)) : '–'),
      fact('Fetch', ms(f)),
      fact('Process', ms(p)),
      fact('Total', ms(total)),
      fact('Follows', track.follows === null || track.follows === undefined ? '–' : '+' + fmtNum(track.follows)),
      fact('Items', track.items === null || track.items === undefined ? '–' : fmtNum(track.items)),
      fact('Error kind', track.error_kind || el('span', { class: 'faint' }, 'none')),
      fact('Outcome', ok ? 'fetched and processed' : 'failed')),
    el('div', { class: 'card-body timing-wrap' }, timing,
      el('div', { class: 'legend' }, el('span', {}, el('span', { class: 'swatch pages' }), ' fetch ' + ms(f)),
        el('span', {}, el('span', { class: 'swatch process' }), ' process ' + ms(p)))));
}

async function cancelTask(t) {
  if (!confirm(`Cancel this task of ${t.project}?\n\n${t.url}\n\nIt is marked bad and taken off the queue.`)) return;
  const button = document.querySelector('button.cancel');
  button.disabled = true;
  try {
    await api(`/api/tasks/${encodeURIComponent(t.project)}/${encodeURIComponent(t.taskid)}/cancel`, { method: 'POST' });
    toast('Task cancelled');
    await load();
  } catch (e) {
    toast('Not cancelled: ' + e.message, 'error');
  } finally {
    button.disabled = false;
  }
}

function where() {
  const parts = location.pathname.split('/').filter(Boolean); // ["tasks", project, taskid]
  if (parts.length < 3 || parts[0] !== 'tasks') return null;
  try {
    return { project: decodeURIComponent(parts[1]), taskid: decodeURIComponent(parts.slice(2).join('/')) };
  } catch (e) {
    return null;
  }
}

async function load() {
  const at = where();
  if (!at) {
    showError('Not a task address', 'Task pages live at /tasks/PROJECT/TASKID.');
    return;
  }
  let editable = false;
  try { editable = await canEdit(); } catch (e) { editable = false; }
  try {
    const t = await api(`/api/tasks/${encodeURIComponent(at.project)}/${encodeURIComponent(at.taskid)}`);
    render(t, editable);
  } catch (e) {
    $('crumbs').replaceChildren(el('a', { href: '/tasks' }, 'Tasks'), ' › ',
      el('a', { href: '/tasks?project=' + encodeURIComponent(at.project) }, at.project));
    $('title').textContent = 'Task';
    $('url').replaceChildren(el('span', { class: 'mono' }, at.taskid));
    if (e.status === 404) showError('No such task', `${at.project} has no task ${at.taskid} (or the project is unknown).`);
    else showError('Could not load the task', e.message, true);
  }
}

function showError(title, text, retry) {
  $('content').replaceChildren(el('section', { class: 'card' }, el('div', { class: 'state error' },
    el('div', { class: 'state-icon' }, '!'), el('div', { class: 'state-title' }, title), el('div', {}, text),
    retry ? el('button', { class: 'btn', type: 'button', onclick: load }, 'Try again')
      : el('a', { class: 'btn', href: '/tasks' }, 'All tasks'))));
}

if (document.body.dataset.page === 'task') {
  topBar('tasks');
  load();
}
