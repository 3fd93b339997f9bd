// Dashboard: pipeline strip, instances, throughput chart and the project table, all fed by
// the live snapshot stream. Rows are updated in place so that a cell being edited survives.
import { api, el, topBar, toast, live, fmtNum, fmtTime, fmtAgo, fmtMs, canEdit } from '/assets/ui.js';

const WINDOWS = ['5m', '1h', '1d', 'all'];
const SEGMENTS = ['pending', 'success', 'retry', 'failed'];
const ROLE_ORDER = ['scheduler', 'fetcher', 'processor', 'result-writer', 'result', 'web-ui'];
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  editable: false,
  snapshot: null,
  statuses: [],           // every status, in menu and sort order: the snapshot's `statuses`
  rows: new Map(),        // project name → {tr, cells, project}
  overrides: new Map(),   // "name:field" → {value, until}: a change we sent that the snapshot may not show yet
  editing: null,          // {name, field} of the open inline editor
  sort: { key: 'default', dir: 1 },
  history: new Map(),     // queue stage → last 60 pending values
  lastAt: 0,
  connected: false,
};

const $ = id => document.getElementById(id);
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};
const compact = n => {
  if (n === null || n === undefined) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
  return fmtNum(Math.round(n));
};
const rate = n => (n === null || n === undefined ? '–' : n >= 100 ? fmtNum(Math.round(n)) : n >= 10 ? n.toFixed(1) : n.toFixed(2).replace(/\.?0+$/, '') || '0');
const short = n => (Number.isInteger(n) ? String(n) : String(+n.toFixed(3)));
const short1 = ms => (ms >= 100 ? String(Math.round(ms)) : String(+ms.toFixed(1)));
const projectPath = name => '/projects/' + encodeURIComponent(name);

/* ---------------- tooltip (one floating box for the page) ---------------- */
const tip = { box: null, owner: null, build: null };
function showTip(owner, build, event) {
  if (!tip.box) { tip.box = el('div', { class: 'tip', role: 'tooltip' }); document.body.append(tip.box); }
  tip.owner = owner; tip.build = build;
  tip.box.replaceChildren(...[].concat(build()));
  tip.box.classList.remove('hidden');
  if (event) placeTip(event.clientX, event.clientY);
}
function placeTip(x, y) {
  const box = tip.box; if (!box) return;
  const w = box.offsetWidth, h = box.offsetHeight;
  let left = x + 14, top = y + 16;
  if (left + w > innerWidth - 8) left = x - w - 14;
  if (top + h > innerHeight - 8) top = y - h - 12;
  box.style.left = Math.max(8, left) + 'px';
  box.style.top = Math.max(8, top) + 'px';
}
function hideTip(owner) {
  if (!tip.box || (owner && tip.owner !== owner)) return;
  tip.box.classList.add('hidden'); tip.owner = null; tip.build = null;
}
function refreshTip(owner) {
  if (tip.owner === owner && tip.build) tip.box.replaceChildren(...[].concat(tip.build()));
}
/** A rich tooltip on `node`; its plain `title` stays for when the pointer is elsewhere. */
function richTip(node, build) {
  node.addEventListener('mouseenter', e => {
    node.dataset.title = node.getAttribute('title') || '';
    node.removeAttribute('title');
    showTip(node, build, e);
  });
  node.addEventListener('mousemove', e => placeTip(e.clientX, e.clientY));
  node.addEventListener('mouseleave', () => {
    if (node.dataset.title) node.setAttribute('title', node.dataset.title);
    hideTip(node);
  });
}
function setTitle(node, text) {
  if (tip.owner === node) node.dataset.title = text; else node.setAttribute('title', text);
}

/* ---------------- live indicator ---------------- */
function setLive(on) {
  state.connected = on;
  const box = $('live');
  box.classList.toggle('on', on);
  box.querySelector('.text').textContent = on ? 'Live' : (state.snapshot ? 'Reconnecting…' : 'Connecting…');
  box.title = on ? 'Receiving a snapshot every second' : (state.snapshot
    ? 'Disconnected; last snapshot ' + fmtTime(state.snapshot.at_ms) : 'Waiting for the first snapshot');
}
setInterval(() => { if (state.connected && Date.now() - state.lastAt > 4000) setLive(false); }, 1000);

