// The project editor and debugger: /projects/NAME and /projects/new.
//
// Left: the project file (editor-code.js) with Check, Save, Start, Download, Delete and the
// problems of the last check. Right: the debugger, which runs one step of the project as
// edited (POST /api/debug) and shows its answer in tabs (editor-debug.js); follows run as
// the next step, the steps stay in a breadcrumb, and the preview's selector helper
// (editor-selector.js) writes rules into the file (editor-insert.js).

import { api, el, topBar, toast, canEdit, params } from './ui.js';
import { CodeEditor } from './editor-code.js';
import { insertField, insertFollow, handlerNames, firstStartUrl, outline } from './editor-insert.js';
import * as view from './editor-debug.js';
import { SelectorHelper } from './editor-selector.js';

const $ = id => document.getElementById(id);
const enc = encodeURIComponent;
/** Replaces the children of `node`, skipping null and false (replaceChildren would print them). */
const fill = (node, ...children) => node.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined && c !== false));

const TEMPLATE = (name, url) => `# A Spindle project: start URLs and extraction rules.
# Check it, try a step on the right (Ctrl+Enter), then Save.
name = "${name}"
start = ["${url}"]
rate = 1                       # requests per second
# allow_private = true         # needed to crawl localhost or private addresses

[defaults]
age = "1d"                     # crawl a known page again after a day

# The start URLs run \`start\`: follow links to other pages and take an item.
[handlers.start]
follow = [
  { css = "a[href]", callback = "detail", max_depth = 1 },
]
item.title = { css = "title" }
item.url = "$url"

# The linked pages run \`detail\`.
[handlers.detail]
item.title = { css = "h1", required = true }
item.url = "$url"
`;

const state = {
  name: null,          // the project's stored name; null for a new one
  isNew: false,
  status: null,
  saved: '',           // the text as last loaded or saved
  admin: false,
  saveable: false,     // Save allowed (admin, and the file writable)
  handlers: [],        // from the last successful check
  fields: [],
  steps: [],           // debugger steps: {request, report, label}
  current: -1,
  run: null,           // the AbortController of the step running
  checkSeq: 0,
  autoCheck: true,
  tab: 'items',
  tabChosen: false,    // the user picked a tab: keep it from step to step
  rawItems: false,
};

let editor;
let helper;

// ---------------------------------------------------------------- editor side

function setDirty() {
  const dirty = editor.value !== state.saved;
  $('dirty').hidden = !dirty;
  document.title = (dirty ? '● ' : '') + (state.name || 'New project') + ' · Spindle';
  $('download').title = dirty ? 'Download the saved project file (without your unsaved changes)' : 'Download the saved project file';
  return dirty;
}

/** Shows the status of an API answer about the project (`status`, and `startable`: whether
 * setting it RUNNING changes anything, as the server's rules say). */
function setStatus(answer) {
  const status = answer && answer.status;
  state.status = status || null;
  const badge = $('project-status');
  badge.hidden = !status;
  badge.textContent = status || '';
  badge.className = 'badge st-' + String(status || '').toLowerCase();
  $('start').hidden = !(state.admin && !state.isNew && answer && answer.startable === true);
}

/** A notice above the editor (`kind`: info, warn, error); `id` replaces a notice of the same id. */
function notice(id, kind, ...content) {
  const box = $('notices');
  box.querySelector(`[data-id="${id}"]`)?.remove();
  if (!content.length) return null;
  const node = el('div', { class: 'ed-notice ' + kind, dataset: { id } }, ...content,
    el('button', { type: 'button', class: 'close', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: () => node.remove() }, '×'));
  box.append(node);
  return node;
}

/** An error message without the position it may start with ("line 5, column 8: …", "file:5:8: …"). */
const withoutPosition = message => String(message || 'error').replace(/^(?:line \d+, column \d+|[^\s:]*:\d+:\d+):\s*/, '');

