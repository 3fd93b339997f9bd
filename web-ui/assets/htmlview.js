// The page source, indented and highlighted, built from DOM nodes (text only, never markup).
//
// `formatHtml(source)` reads the source with a forgiving tokenizer (tags, attributes, text,
// comments, doctype; script/style/textarea/title contents kept raw), nests it (void
// elements, implied ends of p/li/td/… , stray end tags ignored) and prints one element per
// line, short elements whole on one line. `renderLines(lines, into, limit)` draws the lines.

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr']);
const RAW = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'plaintext']);
const BLOCK = new Set(['address', 'article', 'aside', 'blockquote', 'div', 'dl', 'fieldset', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table', 'ul', 'figure', 'details']);
/** Start tags that end an open element of these names (the parser's implied end tags). */
const CLOSES = {
  li: ['li'], dt: ['dt', 'dd'], dd: ['dt', 'dd'], tr: ['tr', 'td', 'th'], td: ['td', 'th'], th: ['td', 'th'],
  option: ['option'], thead: ['tbody', 'thead'], tbody: ['tbody', 'thead'], tfoot: ['tbody', 'thead'],
};
const ONE_LINE = 100;

const TAG_NAME = /[A-Za-z][^\s/>]*/y;
const SPACE = /[\s/]*/y;
const ATTR_NAME = /[^\s=>/]+|[^\s>]/y;
const BARE_VALUE = /[^\s>]*/y;
const BLANK = /\s*/y;

/** Runs the sticky regex `re` at `at`: the match, or null. */
function at(re, source, i) {
  re.lastIndex = i;
  const m = re.exec(source);
  return m ? m[0] : null;
}

/** Tokens of `source`: {type: 'open'|'close'|'text'|'raw'|'comment'|'doctype', ...}. */
export function tokenizeHtml(source) {
  const tokens = [];
  let i = 0;
  const n = source.length;
  while (i < n) {
    const lt = source.indexOf('<', i);
    if (lt < 0) { tokens.push({ type: 'text', text: source.slice(i) }); break; }
    if (lt > i) tokens.push({ type: 'text', text: source.slice(i, lt) });
    i = lt;
    if (source.startsWith('<!--', i)) {
      let end = source.indexOf('-->', i + 4);
      end = end < 0 ? n : end + 3;
      tokens.push({ type: 'comment', text: source.slice(i, end) });
      i = end;
      continue;
    }
    if (source[i + 1] === '!' || source[i + 1] === '?') {
      let end = source.indexOf('>', i);
      end = end < 0 ? n : end + 1;
      tokens.push({ type: 'doctype', text: source.slice(i, end) });
      i = end;
      continue;
    }
    const close = source[i + 1] === '/';
    const tag = at(TAG_NAME, source, i + (close ? 2 : 1));
    if (!tag) { tokens.push({ type: 'text', text: '<' }); i++; continue; }
    const name = tag.toLowerCase();
    let j = i + (close ? 2 : 1) + tag.length;
    const attrs = [];
    // Attributes: a name, then an optional `=` and a quoted or bare value.
    for (;;) {
      j += at(SPACE, source, j).length;
      if (source[j - 1] === '/' && source[j] === '>') { j--; break; }
      if (j >= n || source[j] === '>') break;
      const attrName = at(ATTR_NAME, source, j);
      j += attrName.length;
      let k = j + at(BLANK, source, j).length;
      let value = null;
      if (source[k] === '=') {
        k++;
        k += at(BLANK, source, k).length;
        const q = source[k];
        if (q === '"' || q === "'") {
          let end = source.indexOf(q, k + 1);
          if (end < 0) end = n - 1;
          value = source.slice(k, end + 1);
          k = end + 1;
        } else {
          value = at(BARE_VALUE, source, k);
          k += value.length;
        }
        j = k;
      }
      attrs.push([attrName, value]);
    }
    const selfClosing = source[j] === '/';
    const end = source.indexOf('>', j);
    i = end < 0 ? n : end + 1;
    if (close) { tokens.push({ type: 'close', name }); continue; }
    tokens.push({ type: 'open', name, attrs, selfClosing });
    if (RAW.has(name)) {
      const re = new RegExp('</' + name + '\\s*>', 'ig');
      re.lastIndex = i;
      const m2 = re.exec(source);
      const stop = m2 ? m2.index : n;
      if (stop > i) tokens.push({ type: 'raw', text: source.slice(i, stop) });
      if (m2) tokens.push({ type: 'close', name });
      i = m2 ? stop + m2[0].length : n;
    }
  }
  return tokens;
}

/** The tree of `tokens`: a root `{children}` of elements `{name, attrs, children}` and leaves. */
export function parseHtml(source) {
  const root = { name: '#root', children: [] };
  const stack = [root];
  const top = () => stack[stack.length - 1];
  for (const t of tokenizeHtml(source)) {
    if (t.type === 'open') {
      const closes = CLOSES[t.name] || (BLOCK.has(t.name) ? ['p'] : null);
      if (closes && closes.includes(top().name)) stack.pop();
      const node = { name: t.name, attrs: t.attrs, children: [] };
      top().children.push(node);
      if (!VOID.has(t.name) && !t.selfClosing) stack.push(node);
    } else if (t.type === 'close') {
      const at = stack.map(s => s.name).lastIndexOf(t.name);
      if (at > 0) stack.length = at;
    } else {
      top().children.push(t);
    }
  }
  return root;
}

/** Lines of the formatted source: `[{depth, parts: [[kind, text], ...]}]`. */
export function formatHtml(source) {
  const lines = [];
  const walk = (node, depth) => {
    for (const child of node.children) {
      if (child.type === 'text') {
        const text = child.text.replace(/\s+/g, ' ').trim();
        if (text) lines.push({ depth, parts: [['text', text]] });
      } else if (child.type === 'comment') {
        lines.push({ depth, parts: [['comment', child.text]] });
      } else if (child.type === 'doctype') {
        lines.push({ depth, parts: [['doctype', child.text]] });
      } else if (child.type === 'raw') {
        rawLines(child.text).forEach(l => lines.push({ depth, parts: [['raw', l]] }));
      } else {
        const inline = oneLine(child);
        if (inline) { lines.push({ depth, parts: inline }); continue; }
        lines.push({ depth, parts: openTag(child) });
        if (!VOID.has(child.name)) {
          walk(child, depth + 1);
          lines.push({ depth, parts: closeTag(child.name) });
        }
      }
    }
  };
  walk(parseHtml(source), 0);
  return lines;
}

function rawLines(text) {
  const lines = text.replace(/\s+$/, '').split('\n');
  while (lines.length && !lines[0].trim()) lines.shift();
  const indent = Math.min(...lines.filter(l => l.trim()).map(l => /^\s*/.exec(l)[0].length));
  return lines.map(l => l.slice(Number.isFinite(indent) ? indent : 0).replace(/\s+$/, ''));
}

function openTag(node) {
  const parts = [['punct', '<'], ['tag', node.name]];
  for (const [name, value] of node.attrs) {
    parts.push(['text', ' '], ['attr', name]);
    if (value !== null) parts.push(['punct', '='], ['value', value]);
  }
  parts.push(['punct', '>']);
  return parts;
}

const closeTag = name => [['punct', '</'], ['tag', name], ['punct', '>']];

/** The parts of `node` printed on one line, or null when it holds elements with children or is too long. */
function oneLine(node) {
  if (RAW.has(node.name) && node.name !== 'title') return null;
  const parts = openTag(node);
  if (VOID.has(node.name)) return parts;
  for (const child of node.children) {
    if (child.type === 'text') {
      const text = child.text.replace(/\s+/g, ' ');
      if (text.trim()) parts.push(['text', text]);
    } else if (child.type === 'raw') {
      parts.push(['raw', child.text.trim()]);
    } else if (child.name && !child.type && child.children.every(c => c.type === 'text')) {
      if (BLOCK.has(child.name)) return null;
      parts.push(...openTag(child));
      for (const c of child.children) parts.push(['text', c.text.replace(/\s+/g, ' ')]);
      parts.push(...closeTag(child.name));
    } else {
      return null;
    }
  }
  parts.push(...closeTag(node.name));
  const length = parts.reduce((s, p) => s + p[1].length, 0);
  return length <= ONE_LINE ? tidy(parts) : null;
}

/** Trims whitespace right after the opening tag and right before the closing one. */
function tidy(parts) {
  const firstText = parts.findIndex((p, i) => i > 0 && parts[i - 1][1] === '>' && p[0] === 'text');
  if (firstText > 0) parts[firstText] = ['text', parts[firstText][1].replace(/^\s+/, '')];
  const lastText = parts.length - 4;
  if (parts[lastText] && parts[lastText][0] === 'text') parts[lastText] = ['text', parts[lastText][1].replace(/\s+$/, '')];
  return parts.filter(p => p[1] !== '');
}

/**
 * Draws `lines` into `into` (emptied first), at most `limit` of them, then a button for the
 * rest. Each line is a `<div class="hl-line">` indented by its depth.
 */
export function renderLines(lines, into, limit = 3000) {
  into.replaceChildren();
  let shown = 0;
  const more = document.createElement('button');
  more.className = 'btn more-lines';
  const draw = count => {
    const fragment = document.createDocumentFragment();
    const end = Math.min(lines.length, shown + count);
    for (; shown < end; shown++) {
      const line = lines[shown];
      const div = document.createElement('div');
      div.className = 'hl-line';
      div.style.setProperty('--depth', String(Math.min(line.depth, 40)));
      for (const [kind, text] of line.parts) {
        if (kind === 'text') { div.append(text); continue; }
        const span = document.createElement('span');
        span.className = 'h-' + kind;
        span.textContent = text;
        div.append(span);
      }
      fragment.append(div);
    }
    more.remove();
    into.append(fragment);
    if (shown < lines.length) {
      more.textContent = `Show ${Math.min(limit, lines.length - shown)} more lines (${lines.length - shown} left)`;
      into.append(more);
    }
  };
  more.addEventListener('click', () => draw(limit));
  draw(limit);
}