/* ---------------- pipeline ---------------- */
const pipe = new Map();
function renderPipeline(queues) {
  const root = $('pipeline');
  if (!queues || !queues.length) {
    root.replaceChildren(el('div', { class: 'state' }, 'No queue figures yet.'));
    pipe.clear();
    return;
  }
  if (pipe.size !== queues.length || queues.some(q => !pipe.has(q.stage))) {
    pipe.clear();
    const boxes = queues.map(q => {
      const parts = {
        box: el('div', { class: 'pipe-box' }),
        label: el('span', { class: 'trunc' }),
        tag: el('span', { class: 'tag' }),
        pending: el('span'),
        inFlight: el('b'), perSecond: el('b'),
        spark: svg('svg', { class: 'spark', preserveAspectRatio: 'none', viewBox: '0 0 60 22' }),
      };
      parts.area = svg('path', { class: 'area' });
      parts.line = svg('path', { class: 'line', 'vector-effect': 'non-scaling-stroke' });
      parts.spark.append(parts.area, parts.line);
      parts.box.append(
        el('div', { class: 'label' }, parts.label),
        el('div', { class: 'big' }, parts.pending, el('small', {}, 'pending'), parts.tag),
        el('div', { class: 'facts' }, el('span', {}, parts.inFlight, ' in flight'), el('span', {}, parts.perSecond, ' /s')),
        parts.spark);
      pipe.set(q.stage, parts);
      return el('div', { class: 'pipe-stage', dataset: { stage: q.stage } }, parts.box);
    });
    root.replaceChildren(
      el('div', { class: 'pipe-node' }, el('strong', {}, 'Scheduler'), el('span', {}, 'dispatches due tasks')),
      ...boxes,
      el('div', { class: 'pipe-return' }, 'new tasks and status updates flow back to the scheduler'));
  }
  // A queue "backs up" when more than 3 seconds of work wait in it (or work waits and nothing moves);
  // the one with the most seconds of work waiting is the bottleneck.
  const backlog = q => (q.pending > Math.max(50, q.per_second * 3) ? q.pending / Math.max(q.per_second, 1) : 0);
  let worst = null;
  for (const q of queues) if (backlog(q) > 0 && (!worst || backlog(q) > backlog(worst))) worst = q;
  for (const q of queues) {
    const p = pipe.get(q.stage);
    p.label.textContent = q.label || q.stage;
    p.label.title = q.label || q.stage;
    p.pending.textContent = fmtNum(q.pending);
    p.inFlight.textContent = fmtNum(q.in_flight);
    p.perSecond.textContent = rate(q.per_second);
    const isWorst = worst && q.stage === worst.stage;
    p.box.classList.toggle('bottleneck', !!isWorst);
    p.box.classList.toggle('backlog', !isWorst && backlog(q) > 0);
    p.tag.replaceChildren(isWorst ? el('span', { class: 'badge st-failed' }, 'bottleneck')
      : backlog(q) > 0 ? el('span', { class: 'badge st-warn' }, 'backlog') : '');
    const secs = q.per_second > 0 ? q.pending / q.per_second : null;
    p.box.title = `${q.label || q.stage}\n${fmtNum(q.pending)} pending, ${fmtNum(q.in_flight)} in flight, ${rate(q.per_second)} acknowledged/s` +
      (q.pending && secs !== null ? `\n≈ ${fmtMs(secs * 1000)} of work waiting` : '');
    const hist = state.history.get(q.stage) || [];
    hist.push(q.pending); if (hist.length > 60) hist.shift();
    state.history.set(q.stage, hist);
    drawSpark(p, hist);
  }
  $('pipeline-meta').textContent = worst
    ? `bottleneck: ${worst.label || worst.stage}` : 'all queues flowing';
  $('pipeline-meta').classList.toggle('warn-text', !!worst);
}
function drawSpark(p, hist) {
  const max = Math.max(1, ...hist);
  const x = i => 60 - (hist.length - 1 - i);
  const y = v => 21 - (v / max) * 19;
  const pts = hist.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  if (pts.length < 2) { p.line.setAttribute('d', ''); p.area.setAttribute('d', ''); return; }
  p.line.setAttribute('d', 'M' + pts.join('L'));
  p.area.setAttribute('d', `M${x(0)},22L` + pts.join('L') + 'L60,22Z');
}