/** Shows a check or save error at its line: the problems line, the gutter mark, the caret. */
function showProblem(problem, { move = true } = {}) {
  const box = $('problems');
  const where = problem.line ? `line ${problem.line}, column ${problem.column || 1}: ` : '';
  problem = { ...problem, error: withoutPosition(problem.error) };
  box.className = 'problems has-error';
  box.replaceChildren(el('button', {
    type: 'button', class: 'problem error', title: problem.line ? 'Go to the line' : null,
    onclick: () => problem.line && editor.goTo(problem.line, problem.column || 1),
  }, el('span', { class: 'p-icon' }, '✕'), el('span', { class: 'p-text' }, where + (problem.error || 'error'))));
  editor.markError(problem.line || null);
  if (move && problem.line) editor.goTo(problem.line, problem.column || 1);
}

function showCheckOk(result) {
  const box = $('problems');
  editor.markError(null);
  box.className = 'problems ok';
  const jump = name => {
    const header = outline(editor.value).headers.find(h => h.path[0] === 'handlers' && h.path[1] === name);
    if (header) editor.goTo(header.line + 1, 1);
  };
  fill(box,
    el('span', { class: 'p-ok' }, el('span', { class: 'p-icon' }, '✓'), `${result.name || 'project'} is valid`),
    el('span', { class: 'p-group' }, el('span', { class: 'p-label' }, 'handlers'),
      (result.handlers || []).map(h => el('button', { type: 'button', class: 'chip handler-chip', title: `Go to [handlers.${h}]`, onclick: () => jump(h) }, h))),
    (result.fields || []).length ? el('span', { class: 'p-group fields', title: 'Item fields: ' + result.fields.join(', ') }, el('span', { class: 'p-label' }, 'fields'),
      result.fields.map(f => el('span', { class: 'chip' }, f))) : null);
  const fields = box.querySelector('.fields');
  if (fields) requestAnimationFrame(() => fields.classList.toggle('overflowing', fields.scrollWidth > fields.clientWidth));
}

/** Checks the text (POST /api/check); `explicit` moves the caret to an error. */
async function check({ explicit = false } = {}) {
  const seq = ++state.checkSeq;
  const text = editor.value;
  if (explicit) $('check').classList.add('busy');
  try {
    const result = await api('/api/check', { method: 'POST', body: { definition: text } });
    if (seq !== state.checkSeq) return null;
    if (result.ok) {
      state.handlers = result.handlers || [];
      state.fields = result.fields || [];
      fillHandlers();
      showCheckOk(result);
    } else {
      showProblem(result, { move: explicit });
    }
    return result;
  } catch (e) {
    if (e.status === 403) state.autoCheck = false;
    if (explicit) toast('Check failed: ' + e.message, 'error');
    return null;
  } finally {
    if (explicit) $('check').classList.remove('busy');
  }
}

let checkTimer = null;
function scheduleCheck() {
  clearTimeout(checkTimer);
  if (state.autoCheck) checkTimer = setTimeout(() => check(), 900);
}

async function save() {
  if (!state.saveable) {
    toast(state.admin ? 'This project cannot be saved here.' : 'Viewers cannot save.', 'error');
    return;
  }
  const text = editor.value;
  const button = $('save');
  button.disabled = true;
  try {
    if (state.isNew) {
      const r = await api('/api/projects', { method: 'POST', body: { definition: text } });
      state.saved = text;
      setDirty();
      location.href = '/projects/' + enc(r.name);
      return;
    }
    const r = await api(`/api/projects/${enc(state.name)}/definition`, { method: 'PUT', body: { definition: text } });
    state.saved = text;
    setDirty();
    setStatus(r);
    const where = r.saved_to === 'file' ? ' to its file' : '';
    if (r.held) {
      notice('checking', 'warn',
        el('span', {}, el('strong', {}, 'Saved. '), `The project was ${r.previous} and is now ${r.status}: its crawl waits until you press `,
          el('strong', {}, '▶ Start'), ' to run it with the new rules.'));
      $('start').classList.add('attention');
    }
    toast('Saved' + where);
    check();
    if (r.name && r.name !== state.name) location.href = '/projects/' + enc(r.name);
  } catch (e) {
    const body = e.body || {};
    if (body.line || body.error) showProblem({ error: body.error || e.message, line: body.line, column: body.column });
    toast('Not saved: ' + e.message, 'error');
  } finally {
    button.disabled = !state.saveable;
  }
}

async function start() {
  try {
    const r = await api(`/api/projects/${enc(state.name)}`, { method: 'PATCH', body: { status: 'RUNNING' } });
    setStatus(r);
    notice('checking', 'info');
    $('start').classList.remove('attention');
    toast(`${state.name} is ${r.status}`);
  } catch (e) {
    toast('Could not start: ' + e.message, 'error');
  }
}

