// A project's items: a column per field, values shortened to ~100 characters, the whole item
// in a side panel on click, "Next →" pages with the API's key cursor, and the exports.
import { api, el, topBar, toast, fmtNum, params } from '/assets/ui.js';
import { jsonTree, copyText } from '/assets/task.js';

const SIZES = [20, 50, 100, 200];
const MAX_CELL = 100;
const $ = id => document.getElementById(id);
const isWeb = url => /^https?:\/\//i.test(url || '');
const enc = encodeURIComponent;
let seq = 0;
let view = null; // {project, items, rows, selected}

function query() {
  const q = params();
  const limit = Number(q.get('limit'));
  return { project: q.get('project') || '', after: q.get('after') || '', limit: SIZES.includes(limit) ? limit : 20 };
}

function urlFor(q) {
  const s = new URLSearchParams();
  if (q.project) s.set('project', q.project);
  if (q.after) s.set('after', q.after);
  if (q.limit && q.limit !== 20) s.set('limit', String(q.limit));
  const text = s.toString();
  return '/results' + (text ? '?' + text : '');
}

function go(q, state = {}) {
  history.pushState(state, '', urlFor(q));
  load(q);
}

/** A value as short text for a cell: strings as they are, other values as compact JSON. */
function cellText(value) {
  if (value === undefined) return { text: '', kind: 'null' };
  if (value === null) return { text: 'null', kind: 'null' };
  if (typeof value === 'string') return { text: value, kind: 'string' };
  if (typeof value === 'number') return { text: String(value), kind: 'number' };
  if (typeof value === 'boolean') return { text: String(value), kind: 'json' };
  return { text: JSON.stringify(value), kind: 'json' };
}
const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + '…' : text);

/* ---------------- project picker ---------------- */

async function picker() {
  $('total').textContent = '';
  $('exports').replaceChildren();
  $('project-select').classList.add('hidden');
  document.title = 'Results · Spindle';
  let projects;
  try {
    projects = await api('/api/projects');
  } catch (e) {
    return failed('Could not load the projects', e.message, picker);
  }
  if (!projects.length) {
    return $('content').replaceChildren(el('section', { class: 'card' }, el('div', { class: 'state' },
      el('div', { class: 'state-icon' }, '◎'), el('div', { class: 'state-title' }, 'No projects yet'),
      el('div', {}, 'Items show here once a project has run.'), el('a', { class: 'btn primary', href: '/projects/new' }, '+ New project'))));
  }
  projects.sort((a, b) => (b.items || 0) - (a.items || 0) || a.name.localeCompare(b.name));
  $('content').replaceChildren(el('section', { class: 'card' },
    el('div', { class: 'card-head' }, el('h2', {}, 'Choose a project'), el('div', { class: 'meta' }, `${projects.length} projects`)),
    el('div', { class: 'project-picker', id: 'project-picker' }, projects.map(p => el('a', { href: '/results?project=' + enc(p.name), title: p.name },
      el('span', { class: 'pname' }, p.name),
      el('span', { class: 'pmeta' },
        el('span', { class: 'badge st-' + String(p.status).toLowerCase() }, p.status),
        p.group ? el('span', { class: 'chip' }, p.group) : '',
        el('span', { class: 'items' }, fmtNum(p.items || 0) + ' items')))))));
}

/* ---------------- items ---------------- */

async function fillProjectSelect(current) {
  const select = $('project-select');
  try {
    const projects = await api('/api/projects');
    const names = projects.map(p => p.name).sort((a, b) => a.localeCompare(b));
    if (!names.includes(current)) names.unshift(current);
    select.replaceChildren(...names.map(n => el('option', { value: n }, n)));
    select.value = current;
    select.classList.remove('hidden');
  } catch (e) { select.classList.add('hidden'); }
}

function exportsFor(project) {
  const link = (format, label, hint) => el('a', {
    class: 'btn export', href: `/api/results/${enc(project)}/export.${format}`, download: `${project}.${format}`,
    dataset: { format }, title: hint,
  }, label);
  $('exports').replaceChildren(el('span', { class: 'faint small export-label' }, 'Export'),
    el('div', { class: 'btn-group' },
      link('jsonl', 'JSON Lines', 'One JSON object per line, every item'),
      link('json', 'JSON', 'One JSON array of every item'),
      link('csv', 'CSV', 'A header of the fields, one row per item')));
}

async function load(q) {
  const mine = ++seq;
  closeDrawer();
  if (!q.project) return picker();
  document.title = `${q.project} · Results · Spindle`;
  exportsFor(q.project);
  if ($('project-select').value !== q.project) fillProjectSelect(q.project);
  const card = $('content').querySelector('section.card.results-card');
  if (card) card.classList.add('busy');
  else $('content').replaceChildren(el('section', { class: 'card' }, el('div', { class: 'state' }, el('span', { class: 'spinner' }), ' Loading items…')));
  const search = new URLSearchParams({ project: q.project, limit: String(q.limit) });
  if (q.after) search.set('after', q.after);
  let answer;
  try {
    answer = await api('/api/results?' + search);
  } catch (e) {
    if (mine !== seq) return;
    if (e.status === 404) {
      $('exports').replaceChildren();
      return failed('Unknown project', `There is no project “${q.project}”.`, null);
    }
    return failed('Could not load the items', e.message, () => load(q));
  }
  if (mine !== seq) return;
  render(q, answer);
}