/* ---------------- instances ---------------- */
const inst = { rows: new Map(), key: '' };
function renderInstances(list, now) {
  const root = $('instances');
  list = (list || []).slice().sort((a, b) => roleRank(a.role) - roleRank(b.role) || a.role.localeCompare(b.role) || a.id.localeCompare(b.id));
  $('instances-meta').textContent = list.length ? `${list.length} live` : '';
  if (!list.length) {
    inst.key = '';
    root.replaceChildren(el('div', { class: 'state' }, el('div', { class: 'state-title' }, 'No instances reporting'),
      'Fetchers, processors and result writers appear here once they send a heartbeat.'));
    return;
  }
  const key = list.map(i => i.role + '/' + i.id).join('|');
  if (key !== inst.key) {
    inst.key = key; inst.rows.clear();
    const body = el('tbody');
    let role = null;
    for (const i of list) {
      if (i.role !== role) {
        role = i.role;
        const count = list.filter(x => x.role === role).length;
        body.append(el('tr', { class: 'group-row' }, el('td', { colspan: 6 }, `${roleName(role)} · ${count}`)));
      }
      const cells = { inFlight: el('td', { class: 'num' }), done: el('td', { class: 'num' }), ps: el('td', { class: 'num' }),
        hb: el('span', { class: 'hb' }), hbCell: el('td', { class: 'num' }), id: el('td', { class: 'mono' }, el('span', { class: 'trunc', title: i.id }, i.id)) };
      cells.hbCell.append(cells.hb);
      cells.version = el('td', { class: 'faint small' });
      inst.rows.set(i.id, cells);
      body.append(el('tr', {}, cells.id, cells.version, cells.inFlight, cells.done, cells.ps, cells.hbCell));
    }
    root.replaceChildren(el('table', { class: 'grid' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Instance'), el('th', {}, 'Version'), el('th', { class: 'num' }, 'In flight'),
        el('th', { class: 'num' }, 'Done'), el('th', { class: 'num' }, 'Per s'), el('th', { class: 'num' }, 'Heartbeat'))),
      body));
  }
  for (const i of list) {
    const c = inst.rows.get(i.id);
    c.version.textContent = i.version ? 'v' + i.version : '';
    c.version.title = i.started_ms ? 'up since ' + fmtTime(i.started_ms) + ' (' + fmtAgo(i.started_ms, now).replace(' ago', '') + ')' : '';
    c.inFlight.textContent = fmtNum(i.in_flight);
    c.done.textContent = compact(i.done);
    c.done.title = fmtNum(i.done);
    c.ps.textContent = rate(i.per_second);
    const age = Math.max(0, now - i.at_ms);
    c.hb.textContent = age < 1500 ? 'now' : fmtAgo(i.at_ms, now);
    c.hb.className = 'hb' + (age > 30000 ? ' gone' : age > 5000 ? ' late' : '');
    c.hbCell.title = 'last heartbeat ' + fmtTime(i.at_ms);
  }
}
const roleRank = r => { const i = ROLE_ORDER.indexOf(r); return i < 0 ? 99 : i; };
const roleName = r => ({ scheduler: 'Schedulers', fetcher: 'Fetchers', processor: 'Processors', 'result-writer': 'Result writers',
  result: 'Result writers', 'web-ui': 'Web UI' }[r] || r);