async function remove() {
  if (!confirm(`Delete the project "${state.name}" with all its tasks and results? This cannot be undone.`)) return;
  try {
    await api(`/api/projects/${enc(state.name)}`, { method: 'DELETE' });
    state.saved = editor.value;
    location.href = '/';
  } catch (e) {
    toast('Not deleted: ' + e.message, 'error');
  }
}

/** The handlers to offer: the last check's, else the file's `[handlers.X]` headers. */
function currentHandlers() {
  const names = handlerNames(editor.value);
  return state.handlers.length ? [...state.handlers, ...names.filter(n => !state.handlers.includes(n))] : names;
}

function fillHandlers(select = $('debug-handler'), wanted) {
  const current = wanted || select.value || 'start';
  const names = currentHandlers();
  if (!names.includes(current)) names.push(current);
  const same = [...select.options].map(o => o.value).join('\n') === names.join('\n');
  if (!same) select.replaceChildren(...names.map(n => el('option', { value: n }, n)));
  select.value = current;
}

/** Applies a new text as one edit (undoable), the caret at `offset`. */
function applyText(next, offset) {
  const prev = editor.value;
  let a = 0;
  while (a < prev.length && a < next.length && prev[a] === next[a]) a++;
  let b = 0;
  while (b < prev.length - a && b < next.length - a && prev[prev.length - 1 - b] === next[next.length - 1 - b]) b++;
  editor.replace(a, prev.length - b, next.slice(a, next.length - b), offset);
  const { line } = editor.cursor();
  editor.goTo(line, editor.cursor().column);
}

function editableOrSay() {
  if (!editor.readOnly) return true;
  toast('The editor is read-only here.', 'error');
  return false;
}

/** The handler the inserted rules belong to when the caret is in no handler: the page's. */
const pageHandler = () => (state.current >= 0 && state.steps[state.current].report.handler) || $('debug-handler').value || 'start';

// ---------------------------------------------------------------- debugger side

function selectTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll('#tabs .tab')) tab.setAttribute('aria-selected', String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll('#panels .panel')) panel.hidden = panel.dataset.panel !== name || state.current < 0;
  renderTools();
  renderLazy();
}

function setCount(tab, n, cls = '') {
  const count = document.querySelector(`#tabs .tab[data-tab="${tab}"] .count`);
  if (!count) return;
  count.hidden = n === null;
  count.textContent = n === null ? '' : String(n);
  count.className = 'count' + (cls ? ' ' + cls : '');
}

/** Tools at the right of the tab bar, for the tab shown. */
function renderTools() {
  const tools = $('tab-tools');
  tools.replaceChildren();
  if (state.current < 0) return;
  if (state.tab === 'items') {
    tools.append(el('span', { class: 'seg', role: 'group', 'aria-label': 'Items as' },
      el('button', { type: 'button', class: state.rawItems ? '' : 'on', onclick: () => { state.rawItems = false; renderItems(); renderTools(); } }, 'Table'),
      el('button', { type: 'button', class: state.rawItems ? 'on' : '', onclick: () => { state.rawItems = true; renderItems(); renderTools(); } }, 'JSON')));
  }
  const step = state.steps[state.current];
  if (step && (state.tab === 'html' || state.tab === 'preview') && /^https?:\/\//i.test((step.report.page && step.report.page.url) || '')) {
    tools.append(el('a', { class: 'btn sm ghost', href: step.report.page.url, target: '_blank', rel: 'noopener noreferrer', title: 'Open the page in a new tab' }, 'Open ↗'));
  }
}

const lazyDone = { html: -1, preview: -1 };

function renderLazy() {
  const step = state.steps[state.current];
  if (!step) return;
  if (state.tab === 'html' && lazyDone.html !== state.current) {
    lazyDone.html = state.current;
    view.renderSource($('html'), step.report);
  }
  if (state.tab === 'preview' && lazyDone.preview !== state.current) {
    lazyDone.preview = state.current;
    const shown = view.renderPreview($('preview'), $('preview-alt'), step.report);
    $('selector-toggle').disabled = !shown;
    if (!shown && helper.enabled) helper.setEnabled(false);
  }
}