function render(q, answer) {
  const items = answer.items || [];
  const fields = (answer.fields && answer.fields.length ? answer.fields : [...new Set(items.flatMap(i => Object.keys(i.data || {})))]);
  // Row numbers need the offset of the page, known when it was reached from the first one.
  const known0 = !q.after ? 0 : (history.state && typeof history.state.offset === 'number' ? history.state.offset : null);
  const offset = known0 || 0;
  $('total').textContent = `${fmtNum(answer.total)} item${answer.total === 1 ? '' : 's'}`;
  const known = new Set(fields);
  const hasExtra = items.some(i => i.data && typeof i.data === 'object' && Object.keys(i.data).some(k => !known.has(k)));
  const urlHead = fields.includes('url') ? 'page url' : 'url';

  // A column whose values are all numbers is right-aligned.
  const numeric = new Set(fields.filter(f => {
    const values = items.map(i => (i.data || {})[f]).filter(v => v !== null && v !== undefined);
    return values.length && values.every(v => typeof v === 'number');
  }));
  const head = el('tr', {}, el('th', { class: 'rownum num' }, '#'), el('th', {}, urlHead),
    fields.map(f => el('th', { title: f, class: numeric.has(f) ? 'num' : null }, f)), hasExtra ? el('th', { title: 'keys outside the project’s fields' }, '…') : null);
  const rows = items.map((item, i) => {
    const data = item.data && typeof item.data === 'object' ? item.data : { value: item.data };
    const cells = fields.map(f => {
      const { text, kind } = cellText(data[f]);
      return el('td', { class: numeric.has(f) ? 'fcell num' : 'fcell', dataset: { field: f } },
        el('span', { class: 'cell ' + kind, title: text.length > MAX_CELL ? clip(text, 2000) : (text || null) }, clip(text, MAX_CELL)));
    });
    const extra = hasExtra ? Object.keys(data).filter(k => !known.has(k)) : [];
    const tr = el('tr', { class: 'clickable', tabindex: '0', dataset: { taskid: item.taskid || '' } },
      el('td', { class: 'rownum num faint' }, known0 === null ? '' : fmtNum(offset + i + 1)),
      el('td', { class: 'url mono' }, el('div', { class: 'url-line' },
        item.taskid ? el('a', { class: 'url-text', href: `/tasks/${enc(q.project)}/${enc(item.taskid)}`, title: item.url + '\nOpen its task' }, item.url || item.taskid)
          : el('span', { class: 'url-text', title: item.url }, item.url || '–'),
        isWeb(item.url) ? el('a', { href: item.url, class: 'ext', target: '_blank', rel: 'noopener noreferrer', title: 'Open the URL in a new tab' }, '↗') : null)),
      cells,
      hasExtra ? el('td', { class: 'faint small', title: extra.join(', ') }, extra.length ? '+' + extra.length : '') : null);
    tr.addEventListener('click', e => { if (!e.target.closest('a')) openDrawer(i); });
    tr.addEventListener('keydown', e => { if (e.key === 'Enter') openDrawer(i); });
    return tr;
  });

  const table = el('table', { id: 'results', class: 'grid' }, el('thead', {}, head),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: fields.length + 2 }, el('div', { class: 'state' },
      el('div', { class: 'state-icon' }, '∅'),
      el('div', { class: 'state-title' }, q.after ? 'No more items' : 'No items yet'),
      q.after ? 'You reached the last page.' : 'Items appear here as the project’s handlers produce them.')))));

  const from = items.length ? offset + 1 : 0;
  const pageInfo = !items.length ? '' : known0 === null ? `${fmtNum(items.length)} of ${fmtNum(answer.total)}`
    : `${fmtNum(from)}–${fmtNum(offset + items.length)} of ${fmtNum(answer.total)}`;
  const next = el('button', { class: 'btn sm next', type: 'button', disabled: !answer.next }, 'Next →');
  next.addEventListener('click', () => {
    go({ ...q, after: answer.next }, { offset: known0 === null ? null : offset + items.length, prev: (history.state && history.state.prev || []).concat([q.after || '']) });
    scrollTo({ top: 0 });
  });
  const first = el('button', { class: 'btn sm first', type: 'button', disabled: !q.after }, '« First');
  first.addEventListener('click', () => go({ ...q, after: '' }, { offset: 0 }));
  const prev = el('button', { class: 'btn sm prev', type: 'button', disabled: !q.after }, '← Previous');
  prev.addEventListener('click', () => {
    const stack = (history.state && history.state.prev) || [];
    if (stack.length) go({ ...q, after: stack[stack.length - 1] }, { offset: Math.max(0, offset - q.limit), prev: stack.slice(0, -1) });
    else go({ ...q, after: '' }, { offset: 0 });
  });
  const size = el('select', { class: 'page-size', 'aria-label': 'Items per page' }, SIZES.map(n => el('option', { value: n }, n + ' per page')));
  size.value = String(q.limit);
  size.addEventListener('change', () => go({ ...q, after: '', limit: Number(size.value) }, { offset: 0 }));

  $('content').replaceChildren(el('section', { class: 'card results-card' },
    el('div', { class: 'table-wrap results-wrap' }, table),
    el('div', { class: 'pager' }, el('span', { class: 'page-info' }, pageInfo),
      el('span', { class: 'faint' }, items.length ? '· click a row for the whole item' : ''),
      el('div', { class: 'right' }, size, first, prev, next))));
  view = { project: q.project, items, rows, selected: null };
}

