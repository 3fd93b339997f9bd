// Shared helpers of every page: the JSON API, building elements, the top bar, formatting.
//
// Values from the crawl (URLs, items, errors, project text) are always put in the page as
// text (`el` turns strings into text nodes); nothing here assigns innerHTML.

/** An answer of the API that is not 2xx: `status` and the server's `error` text. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/**
 * Calls the JSON API: `api('/api/projects')`, `api('/api/projects/x', {method: 'PATCH', body: {...}})`.
 * Resolves to the parsed JSON (or text for non-JSON answers); rejects with an ApiError. A 401
 * sends the browser to the login page and comes back here after it.
 */
export async function api(path, { method = 'GET', body } = {}) {
  const options = { method, headers: { 'X-Spindle-UI': '1' }, credentials: 'same-origin' };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const type = response.headers.get('content-type') || '';
  const answer = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (response.status === 401 && !location.pathname.startsWith('/login')) {
    location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(401, 'login required', answer);
  }
  if (!response.ok) {
    const message = (answer && answer.error) || response.statusText || ('HTTP ' + response.status);
    throw new ApiError(response.status, message, answer);
  }
  return answer;
}

/**
 * Builds an element: `el('a', {href: '/x', class: 'btn', onclick: f}, 'text', child)`.
 * Attributes starting with `on` become listeners; `dataset` takes an object; strings and
 * numbers among the children become text nodes; null and false children are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Who is signed in: `{user, role, login}` (cached for the page's life). */
let me;
export async function whoAmI() {
  if (!me) me = await api('/api/me');
  return me;
}

/** True when the signed-in user may change things (not a read-only viewer). */
export async function canEdit() {
  return (await whoAmI()).role === 'admin';
}

/** Fills `<header id="top">` with the product bar; `active` is one of dashboard, tasks, results, editor. */
export async function topBar(active) {
  const header = document.getElementById('top');
  if (!header) return;
  // The editor of an existing project is not "New project".
  if (active === 'editor' && location.pathname !== '/projects/new') active = null;
  const link = (name, href, label) =>
    el('a', { href, class: name === active ? 'active' : null }, label);
  const user = el('span', { class: 'user' });
  header.replaceChildren(
    el('a', { href: '/', class: 'brand' }, el('span', { class: 'logo' }, '◎'), 'Spindle'),
    el('nav', {},
      link('dashboard', '/', 'Dashboard'),
      link('tasks', '/tasks', 'Tasks'),
      link('results', '/results', 'Results'),
      link('editor', '/projects/new', 'New project')),
    user);
  try {
    const who = await whoAmI();
    if (who.login) {
      user.append(el('span', {}, who.user + ' · ' + who.role), ' ',
        el('button', { class: 'link', onclick: async () => {
          await api('/api/logout', { method: 'POST' }).catch(() => {});
          location.href = '/login';
        } }, 'Sign out'));
    }
  } catch (e) { /* the page shows its own error */ }
}

/** Shows a short message at the bottom of the page; `kind` is 'ok' or 'error'. */
export function toast(message, kind = 'ok') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = el('div', { id: 'toasts' });
    document.body.append(box);
  }
  const note = el('div', { class: 'toast ' + kind, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(note);
  setTimeout(() => note.remove(), kind === 'error' ? 8000 : 4000);
}

/** Calls `onSnapshot(snapshot)` with the live figures (server-sent events), at once and then every second. */
export function live(onSnapshot, onState = () => {}) {
  const source = new EventSource('/api/live');
  source.addEventListener('snapshot', event => onSnapshot(JSON.parse(event.data)));
  source.addEventListener('open', () => onState(true));
  source.addEventListener('error', () => onState(false));
  return source;
}

const numberFormat = new Intl.NumberFormat('en');
/** 12345 → "12,345". */
export const fmtNum = n => (n === null || n === undefined ? '–' : numberFormat.format(n));

/** Unix ms → local "2026-12-07 16:20:01". */
export function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  const pad = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix ms → "3 min ago" / "in 5 s". */
export function fmtAgo(ms, now = Date.now()) {
  if (!ms) return '–';
  const s = Math.round((now - ms) / 1000);
  const abs = Math.abs(s);
  const text = abs < 60 ? abs + ' s' : abs < 3600 ? Math.round(abs / 60) + ' min'
    : abs < 86400 ? Math.round(abs / 3600) + ' h' : Math.round(abs / 86400) + ' d';
  return s >= 0 ? text + ' ago' : 'in ' + text;
}

/** Milliseconds → "35 ms" / "1.2 s". */
export const fmtMs = ms => (ms === null || ms === undefined ? '–'
  : ms < 1000 ? (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + ' ms' : (ms / 1000).toFixed(1) + ' s');

/** The query parameters of the page's URL. */
export const params = () => new URLSearchParams(location.search);