/** Draws the current step. */
function renderStep() {
  const step = state.steps[state.current];
  $('welcome').hidden = !!step;
  renderSteps();
  if (!step) { selectTab(state.tab); return; }
  const { report } = step;
  const items = report.items || [];
  const follows = report.follows || [];
  const errors = report.errors || [];
  const logs = report.logs || [];
  setCount('items', items.length);
  const itemsTab = document.querySelector('#tabs .tab[data-tab="items"]');
  itemsTab.querySelector('.dropped')?.remove();
  if (report.dropped) itemsTab.append(el('span', { class: 'count warn dropped', title: 'items dropped for an empty required or key field' }, `${report.dropped} dropped`));
  setCount('follows', follows.length);
  setCount('logs', errors.length + logs.length, errors.length ? 'bad' : '');
  renderItems();
  view.renderFollows($('follows'), $('follows-bar'), $('follows-extra'), report, { notes: $('follows-notes'), onPlay: task => runStep({ task }, { label: task.callback, url: task.url }), canRun: state.admin });
  view.renderLogs($('logs'), report);
  view.renderTimings($('timings'), report, step.request);
  lazyDone.html = lazyDone.preview = -1;
  if (!state.tabChosen) {
    // Until the user picks a tab, show what the step produced.
    state.tab = items.length ? 'items' : follows.length ? 'follows' : errors.length ? 'logs' : 'items';
  }
  selectTab(state.tab);
}

function renderItems() {
  const step = state.steps[state.current];
  if (step) view.renderItems($('items'), step.report, { raw: state.rawItems, fields: state.fields, onErrors: () => selectTab('logs') });
}

function renderSteps() {
  const nav = $('steps');
  nav.hidden = state.steps.length === 0;
  const back = el('button', {
    type: 'button', class: 'step-back', title: 'Back to the previous step', disabled: state.current <= 0,
    onclick: () => { if (state.current > 0) { state.current--; showStepInputs(); renderStep(); } },
  }, '‹');
  const crumbs = state.steps.map((s, i) => {
    const r = s.report;
    const path = shortUrl(r.url || s.url);
    const bad = (r.errors || []).length || !(r.page && r.page.status) || r.page.status >= 400;
    return el('button', {
      type: 'button', class: 'step' + (i === state.current ? ' current' : '') + (bad ? ' bad' : ''),
      title: `${r.handler} on ${r.url}`,
      onclick: () => { state.current = i; showStepInputs(); renderStep(); },
    }, el('span', { class: 'step-no' }, String(i + 1)), el('span', { class: 'step-handler' }, r.handler), el('span', { class: 'step-url' }, path));
  });
  const sep = () => el('span', { class: 'step-sep', 'aria-hidden': 'true' }, '›');
  nav.replaceChildren(back, ...crumbs.flatMap((c, i) => (i ? [sep(), c] : [c])),
    el('button', { type: 'button', class: 'step-clear', title: 'Forget the steps', onclick: () => { state.steps = []; state.current = -1; renderStep(); } }, 'Clear'));
  nav.querySelector('.step.current')?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}

function shortUrl(url) {
  try {
    const u = new URL(url);
    const path = u.pathname + u.search;
    return path === '/' ? u.host : path;
  } catch {
    return url || '';
  }
}

/** Puts the current step's URL and handler in the run bar. */
function showStepInputs() {
  const step = state.steps[state.current];
  if (!step) return;
  $('debug-url').value = step.report.url || $('debug-url').value;
  fillHandlers($('debug-handler'), step.report.handler);
}

function setRunning(on) {
  const button = $('debug-run');
  button.classList.toggle('running', on);
  button.querySelector('.run-label').textContent = on ? 'Running…' : 'Run';
  $('progress-line').hidden = !on;
  $('panels').classList.toggle('stale', on);
}

/**
 * Runs one step: `request` is `{url, handler}`, `{task}` or `{project, taskid}`; the
 * definition is the editor's text. The answer becomes the step after the current one.
 */
