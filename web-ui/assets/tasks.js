// Task search: filters kept in the URL's query (shareable, the back button works), newest
// first, "Older →" pages with the API's cursor.
import { api, el, topBar, fmtNum, fmtTime, fmtAgo, fmtMs, params } from '/assets/ui.js';

const LIMIT = 50;
const FILTERS = ['project', 'status', 'url', 'error'];
const $ = id => document.getElementById(id);
/** A timing of the track: integer milliseconds, so 0 means under one. */
const ms = v => (v === 0 ? '<1 ms' : fmtMs(v));
const input = name => $('filter-' + name);
const body = () => document.querySelector('table#tasks tbody');
let loadSeq = 0;
let nextCursor = null;

const taskHref = t => '/tasks/' + encodeURIComponent(t.project) + '/' + encodeURIComponent(t.taskid);
const isWeb = url => /^https?:\/\//i.test(url || '');

/** The filters and cursor of the page's URL. */
function query() {
  const q = params();
  const out = {};
  for (const k of [...FILTERS, 'before']) if (q.get(k)) out[k] = q.get(k);
  return out;
}

function fillForm(q) {
  for (const k of FILTERS) {
    const node = input(k);
    const value = q[k] || '';
    if (node.tagName === 'SELECT' && value && ![...node.options].some(o => o.value === value)) {
      node.append(el('option', { value }, value));
    }
    node.value = value;
  }
}

function formQuery() {
  const out = {};
  for (const k of FILTERS) {
    const v = input(k).value.trim();
    if (v) out[k] = v;
  }
  return out;
}

function urlFor(q) {
  const s = new URLSearchParams();
  for (const k of [...FILTERS, 'before']) if (q[k]) s.set(k, q[k]);
  const text = s.toString();
  return '/tasks' + (text ? '?' + text : '');
}

/** Shows `q`: pushes it on the history (unless it came from there) and loads its rows. */
function go(q, { push = true, page = 1 } = {}) {
  if (push) {
    const url = urlFor(q);
    if (url !== location.pathname + location.search) history.pushState({ page }, '', url);
    else history.replaceState({ page }, '', url);
  }
  load(q);
}

function statusBadge(t) {
  const status = String(t.status || '').toLowerCase();
  const kind = t.track && t.track.error_kind;
  let title = 'status: ' + (status || '?');
  if (status === 'active' && t.claimed) title += ' (a fetcher holds it now)';
  const badge = el('span', { class: 'badge st-' + status, title }, status || '?');
  if (status === 'active' && kind) {
    return [badge, ' ', el('span', { class: 'chip warn', title: `the last attempt failed (${kind}); it is queued again` }, 'retry')];
  }
  return badge;
}

function timeCell(t) {
  const tr = t.track;
  if (!tr || (tr.fetch_ms === null && tr.process_ms === null)) return el('td', { class: 'num faint' }, '–');
  const total = (tr.fetch_ms || 0) + (tr.process_ms || 0);
  return el('td', { class: 'num', title: `fetch ${ms(tr.fetch_ms)} + process ${ms(tr.process_ms)} = ${ms(total)}` },
    ms(tr.fetch_ms), el('span', { class: 'faint proc-part' }, ' + ' + ms(tr.process_ms)));
}

function lastCrawlCell(t, now) {
  if (t.last_crawl_ms) {
    return el('td', { class: 'num', title: 'last crawl ' + fmtTime(t.last_crawl_ms) + '\nupdated ' + fmtTime(t.updated_ms) }, fmtAgo(t.last_crawl_ms, now));
  }
  const due = t.exetime && t.exetime > now ? 'due ' + fmtAgo(t.exetime, now) : 'not crawled yet';
  return el('td', { class: 'num faint', title: (t.exetime ? 'due ' + fmtTime(t.exetime) + '\n' : '') + 'updated ' + fmtTime(t.updated_ms) }, due);
}

function row(t, now) {
  const tr = t.track || {};
  const code = tr.status_code;
  const error = t.last_error
    ? el('td', { class: 'err', title: t.last_error },
      tr.error_kind ? el('span', {}, el('span', { class: 'chip bad' }, tr.error_kind), ' ', t.last_error) : el('span', {}, t.last_error))
    : el('td', { class: 'err faint' }, tr.error_kind ? el('span', { class: 'chip bad' }, tr.error_kind) : '');
  return el('tr', { dataset: { taskid: t.taskid, project: t.project } },
    el('td', { class: 'nowrap' }, statusBadge(t)),
    el('td', { class: 'proj', title: t.project },
      el('a', { href: '/projects/' + encodeURIComponent(t.project), title: 'Open ' + t.project + ' in the editor' }, t.project)),
    el('td', { class: 'url mono' }, el('div', { class: 'url-line' },
      el('a', { href: taskHref(t), title: t.url + '\n' + t.taskid, class: 'url-text' }, t.url),
      isWeb(t.url) ? el('a', { href: t.url, class: 'ext', target: '_blank', rel: 'noopener noreferrer', title: 'Open the URL in a new tab' }, '↗') : null)),
    el('td', { class: 'mono' }, t.callback || '–'),
    lastCrawlCell(t, now),
    timeCell(t),
    el('td', { class: 'num' }, tr.follows ? '+' + fmtNum(tr.follows) : el('span', { class: 'faint' }, tr.follows === 0 ? '0' : '–')),
    el('td', { class: 'num' }, code ? el('span', { class: code >= 400 ? 'code bad' : code >= 300 ? 'code warn' : 'code' }, String(code)) : el('span', { class: 'faint' }, '–')),
    el('td', { class: 'num' + (t.retries ? '' : ' faint') }, fmtNum(t.retries || 0)),
    error);
}