function failed(title, text, retry) {
  $('content').replaceChildren(el('section', { class: 'card' }, el('div', { class: 'state error' },
    el('div', { class: 'state-icon' }, '!'), el('div', { class: 'state-title' }, title), el('div', {}, text),
    retry ? el('button', { class: 'btn', type: 'button', onclick: retry }, 'Try again') : el('a', { class: 'btn', href: '/results' }, 'All projects'))));
}

/* ---------------- side panel ---------------- */

let drawer = null;
function openDrawer(index) {
  if (!view || !view.items[index]) return;
  const item = view.items[index];
  if (view.selected !== null && view.rows[view.selected]) view.rows[view.selected].classList.remove('selected');
  view.selected = index;
  view.rows[index].classList.add('selected');
  view.rows[index].scrollIntoView({ block: 'nearest' });
  const copy = el('button', { class: 'btn sm', type: 'button' }, 'Copy JSON');
  copy.addEventListener('click', async () => {
    const ok = await copyText(JSON.stringify(item.data, null, 2));
    toast(ok ? 'Item copied' : 'Copy failed: select the text instead', ok ? 'ok' : 'error');
  });
  const close = el('button', { class: 'btn sm ghost close', type: 'button', title: 'Close (Esc)', 'aria-label': 'Close' }, '✕');
  close.addEventListener('click', closeDrawer);
  const up = el('button', { class: 'btn sm ghost', type: 'button', title: 'Previous item (↑)', disabled: index === 0 }, '↑');
  up.addEventListener('click', () => openDrawer(index - 1));
  const down = el('button', { class: 'btn sm ghost', type: 'button', title: 'Next item (↓)', disabled: index === view.items.length - 1 }, '↓');
  down.addEventListener('click', () => openDrawer(index + 1));
  const panel = el('aside', { class: 'drawer', role: 'dialog', 'aria-label': 'Item', id: 'item-panel' },
    el('div', { class: 'drawer-head' },
      el('div', { class: 'drawer-title' }, el('h2', {}, 'Item'), el('div', { class: 'faint small mono' }, item.taskid || '')),
      el('div', { class: 'actions' }, up, down, copy, close)),
    el('div', { class: 'drawer-body' },
      el('dl', { class: 'kv' },
        el('dt', {}, 'url'), el('dd', { class: 'mono' }, isWeb(item.url)
          ? el('a', { href: item.url, target: '_blank', rel: 'noopener noreferrer' }, item.url, ' ↗') : (item.url || '–')),
        el('dt', {}, 'task'), el('dd', {}, item.taskid
          ? el('a', { href: `/tasks/${enc(view.project)}/${enc(item.taskid)}`, class: 'mono' }, item.taskid) : '–')),
      el('div', { class: 'section-title drawer-section' }, 'Data'),
      jsonTree(item.data, 4)));
  if (drawer) drawer.panel.replaceWith(panel);
  else {
    const backdrop = el('div', { class: 'backdrop' });
    backdrop.addEventListener('click', closeDrawer);
    document.body.append(backdrop, panel);
    drawer = { backdrop, panel };
  }
  drawer.panel = panel;
  close.focus({ preventScroll: true });
}

function closeDrawer() {
  if (!drawer) return;
  drawer.backdrop.remove();
  drawer.panel.remove();
  drawer = null;
  if (view && view.selected !== null && view.rows[view.selected]) {
    view.rows[view.selected].classList.remove('selected');
    view.rows[view.selected].focus({ preventScroll: true });
  }
  if (view) view.selected = null;
}

document.addEventListener('keydown', e => {
  if (!drawer || !view) return;
  if (e.key === 'Escape') { e.preventDefault(); closeDrawer(); }
  else if (e.key === 'ArrowDown' && view.selected < view.items.length - 1) { e.preventDefault(); openDrawer(view.selected + 1); }
  else if (e.key === 'ArrowUp' && view.selected > 0) { e.preventDefault(); openDrawer(view.selected - 1); }
});

/* ---------------- start ---------------- */

topBar('results');
$('project-select').addEventListener('change', e => go({ project: e.target.value, after: '', limit: query().limit }, { offset: 0 }));
addEventListener('popstate', () => load(query()));
if (!history.state) history.replaceState({ offset: 0 }, '', location.href);
load(query());