async function runStep(request, meta = {}) {
  if (!state.admin) { toast('Debugger runs need the admin role.', 'error'); return; }
  if (state.run) state.run.abort();
  const controller = new AbortController();
  state.run = controller;
  setRunning(true);
  $('run-error').hidden = true;
  try {
    const report = await postDebug({ definition: editor.value, ...request }, controller.signal);
    if (controller.signal.aborted) return;
    const step = { request: { ...request, url: request.url || (request.task && request.task.url) }, report, label: meta.label };
    state.steps = state.steps.slice(0, state.current + 1);
    state.steps.push(step);
    if (state.steps.length > 30) state.steps.shift();
    state.current = state.steps.length - 1;
    showStepInputs();
    renderStep();
    if (helper.enabled) helper.update();
  } catch (e) {
    if (e.name === 'AbortError' || controller.signal.aborted) return;
    const body = e.body || {};
    const where = body.line ? `line ${body.line}, column ${body.column || 1}: ` : '';
    if (body.line) body.error = withoutPosition(body.error);
    const box = $('run-error');
    box.hidden = false;
    fill(box, el('span', { class: 'p-icon' }, '✕'), el('span', {}, el('strong', {}, 'The step did not run. '), where + (body.error || e.message)),
      body.line ? el('button', { type: 'button', class: 'btn sm ghost', onclick: () => editor.goTo(body.line, body.column || 1) }, 'Go to line') : null);
    if (body.line) showProblem({ error: body.error, line: body.line, column: body.column }, { move: false });
  } finally {
    if (state.run === controller) {
      state.run = null;
      setRunning(false);
    }
  }
}