function state(kind, title, text, action) {
  body().replaceChildren(el('tr', {}, el('td', { colspan: 10 }, el('div', { class: 'state ' + kind },
    el('div', { class: 'state-icon' }, kind === 'error' ? '!' : '∅'),
    el('div', { class: 'state-title' }, title), el('div', {}, text), action || null))));
}

async function load(q) {
  const seq = ++loadSeq;
  fillForm(q);
  $('older').disabled = true;
  $('newest').disabled = !q.before;
  $('count').textContent = '';
  const skeleton = () => el('tr', { class: 'loading-row' }, Array.from({ length: 10 }, () => el('td', {}, el('span', { class: 'skeleton' }))));
  body().replaceChildren(...Array.from({ length: 8 }, skeleton));
  const search = new URLSearchParams({ ...q, limit: String(LIMIT) });
  let answer;
  try {
    answer = await api('/api/tasks?' + search);
  } catch (e) {
    if (seq !== loadSeq) return;
    state('error', 'Could not load tasks', e.message,
      el('button', { class: 'btn', type: 'button', onclick: () => load(q) }, 'Try again'));
    return;
  }
  if (seq !== loadSeq) return;
  const tasks = answer.tasks || [];
  nextCursor = answer.next || null;
  $('older').disabled = !nextCursor;
  const page = (history.state && history.state.page) || 1;
  if (!tasks.length) {
    const filtered = FILTERS.some(k => q[k]);
    state('empty', q.before ? 'No older tasks' : filtered ? 'No task matches these filters' : 'No tasks yet',
      q.before ? 'You reached the oldest task.' : filtered ? 'Try a wider search.' : 'Tasks appear once a project runs.',
      filtered && !q.before ? el('button', { class: 'btn', type: 'button', onclick: () => go({}) }, 'Clear filters') : null);
    return;
  }
  const now = Date.now();
  body().replaceChildren(...tasks.map(t => row(t, now)));
  $('count').textContent = `${tasks.length} task${tasks.length === 1 ? '' : 's'}` + (q.before ? ` · page ${page}` : '') +
    (nextCursor ? '' : ' · the oldest');
}

async function loadProjects() {
  try {
    const projects = await api('/api/projects');
    const select = input('project');
    const current = select.value;
    const names = projects.map(p => p.name).sort((a, b) => a.localeCompare(b));
    select.replaceChildren(el('option', { value: '' }, 'All projects'), ...names.map(n => el('option', { value: n }, n)));
    if (current && !names.includes(current)) select.append(el('option', { value: current }, current));
    select.value = current;
  } catch (e) { /* the filter keeps what it has; the table shows its own error */ }
}

function start() {
  topBar('tasks');
  const q = query();
  fillForm(q);
  history.replaceState({ page: (history.state && history.state.page) || 1 }, '', location.href);
  loadProjects();
  load(q);
  for (const k of ['project', 'status', 'error']) input(k).addEventListener('change', () => go(formQuery()));
  input('url').addEventListener('keydown', e => { if (e.key === 'Enter') { e.preventDefault(); go(formQuery()); } });
  input('url').addEventListener('change', () => { if (input('url').value.trim() !== (query().url || '')) go(formQuery()); });
  input('url').addEventListener('search', () => { if (!input('url').value && query().url) go(formQuery()); });
  $('filters').addEventListener('submit', e => { e.preventDefault(); go(formQuery()); });
  $('clear-filters').addEventListener('click', () => go({}));
  $('older').addEventListener('click', () => {
    if (!nextCursor) return;
    const page = ((history.state && history.state.page) || 1) + 1;
    go({ ...formQueryFromUrl(), before: nextCursor }, { page });
    scrollTo({ top: 0 });
  });
  $('newest').addEventListener('click', () => go(formQueryFromUrl()));
  $('refresh').addEventListener('click', () => load(query()));
  addEventListener('popstate', () => load(query()));
}
const formQueryFromUrl = () => { const q = query(); delete q.before; return q; };
start();