/* ---------------- throughput chart ---------------- */
const chart = { data: null, hover: null, width: 0 };
function renderThroughput(t) {
  chart.data = t && t.minute_ms && t.minute_ms.length ? t : null;
  drawChart();
  const now = $('throughput-now');
  if (chart.data) {
    const n = chart.data.pages.length;
    const i = n > 1 ? n - 2 : n - 1; // the last whole minute, unless the crawl started in this one
    const current = !chart.data.pages[i] && !chart.data.errors[i] && (chart.data.pages[n - 1] || chart.data.errors[n - 1]);
    const k = current ? n - 1 : i;
    now.textContent = `${current ? 'this minute so far' : 'last minute'}: ${fmtNum(chart.data.pages[k])} pages · ${fmtNum(chart.data.errors[k])} errors`;
  } else now.textContent = '';
}
function drawChart() {
  const root = $('throughput');
  const t = chart.data;
  const W = root.clientWidth || 600, H = root.clientHeight || 220;
  chart.width = W;
  if (!t) {
    root.replaceChildren(el('div', { class: 'state' }, state.snapshot ? 'No throughput figures yet.' : el('span', { class: 'spinner' })));
    return;
  }
  const m = { l: 46, r: 40, t: 10, b: 24 };
  const iw = W - m.l - m.r, ih = H - m.t - m.b, n = t.minute_ms.length;
  const pMax = niceMax(Math.max(...t.pages, 4));
  const eMax = niceMax(Math.max(...t.errors, 2));
  const idle = !t.pages.some(Boolean) && !t.errors.some(Boolean);
  const step = iw / Math.max(n, 1);
  const xs = i => m.l + step * (i + .5);
  const yp = v => m.t + ih - (v / pMax) * ih;
  const ye = v => (v / eMax) * ih * .5; // errors use the lower half, their own scale (right axis)
  const root2 = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'pages and errors per minute over the last hour' });
  for (let k = 0; k <= 4; k++) {
    const v = (pMax / 4) * k, y = yp(v);
    root2.append(svg('line', { class: 'grid-line', x1: m.l, x2: W - m.r, y1: y, y2: y }));
    const label = svg('text', { class: 'axis-label', x: m.l - 8, y: y + 3.5, 'text-anchor': 'end' }); label.textContent = compact(v);
    root2.append(label);
  }
  for (const k of [0, 1, 2]) {
    const v = (eMax / 2) * k, y = m.t + ih - ye(v);
    const label = svg('text', { class: 'axis-label err', x: W - m.r + 8, y: y + 3.5 }); label.textContent = compact(v);
    root2.append(label);
  }
  for (let i = 0; i < n; i++) {
    const d = new Date(t.minute_ms[i]);
    if (d.getMinutes() % 10 === 0 || i === n - 1) {
      if (i !== n - 1 && i > n - 6) continue;
      const label = svg('text', { class: 'axis-label', x: xs(i), y: H - 6, 'text-anchor': 'middle' });
      label.textContent = i === n - 1 ? 'now' : hhmm(t.minute_ms[i]);
      root2.append(label);
    }
  }
  const bw = Math.max(1, step * .6);
  for (let i = 0; i < n; i++) {
    if (!t.errors[i]) continue;
    const h = Math.max(1.5, ye(t.errors[i]));
    root2.append(svg('rect', { class: 'err-bar', x: xs(i) - bw / 2, y: m.t + ih - h, width: bw, height: h, rx: 1 }));
  }
  const pts = t.pages.map((v, i) => `${xs(i).toFixed(1)},${yp(v).toFixed(1)}`);
  // The last minute is still counting: its stretch of the line is dashed and left out of the area.
  const whole = n > 2 ? pts.slice(0, -1) : pts;
  root2.append(svg('path', { class: 'pages-area', d: `M${xs(0)},${m.t + ih}L${whole.join('L')}L${xs(whole.length - 1)},${m.t + ih}Z` }));
  root2.append(svg('path', { class: 'pages-line', d: 'M' + whole.join('L') }));
  if (n > 2) root2.append(svg('path', { class: 'pages-line partial', d: 'M' + pts.slice(-2).join('L') }));
  const guide = svg('line', { class: 'guide hidden', y1: m.t, y2: m.t + ih });
  const dot = svg('circle', { class: 'hover-dot hidden', r: 4 });
  const overlay = svg('rect', { x: m.l, y: m.t, width: iw, height: ih, fill: 'transparent' });
  root2.append(guide, dot, overlay);
  const show = (i, e) => {
    chart.hover = i;
    guide.setAttribute('x1', xs(i)); guide.setAttribute('x2', xs(i)); guide.classList.remove('hidden');
    dot.setAttribute('cx', xs(i)); dot.setAttribute('cy', yp(t.pages[i])); dot.classList.remove('hidden');
    const build = () => {
      const d = chart.data; if (!d || i >= d.pages.length) return [];
      const pages = d.pages[i], errors = d.errors[i], total = pages + errors;
      return [el('div', { class: 'tip-title' }, hhmm(d.minute_ms[i]) + '–' + hhmm(d.minute_ms[i] + 60000) + (i === d.pages.length - 1 ? ' (so far)' : '')),
        el('table', {}, el('tr', {}, el('td', {}, el('span', { class: 'swatch pages' }), ' pages'), el('td', { class: 'num' }, fmtNum(pages))),
          el('tr', {}, el('td', {}, el('span', { class: 'swatch failed' }), ' errors'), el('td', { class: 'num' }, fmtNum(errors) + (total ? ` (${pct(errors, total)})` : ''))))];
    };
    showTip(overlay, build, e);
  };
  overlay.addEventListener('mousemove', e => {
    const r = overlay.getBoundingClientRect();
    const i = Math.min(n - 1, Math.max(0, Math.floor((e.clientX - r.left) / (r.width / n))));
    show(i, e);
    placeTip(e.clientX, e.clientY);
  });
  overlay.addEventListener('mouseleave', () => { chart.hover = null; hideTip(overlay); guide.classList.add('hidden'); dot.classList.add('hidden'); });
  root.replaceChildren(root2);
  if (idle) root.append(el('div', { class: 'chart-note' }, 'Nothing fetched in the last hour'));
  if (chart.hover !== null && tip.owner && tip.owner.ownerSVGElement) {
    // keep the hover across a redraw: re-show at the same minute, tip stays where it is
    const i = Math.min(n - 1, chart.hover);
    const box = tip.box.getBoundingClientRect();
    show(i, null);
    tip.box.style.left = box.left + 'px'; tip.box.style.top = box.top + 'px';
  }
}
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const k of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= k * p) return k * p;
  return 10 * p;
}
const hhmm = ms => { const d = new Date(ms); return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0'); };
function pct(a, total) {
  if (!total || !a) return '0%';
  const v = a / total * 100;
  if (v < .1) return '<0.1%';
  if (v < 10) return v.toFixed(1) + '%';
  if (v > 99 && v < 100) return (Math.floor(v * 10) / 10) + '%';
  return Math.round(v) + '%';
}
new ResizeObserver(() => { if ($('throughput').clientWidth !== chart.width) drawChart(); }).observe(document.getElementById('throughput'));

/* ---------------- project table ---------------- */
const tbody = () => document.querySelector('table#projects tbody');

function override(name, field, value) {
  const entry = state.overrides.get(name + ':' + field);
  if (!entry) return value;
  if (Date.now() > entry.until || entry.value === value) { state.overrides.delete(name + ':' + field); return value; }
  return entry.value;
}
function setOverride(name, field, value) { state.overrides.set(name + ':' + field, { value, until: Date.now() + 4000 }); }

function effective(p) {
  return { ...p, status: override(p.name, 'status', p.status), dispatches: override(p.name, 'dispatches', p.dispatches),
    group: override(p.name, 'group', p.group || ''), rate: override(p.name, 'rate', p.rate), burst: override(p.name, 'burst', p.burst) };
}

function sortProjects(list) {
  const k = state.sort.key, dir = state.sort.dir;
  const byDefault = (a, b) => (!!b.group - !!a.group) || (a.group || '').localeCompare(b.group || '') || a.name.localeCompare(b.name);
  const total = w => p => { const c = (p.progress || {})[w] || {}; return (c.success || 0) / Math.max(1, SEGMENTS.reduce((s, x) => s + (c[x] || 0), 0)); };
  const keyOf = {
    group: null, default: null,
    name: p => p.name, status: p => state.statuses.indexOf(p.status) + (p.paused ? .5 : 0), rate: p => p.rate,
    avg: p => (p.avg_fetch_ms || 0) + (p.avg_process_ms || 0),
    '5m': total('5m'), '1h': total('1h'), '1d': total('1d'), all: total('all'),
  }[k];
  return list.slice().sort((a, b) => {
    if (!keyOf) return dir * byDefault(a, b);
    const x = keyOf(a), y = keyOf(b);
    return dir * (typeof x === 'string' ? x.localeCompare(y) : x - y) || byDefault(a, b);
  });
}

function renderProjects(projects) {
  const body = tbody();
  const list = sortProjects((projects || []).map(effective));
  const meta = $('projects-meta');
  const running = list.filter(p => p.dispatches).length;
  meta.textContent = list.length ? `${list.length} project${list.length === 1 ? '' : 's'} · ${running} running` : '';
  if (!list.length) {
    state.rows.clear();
    body.replaceChildren(el('tr', {}, el('td', { colspan: 10 }, el('div', { class: 'state' },
      el('div', { class: 'state-icon' }, '◎'),
      el('div', { class: 'state-title' }, 'No projects yet'),
      el('div', {}, 'A project tells Spindle where to start and how to turn pages into items.'),
      state.editable ? el('a', { class: 'btn primary', href: '/projects/new' }, '+ New project') : null))));
    return;
  }
  const seen = new Set();
  for (const p of list) {
    seen.add(p.name);
    let row = state.rows.get(p.name);
    if (!row) { row = makeRow(p.name); state.rows.set(p.name, row); }
    row.project = p;
    updateRow(row, p);
  }
  for (const [name, row] of state.rows) if (!seen.has(name)) { row.tr.remove(); state.rows.delete(name); }
  // Reorder only when needed, and never under an open editor or a focused control (moving it would blur it).
  const wanted = list.map(p => state.rows.get(p.name).tr);
  const current = [...body.children];
  const same = wanted.length === current.length && wanted.every((tr, i) => tr === current[i]);
  if (!same && !state.editing && !(document.activeElement && body.contains(document.activeElement))) body.replaceChildren(...wanted);
}

function makeRow(name) {
  const c = {
    group: el('td', { class: 'group-cell' }),
    name: el('td', { class: 'name-cell' }),
    status: el('td', { class: 'status-cell' }),
    rate: el('td', { class: 'rate num' }),
    avg: el('td', { class: 'num avg' }),
    windows: {},
    actions: el('td', { class: 'actions-cell' }),
  };
  c.link = el('a', { href: projectPath(name), class: 'trunc', title: name }, name);
  c.subline = el('div', { class: 'subline' });
  c.name.append(c.link, c.subline);
  c.statusBox = state.editable ? el('select', { class: 'status', 'aria-label': 'status of ' + name },
    state.statuses.map(s => el('option', { value: s }, s))) : el('span', { class: 'badge' });
  c.paused = el('span', { class: 'badge st-paused hidden', title: 'The scheduler paused this project after failures in a row; it retries on its own' }, 'paused');
  c.status.append(c.statusBox, c.paused);
  c.groupText = el('span', { class: 'trunc' });
  c.group.append(c.groupText);
  c.rateText = el('span');
  c.rate.append(c.rateText);
  for (const w of WINDOWS) {
    const bar = el('div', { class: 'progress', dataset: { window: w } }, SEGMENTS.map(s => el('span', { class: 'seg ' + s })));
    const caption = el('div', { class: 'caption' });
    const cell = el('td', { class: 'progress-cell' }, bar, caption);
    c.windows[w] = { bar, caption, cell, counts: null };
    richTip(bar, () => progressTip(name, w, c.windows[w].counts));
  }
  const tr = el('tr', { dataset: { project: name } }, c.group, c.name, c.status, c.rate, c.avg, WINDOWS.map(w => c.windows[w].cell), c.actions);
  const row = { tr, c, project: null };
  if (state.editable) {
    c.statusBox.addEventListener('change', () => changeStatus(row, c.statusBox.value));
    c.rate.classList.add('clickable');
    c.rate.addEventListener('click', () => openEditor(row, 'rate'));
    c.group.addEventListener('click', () => openEditor(row, 'group'));
    for (const [cell, field] of [[c.rate, 'rate'], [c.group, 'group']]) {
      cell.tabIndex = 0;
      cell.addEventListener('keydown', e => {
        if ((e.key === 'Enter' || e.key === ' ') && e.target === cell) { e.preventDefault(); openEditor(row, field); }
      });
    }
    c.groupText.classList.add('editable');
    c.rateText.classList.add('editable');
    c.run = el('button', { class: 'btn sm run', type: 'button', title: 'Queue the start URLs again now' }, '▶ Run');
    c.run.addEventListener('click', () => runProject(row));
  }
  c.actions.append(c.run || '',
    el('a', { class: 'btn sm ghost tasks', href: '/tasks?project=' + encodeURIComponent(name), title: 'Recent tasks of ' + name }, 'Tasks'),
    el('a', { class: 'btn sm ghost results', href: '/results?project=' + encodeURIComponent(name), title: 'Items of ' + name }, 'Results'));
  return row;
}

function updateRow(row, p) {
  const c = row.c;
  const editing = f => state.editing && state.editing.name === p.name && state.editing.field === f;
  if (!editing('group')) {
    c.groupText.textContent = p.group || '—';
    c.groupText.classList.toggle('empty', !p.group);
    c.groupText.title = p.group ? p.group : (state.editable ? 'Click to set a group' : '');
  }
  const bits = [];
  if (p.queued !== undefined) bits.push(compact((p.queued || 0) + (p.waiting || 0)) + ' queued');
  if (p.in_flight) bits.push(compact(p.in_flight) + ' in flight');
  if (p.items !== undefined) bits.push(compact(p.items) + ' items');
  c.subline.textContent = (p.finished ? '✓ finished · ' : '') + bits.join(' · ');
  c.subline.title = `${fmtNum(p.queued)} queued (${fmtNum(p.waiting)} waiting), ${fmtNum(p.in_flight)} in flight, ${fmtNum(p.items)} items` + (p.finished ? '; finished' : '');
  const st = 'st-' + String(p.status).toLowerCase();
  if (state.editable) {
    if (document.activeElement !== c.statusBox) {
      if (!c.statusBox.querySelector(`option[value="${CSS.escape(p.status)}"]`)) c.statusBox.append(el('option', { value: p.status }, p.status));
      c.statusBox.value = p.status;
      c.statusBox.className = 'status ' + st;
    }
  } else {
    c.statusBox.className = 'badge ' + st;
    c.statusBox.textContent = p.status;
  }
  c.paused.classList.toggle('hidden', !p.paused);
  if (!editing('rate')) {
    c.rateText.textContent = short(p.rate) + ' / ' + short(p.burst);
    c.rate.title = `${short(p.rate)} requests per second, bursts of up to ${short(p.burst)}` + (state.editable ? '\nClick to change' : '');
  }
  const f = p.avg_fetch_ms || p.avg_process_ms ? p.avg_fetch_ms || 0 : null, pr = p.avg_process_ms;
  c.avg.replaceChildren(...(f === null || f === undefined ? ['–']
    : [el('div', {}, fmtMs(f + (pr || 0))), el('div', { class: 'faint small' }, short1(f) + ' + ' + short1(pr || 0))]));
  c.avg.title = f === null || f === undefined ? 'no task timed yet' : `average fetch ${fmtMs(f)} + process ${fmtMs(pr || 0)}`;
  for (const w of WINDOWS) {
    const counts = (p.progress || {})[w] || {};
    const slot = c.windows[w];
    slot.counts = counts;
    const total = SEGMENTS.reduce((s, k) => s + (counts[k] || 0), 0);
    SEGMENTS.forEach((k, i) => { slot.bar.children[i].style.flexGrow = total ? (counts[k] || 0) : 0; });
    slot.bar.classList.toggle('empty', !total);
    setTitle(slot.bar, progressTitle(w, counts));
    const fail = (counts.failed || 0);
    slot.caption.replaceChildren(total ? (total < 1e5 ? fmtNum(total) : compact(total)) : '–', fail ? ' · ' : '', fail ? el('span', { class: 'fail-count' }, compact(fail) + ' failed') : '');
    refreshTip(slot.bar);
  }
}

const segLabel = (w, k) => (k === 'pending' ? (w === 'all' ? 'active' : 'new') : k);
function progressTitle(w, counts) {
  const total = SEGMENTS.reduce((s, k) => s + (counts[k] || 0), 0);
  return `${w === 'all' ? 'all tasks' : 'last ' + w}: ${fmtNum(total)}\n` +
    SEGMENTS.map(k => `${segLabel(w, k)} ${fmtNum(counts[k] || 0)} (${pct(counts[k] || 0, total)})`).join('\n');
}
function progressTip(name, w, counts) {
  counts = counts || {};
  const total = SEGMENTS.reduce((s, k) => s + (counts[k] || 0), 0);
  return [el('div', { class: 'tip-title' }, `${name} · ${w === 'all' ? 'all tasks' : 'last ' + w}`),
    el('table', {}, SEGMENTS.map(k => el('tr', {},
      el('td', {}, el('span', { class: 'swatch ' + k }), ' ', segLabel(w, k)),
      el('td', { class: 'num' }, fmtNum(counts[k] || 0)),
      el('td', { class: 'num' }, pct(counts[k] || 0, total)))),
    el('tr', {}, el('td', {}, 'total'), el('td', { class: 'num' }, fmtNum(total)), el('td', {})))];
}

/* ---------------- edits ---------------- */
async function patch(name, body) {
  return api('/api/projects/' + encodeURIComponent(name), { method: 'PATCH', body });
}

async function changeStatus(row, status) {
  const p = row.project, before = p.status;
  setOverride(p.name, 'status', status);
  row.c.statusBox.className = 'status st-' + status.toLowerCase();
  row.c.statusBox.disabled = true;
  try {
    const answer = await patch(p.name, { status });
    setOverride(p.name, 'status', answer.status || status);
    if (typeof answer.dispatches === 'boolean') setOverride(p.name, 'dispatches', answer.dispatches);
    toast(`${p.name}: ${before} → ${answer.status || status}`);
  } catch (e) {
    state.overrides.delete(p.name + ':status');
    row.c.statusBox.value = before;
    row.c.statusBox.className = 'status st-' + before.toLowerCase();
    toast(`${p.name}: status not changed: ${e.message}`, 'error');
  } finally {
    row.c.statusBox.disabled = false;
    if (row.project) updateRow(row, effective(row.project));
  }
}

function openEditor(row, field) {
  if (state.editing && state.editing.name === row.project.name && state.editing.field === field) return;
  if (state.editing) closeEditor();
  const p = effective(row.project);
  const cell = field === 'rate' ? row.c.rate : row.c.group;
  const initial = field === 'rate' ? short(p.rate) + '/' + short(p.burst) : (p.group || '');
  const input = el('input', { type: 'text', class: field === 'rate' ? 'rate-input mono' : 'group-input', value: initial,
    'aria-label': field === 'rate' ? 'rate/burst of ' + p.name : 'group of ' + p.name,
    placeholder: field === 'rate' ? 'rate/burst' : 'group', spellcheck: 'false', autocomplete: 'off',
    maxlength: field === 'group' ? 64 : null });
  const error = el('div', { class: 'field-error hidden', role: 'alert' });
  const box = el('div', { class: 'inline-edit' }, input, error);
  const saved = [...cell.childNodes];
  state.editing = { name: p.name, field, cell, saved, input, saving: false };
  cell.replaceChildren(box);
  cell.title = field === 'rate' ? 'rate/burst, e.g. 5/10 · Enter saves, Esc cancels' : 'Enter saves, Esc cancels';
  input.focus();
  input.select();
  const fail = message => {
    error.textContent = message;
    error.classList.remove('hidden');
    input.classList.add('invalid');
  };
  input.addEventListener('input', () => { error.classList.add('hidden'); input.classList.remove('invalid'); });
  input.addEventListener('click', e => e.stopPropagation());
  input.addEventListener('keydown', async e => {
    if (e.key === 'Escape') { e.preventDefault(); closeEditor(); return; }
    if (e.key !== 'Enter' || state.editing.saving) return;
    e.preventDefault();
    let body;
    if (field === 'rate') {
      const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*\/\s*(\d+(?:\.\d+)?|\.\d+)\s*$/.exec(input.value);
      if (!m) return fail('Two numbers: rate/burst, e.g. 5/10');
      const r = Number(m[1]), b = Number(m[2]);
      if (!(r > 0)) return fail('Rate must be above 0');
      if (!(b >= 1)) return fail('Burst must be at least 1');
      body = { rate: r, burst: b };
    } else {
      const group = input.value.trim();
      if (group.length > 64) return fail('A group has at most 64 characters');
      body = { group: group || null };
    }
    state.editing.saving = true;
    input.disabled = true;
    try {
      const answer = await patch(p.name, body);
      for (const [k, v] of Object.entries(body)) {
        const value = answer && answer[k] !== undefined ? answer[k] : v;
        setOverride(p.name, k, k === 'group' ? value || '' : value);
      }
      closeEditor();
      toast(field === 'rate' ? `${p.name}: ${short(body.rate)} requests/s, bursts of ${short(body.burst)}`
        : `${p.name}: group ${body.group ? '“' + body.group + '”' : 'cleared'}`);
      if (state.snapshot) renderProjects(state.snapshot.projects);
    } catch (err) {
      if (!state.editing) return;
      state.editing.saving = false;
      input.disabled = false;
      input.focus();
      fail(err.message);
    }
  });
  input.addEventListener('blur', () => {
    // Leaving the field cancels, as in pyspider, unless a save is under way or an error is shown.
    setTimeout(() => {
      const ed = state.editing;
      if (ed && ed.input === input && !ed.saving && document.activeElement !== input && input.value === initial) closeEditor();
    }, 120);
  });
}

function closeEditor() {
  const ed = state.editing;
  if (!ed) return;
  state.editing = null;
  const hadFocus = document.activeElement === ed.input;
  ed.cell.replaceChildren(...ed.saved);
  if (hadFocus) ed.cell.focus({ preventScroll: true });
  const row = state.rows.get(ed.name);
  if (row && row.project) updateRow(row, effective(row.project));
}
document.addEventListener('mousedown', e => {
  const ed = state.editing;
  if (ed && !ed.saving && !ed.cell.contains(e.target)) closeEditor();
});

async function runProject(row) {
  const p = row.project, button = row.c.run;
  button.disabled = true;
  button.classList.remove('failed', 'done');
  try {
    const answer = await api('/api/projects/' + encodeURIComponent(p.name) + '/run', { method: 'POST' });
    button.classList.add('done');
    button.textContent = '✓ Queued';
    if (answer && answer.dispatches === false) {
      toast(`${p.name}: run requested; it happens once the project is started (it is ${answer.status})`);
    } else toast(`${p.name}: start URLs queued again`);
    setTimeout(() => { button.classList.remove('done'); button.textContent = '▶ Run'; }, 1600);
  } catch (e) {
    button.classList.add('failed');
    button.textContent = '✕ Failed';
    button.title = e.message;
    toast(`${p.name}: run failed: ${e.message}`, 'error');
    setTimeout(() => { button.classList.remove('failed'); button.textContent = '▶ Run'; button.title = 'Queue the start URLs again now'; }, 4000);
  } finally {
    button.disabled = false;
  }
}

/* ---------------- sorting ---------------- */
for (const th of document.querySelectorAll('table#projects th.sortable')) {
  th.addEventListener('click', () => {
    const key = th.dataset.sort;
    if (state.sort.key === key || (key === 'group' && state.sort.key === 'default')) {
      if (state.sort.dir === 1) state.sort.dir = -1;
      else state.sort = { key: 'default', dir: 1 };
    } else state.sort = { key, dir: 1 };
    for (const h of document.querySelectorAll('table#projects th.sortable')) h.removeAttribute('aria-sort');
    if (state.sort.key !== 'default') th.setAttribute('aria-sort', state.sort.dir === 1 ? 'ascending' : 'descending');
    if (state.snapshot) renderProjects(state.snapshot.projects);
  });
}

/* ---------------- start ---------------- */
function loading() {
  const skel = () => el('tr', {}, Array.from({ length: 10 }, (_, i) => el('td', {}, i === 9 ? '' : el('span', { class: 'skeleton' }))));
  tbody().replaceChildren(skel(), skel(), skel());
  $('instances').replaceChildren(el('div', { class: 'state' }, el('span', { class: 'spinner' })));
  renderPipeline([
    { stage: 'fetch', label: 'scheduler → fetcher', pending: 0, in_flight: 0, per_second: 0 },
    { stage: 'process', label: 'fetcher → processor', pending: 0, in_flight: 0, per_second: 0 },
    { stage: 'result', label: 'processor → result writer', pending: 0, in_flight: 0, per_second: 0 },
    { stage: 'scheduler', label: 'back to the scheduler', pending: 0, in_flight: 0, per_second: 0 },
  ]);
  state.history.clear();
  for (const p of pipe.values()) { p.pending.textContent = '–'; p.inFlight.textContent = '–'; p.perSecond.textContent = '–'; }
  $('pipeline-meta').textContent = '';
  drawChart();
}

function onSnapshot(s) {
  state.snapshot = s;
  state.lastAt = Date.now();
  if (!state.connected) setLive(true);
  $('mode').textContent = s.mode ? s.mode + ' mode' : '';
  if (Array.isArray(s.statuses)) state.statuses = s.statuses;
  const now = s.at_ms || Date.now();
  try { renderPipeline(s.queues); } catch (e) { console.error(e); }
  try { renderInstances(s.instances, now); } catch (e) { console.error(e); }
  try { renderThroughput(s.throughput); } catch (e) { console.error(e); }
  try { renderProjects(s.projects); } catch (e) { console.error(e); }
}

async function start() {
  topBar('dashboard');
  loading();
  try {
    state.editable = await canEdit();
  } catch (e) {
    state.editable = false;
  }
  $('new-project').classList.toggle('hidden', !state.editable);
  connect();
}

// EventSource retries by itself after a dropped stream, but gives up for good on an error
// answer (a 401 after the session expired, a 5xx): then we open a new one after a pause, and
// ask /api/me, whose 401 takes the page to the login form.
let failures = 0;
function connect() {
  const source = live(onSnapshot, on => {
    if (on) { failures = 0; return; }
    setLive(false);
    failures++;
    if (failures === 2 || failures % 10 === 0) api('/api/me').catch(() => {});
    if (!state.snapshot && failures >= 2) {
      tbody().replaceChildren(el('tr', {}, el('td', { colspan: 10 }, el('div', { class: 'state error' },
        el('div', { class: 'state-icon' }, '!'),
        el('div', { class: 'state-title' }, 'Can’t reach the live feed'),
        el('div', {}, 'Retrying every few seconds. Is the Spindle server running?')))));
    }
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, Math.min(15000, 1000 * failures));
    }
  });
}
start();