/** POST /api/debug with an abort signal (ui.js's api() takes none). */
async function postDebug(body, signal) {
  const response = await fetch('/api/debug', {
    method: 'POST', signal, credentials: 'same-origin',
    headers: { 'X-Spindle-UI': '1', 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => null);
  if (response.status === 401) {
    location.href = '/login?next=' + enc(location.pathname + location.search);
  }
  if (!response.ok) {
    const error = new Error((answer && answer.error) || response.statusText || 'HTTP ' + response.status);
    error.status = response.status;
    error.body = answer;
    throw error;
  }
  return answer;
}

function runFromBar() {
  const url = $('debug-url').value.trim();
  const handler = $('debug-handler').value || 'start';
  if (!url) {
    $('debug-url').focus();
    $('debug-url').classList.add('invalid');
    toast('Enter the URL of a page to fetch.', 'error');
    return;
  }
  $('debug-url').classList.remove('invalid');
  runStep({ url, handler }, { label: handler, url });
}

// ---------------------------------------------------------------- selector helper → file

function insertRule(make, what) {
  if (!editableOrSay()) return;
  const { offset } = editor.cursor();
  const result = make(editor.value, offset);
  applyText(result.text, result.offset);
  editor.flash(editor.cursor().line);
  toast(`Inserted ${what}`);
  scheduleCheck();
}

function defaultCallback(element) {
  const handlers = currentHandlers();
  const current = pageHandler();
  const link = element && element.closest('a');
  const hint = link ? `${link.getAttribute('rel') || ''} ${link.getAttribute('class') || ''} ${link.textContent || ''}` : '';
  if (/\b(next|more|older|newer|page)\b|›|»/i.test(hint)) return current;
  const after = handlers[handlers.indexOf(current) + 1];
  if (handlers.includes('detail') && current !== 'detail') return 'detail';
  return after || 'detail';
}

// ---------------------------------------------------------------- layout

function setupSplitter() {
  const bench = $('workbench');
  const splitter = $('splitter');
  const saved = Number(localStorage.getItem('spindle.editor.split'));
  const set = pct => {
    const v = Math.min(72, Math.max(28, pct));
    bench.style.setProperty('--split', v + '%');
    return v;
  };
  if (saved) set(saved);
  splitter.addEventListener('pointerdown', e => {
    splitter.setPointerCapture(e.pointerId);
    bench.classList.add('resizing');
    const rect = bench.getBoundingClientRect();
    const move = ev => localStorage.setItem('spindle.editor.split', String(set(((ev.clientX - rect.left) / rect.width) * 100)));
    const up = () => {
      bench.classList.remove('resizing');
      splitter.removeEventListener('pointermove', move);
      splitter.removeEventListener('pointerup', up);
    };
    splitter.addEventListener('pointermove', move);
    splitter.addEventListener('pointerup', up);
  });
  splitter.addEventListener('keydown', e => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const current = parseFloat(getComputedStyle(bench).getPropertyValue('--split')) || 55;
    localStorage.setItem('spindle.editor.split', String(set(current + (e.key === 'ArrowLeft' ? -2 : 2))));
    e.preventDefault();
  });
}

// ---------------------------------------------------------------- start

function newProjectBar() {
  const nameInput = el('input', { type: 'text', id: 'new-name', value: 'my_project', 'aria-label': 'Project name', spellcheck: 'false', pattern: '[A-Za-z0-9_-]{1,64}' });
  const urlInput = el('input', { type: 'text', id: 'new-start', placeholder: 'https://example.com/', 'aria-label': 'Start URL', spellcheck: 'false' });
  const sync = () => {
    const name = nameInput.value.trim() || 'my_project';
    const url = urlInput.value.trim() || 'https://example.com/';
    nameInput.classList.toggle('invalid', !/^[A-Za-z0-9_-]{1,64}$/.test(name));
    let text = editor.value.replace(/^name\s*=\s*"[^"\n]*"/m, `name = "${name.replace(/["\\]/g, '')}"`);
    text = text.replace(/^(start\s*=\s*\[\s*)"[^"\n]*"/m, `$1"${url.replace(/["\\\s]/g, '')}"`);
    if (text !== editor.value) {
      const clean = editor.value === state.saved;
      editor.value = text;
      if (clean) state.saved = text;
      setDirty();
    }
    $('project-name').textContent = name;
    $('debug-url').value = url === 'https://example.com/' ? '' : url;
  };
  nameInput.addEventListener('input', sync);
  urlInput.addEventListener('input', sync);
  urlInput.addEventListener('keydown', e => { if (e.key === 'Enter') { e.preventDefault(); sync(); runFromBar(); } });
  notice('new', 'info new-bar',
    el('span', { class: 'nb-title' }, 'New project'),
    el('label', {}, el('span', {}, 'Name'), nameInput),
    el('label', { class: 'grow' }, el('span', {}, 'Start URL'), urlInput),
    el('span', { class: 'nb-hint' }, 'or edit the file below'));
  setTimeout(() => urlInput.focus(), 0);
}

async function load() {
  const match = /^\/projects\/([^/]+)\/?$/.exec(location.pathname);
  const segment = match ? decodeURIComponent(match[1]) : 'new';
  state.isNew = segment === 'new';
  try { state.admin = await canEdit(); } catch { state.admin = false; /* treated as a viewer */ }

  if (state.isNew) {
    state.name = null;
    $('project-name').textContent = 'my_project';
    editor.value = TEMPLATE('my_project', 'https://example.com/');
    state.saved = editor.value; // unsaved edits start with the user's first change
    $('download').hidden = true;
    $('delete').hidden = true;
    $('save').textContent = 'Create';
    $('save').title = 'Create the project (Ctrl+S)';
    state.saveable = state.admin;
    if (state.admin) newProjectBar();
  } else {
    state.name = segment;
    $('project-name').textContent = segment;
    $('download').href = `/api/projects/${enc(segment)}/definition?download=1`;
    let project;
    try {
      project = await api(`/api/projects/${enc(segment)}`);
    } catch (e) {
      editor.value = '';
      editor.readOnly = true;
      notice('load', 'error', el('span', {}, el('strong', {}, e.status === 404 ? 'No such project. ' : 'Could not load the project. '), e.message),
        el('a', { class: 'btn sm', href: '/projects/new' }, 'New project'));
      for (const id of ['save', 'check', 'delete', 'download']) $(id).hidden = true;
      $('debug-run').disabled = true;
      return;
    }
    state.name = project.name;
    $('project-name').textContent = project.name;
    editor.value = project.definition || '';
    state.saved = editor.value;
    state.handlers = project.handlers || [];
    state.fields = project.fields || [];
    setStatus(project);
    const origin = project.origin || { kind: 'store' };
    const fileLocked = origin.kind === 'file' && origin.writable === false;
    state.saveable = state.admin && !fileLocked;
    if (fileLocked) $('save').title = 'This project\'s file cannot be written here';
    $('mode-note').textContent = origin.kind === 'file' ? '· ' + origin.path : '';
    if (fileLocked) {
      editor.readOnly = true;
      notice('readonly', 'warn',
        el('span', {}, el('strong', {}, 'Read-only here: '), origin.reason || `the file ${origin.path || ''} cannot be written by this process.`),
        state.admin ? el('button', {
          type: 'button', class: 'btn sm', onclick: e => {
            editor.readOnly = false;
            e.target.replaceWith(el('span', { class: 'muted' }, 'Edits are for the debugger only: they cannot be saved here.'));
            editor.focus();
          },
        }, 'Edit to try in the debugger') : null);
    }
    if (!state.admin) $('delete').hidden = true;
  }
  if (!state.admin) {
    editor.readOnly = true;
    state.autoCheck = false;
    $('check').hidden = true;
    $('save').hidden = true;
    $('delete').hidden = true;
    $('debug-run').disabled = true;
    $('debug-run').title = 'Debugger runs need the admin role';
    notice('viewer', 'info', el('span', {}, el('strong', {}, 'View only: '), 'you are signed in as a viewer; editing, saving and debugger runs need the admin role.'));
  }
  $('save').disabled = !state.saveable;
  setDirty();
  fillHandlers($('debug-handler'), 'start');
  if (!$('debug-url').value && !state.isNew) $('debug-url').value = firstStartUrl(editor.value);
  if (state.admin) check();
  else if (state.handlers.length) showCheckOk({ name: state.name, handlers: state.handlers, fields: state.fields });

  const taskid = params().get('taskid');
  if (taskid && state.name) runStep({ project: state.name, taskid }, { label: 'task ' + taskid });
}

function init() {
  topBar('editor');
  editor = new CodeEditor($('editor'), {
    onChange: () => { setDirty(); scheduleCheck(); },
    onCursor: ({ line, column }) => { $('cursor-pos').textContent = `Ln ${line}, Col ${column}`; },
  });
  document.addEventListener('readonly', e => { $('ro-flag').hidden = !e.detail; });
  helper = new SelectorHelper({
    iframe: $('preview'), toggle: $('selector-toggle'), panel: $('helper'), input: $('selector'),
    count: $('selector-count'), chips: $('chips'), hoverInfo: $('hover-info'), copy: $('copy-selector'),
    field: $('insert-field'), follow: $('insert-follow'),
  }, {
    onField: (name, selector) => insertRule((text, offset) => insertField(text, offset, name, selector, pageHandler()), `item.${name}`),
    onFollow: (selector, element) => {
      const callback = prompt('Callback: the handler of the linked pages', defaultCallback(element));
      if (!callback || !callback.trim()) return;
      const cb = callback.trim();
      insertRule((text, offset) => insertFollow(text, offset, selector, cb, pageHandler()), `a follow to ${cb}`);
      if (!currentHandlers().includes(cb)) toast(`There is no handler "${cb}" yet: add [handlers.${cb}] before saving.`, 'error');
    },
  });
  $('preview').addEventListener('load', () => helper.attach());

  $('check').addEventListener('click', () => check({ explicit: true }));
  $('save').addEventListener('click', save);
  $('start').addEventListener('click', start);
  $('delete').addEventListener('click', remove);
  $('runbar').addEventListener('submit', e => { e.preventDefault(); runFromBar(); });
  $('debug-url').addEventListener('input', () => $('debug-url').classList.remove('invalid'));
  for (const tab of document.querySelectorAll('#tabs .tab')) tab.addEventListener('click', () => { state.tabChosen = true; selectTab(tab.dataset.tab); });
  $('tabs').addEventListener('keydown', e => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const tabs = [...document.querySelectorAll('#tabs .tab')];
    const i = tabs.findIndex(t => t.dataset.tab === state.tab);
    const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next.dataset.tab);
    next.focus();
  });
  document.addEventListener('keydown', e => {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && (e.key === 's' || e.key === 'S')) { e.preventDefault(); save(); }
    else if (mod && e.key === 'Enter') { e.preventDefault(); runFromBar(); }
  });
  window.addEventListener('beforeunload', e => {
    if (editor.value !== state.saved && !editor.readOnly && state.saveable) {
      e.preventDefault();
      e.returnValue = '';
    }
  });
  setupSplitter();
  selectTab('items');
  load();
}

init();
