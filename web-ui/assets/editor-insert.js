// Where the selector helper's rules go in the project text: pure functions from (text, caret)
// to (new text, new caret), so that an inserted line always lands where TOML allows it.
//
// A field `item.NAME = { css = "…" }` goes on its own line in the handler around the caret
// (after the statement the caret is in, never inside an array or a multi-line string; never
// under a `[handlers.X.items]` sub-table, where it would mean something else); a follow
// `{ css = "…", callback = "…" },` goes into that handler's `follow = [ … ]` array, at the caret
// when the caret is in it. Outside any handler, both go to the handler of the debugger's
// page (`fallback`), a section that is created when missing.

import { tokenize } from './toml.js';

const BARE = /^[A-Za-z0-9_-]+$/;

/** A TOML string holding `s`: a literal string when it has `"` but no `'`, else a basic one. */
export function tomlString(s) {
  if (s.includes('"') && !s.includes("'") && !/[\n\r]/.test(s)) return "'" + s + "'";
  return '"' + s.replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t') + '"';
}

/** A TOML key for `name`: bare when it can be, else quoted. */
export const tomlKey = name => (BARE.test(name) ? name : tomlString(name));

/**
 * The table headers of `text`: `[{line, path: [..keys]}]` (lines from 0), and for every line
 * whether it starts at top level.
 */
export function outline(text) {
  const lines = tokenize(text);
  const headers = [];
  lines.forEach((tokens, i) => {
    const first = tokens.find(t => t[0] !== 'text');
    if (first && first[0] === 'table' && lines.topLevel[i]) {
      headers.push({ line: i, path: tablePath(first[1]) });
    }
  });
  return { headers, topLevel: lines.topLevel, count: lines.length };
}

/** `[handlers."a b".items]` → ['handlers', 'a b', 'items']. */
function tablePath(header) {
  const inner = header.replace(/^\[\[?|\]\]?$/g, '');
  const keys = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*\.?/g;
  let m;
  while ((m = re.exec(inner)) && m[0]) keys.push(m[1] ?? m[2] ?? m[3]);
  return keys;
}

/** The handler names declared in `text` (`[handlers.NAME]` and `[handlers.NAME.…]`), in order. */
export function handlerNames(text) {
  const names = [];
  for (const h of outline(text).headers) {
    if (h.path[0] === 'handlers' && h.path[1] && !names.includes(h.path[1])) names.push(h.path[1]);
  }
  return names;
}

/** The first start URL of `text`, or ''. */
export function firstStartUrl(text) {
  const m = /^\s*start\s*=\s*\[\s*(?:#[^\n]*\n\s*)*(?:"([^"\n]*)"|'([^'\n]*)')/m.exec(text);
  return m ? (m[1] ?? m[2]) : '';
}

/** Line starts: offsets of each line's first character. */
function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return starts;
}

/**
 * Where the handler's own keys are: `{handler, header, bodyStart, bodyEnd}` (line numbers;
 * the body is from the line after the header to the last non-blank line before the next
 * header, inclusive/exclusive), for the handler around line `at` or, failing that, `fallback`.
 */
function handlerSection(text, at, fallback) {
  const { headers, count } = outline(text);
  const lines = text.split('\n');
  let current = null;
  for (const h of headers) if (h.line <= at) current = h;
  let name = current && current.path[0] === 'handlers' && current.path.length >= 2 ? current.path[1] : null;
  const inOwnTable = !!(name && current.path.length === 2);
  if (!name) name = fallback;
  const main = headers.find(h => h.path.length === 2 && h.path[0] === 'handlers' && h.path[1] === name);
  if (!main) return { handler: name, missing: true, inOwnTable: false };
  const next = headers.find(h => h.line > main.line);
  let end = next ? next.line : count;
  while (end - 1 > main.line && !lines[end - 1].trim()) end--;
  return { handler: name, header: main.line, bodyStart: main.line + 1, bodyEnd: end, inOwnTable };
}

/** Inserts `lineText` as a whole line before line `index` of `text`: `{text, offset}` (caret at its end). */
function insertLine(text, index, lineText) {
  const starts = lineStarts(text);
  if (index >= starts.length) {
    const sep = text.endsWith('\n') || text === '' ? '' : '\n';
    const out = text + sep + lineText + '\n';
    return { text: out, offset: text.length + sep.length + lineText.length };
  }
  const at = starts[index];
  return { text: text.slice(0, at) + lineText + '\n' + text.slice(at), offset: at + lineText.length };
}

/** Appends a new `[handlers.NAME]` section holding `body` (lines) at the end of `text`. */
function appendSection(text, handler, body) {
  const sep = text === '' ? '' : text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n';
  const head = `${sep}[handlers.${tomlKey(handler)}]\n`;
  const out = text + head + body.join('\n') + '\n';
  return { text: out, offset: text.length + head.length + body.join('\n').length };
}

/** The line number (from 0) of `offset`. */
const lineOf = (text, offset) => text.slice(0, offset).split('\n').length - 1;

/** The next line after `line` that starts at top level (the end of the statement on `line`). */
function statementEnd(topLevel, line, limit) {
  let j = line + 1;
  while (j < limit && !topLevel[j]) j++;
  return j;
}

/** Inserts `item.NAME = { css = SELECTOR }` on its own line in the handler at the caret. */
export function insertField(text, offset, name, selector, fallback = 'start') {
  const line = `item.${tomlKey(name)} = { css = ${tomlString(selector)} }`;
  const at = lineOf(text, offset);
  const section = handlerSection(text, at, fallback);
  if (section.missing) return appendSection(text, section.handler, [line]);
  const { topLevel } = outline(text);
  const lines = text.split('\n');
  if (section.inOwnTable && at >= section.bodyStart - 1) {
    if (at === section.header) return insertLine(text, section.bodyStart, line);
    if (topLevel[at] && !lines[at].trim()) {
      // A blank line at the caret: the field takes it.
      const starts = lineStarts(text);
      const out = text.slice(0, starts[at]) + line + text.slice(starts[at] + lines[at].length);
      return { text: out, offset: starts[at] + line.length };
    }
    const starts = lineStarts(text);
    if (topLevel[at] && !text.slice(starts[at], offset).trim()) {
      // The caret at the start of a statement: the field goes before it.
      return insertLine(text, at, line);
    }
    let start = at;
    while (start > section.bodyStart && !topLevel[start]) start--;
    return insertLine(text, statementEnd(topLevel, start, lines.length), line);
  }
  return insertLine(text, section.bodyEnd, line);
}

/** Inserts `{ css = SELECTOR, callback = CALLBACK },` into the handler's follow array. */
export function insertFollow(text, offset, selector, callback, fallback = 'start') {
  const entry = `{ css = ${tomlString(selector)}, callback = ${tomlString(callback)} },`;
  const at = lineOf(text, offset);
  const section = handlerSection(text, at, fallback);
  if (section.missing) return appendSection(text, section.handler, ['follow = [', '  ' + entry, ']']);
  const { topLevel } = outline(text);
  const lines = text.split('\n');
  const starts = lineStarts(text);
  // The handler's `follow = [` statement.
  let follow = -1;
  for (let i = section.bodyStart; i < section.bodyEnd; i++) {
    if (topLevel[i] && /^\s*follow\s*=\s*\[/.test(lines[i])) { follow = i; break; }
  }
  if (follow < 0) {
    const block = ['follow = [', '  ' + entry, ']'];
    const out = insertLine(text, section.bodyStart, block.join('\n'));
    return { text: out.text, offset: out.offset - 2 };
  }
  const end = statementEnd(topLevel, follow, lines.length); // the line after the statement
  const indent = /^\s*/.exec(lines[follow])[0] + '  ';
  if (end - 1 === follow) {
    // A one-line array: open it up, the new entry on its own line before the `]`.
    const l = lines[follow];
    const close = l.lastIndexOf(']');
    const open = l.indexOf('[');
    const inner = l.slice(open + 1, close).trim();
    const rebuilt = l.slice(0, open + 1) + '\n' + (inner ? indent + inner.replace(/,?$/, ',') + '\n' : '') +
      indent + entry + '\n' + /^\s*/.exec(l)[0] + l.slice(close);
    const out = text.slice(0, starts[follow]) + rebuilt + text.slice(starts[follow] + l.length);
    const caret = starts[follow] + rebuilt.indexOf(entry) + entry.length;
    return { text: out, offset: caret };
  }
  const last = end - 1; // the line with the closing `]`
  if (at > follow && at < last && section.inOwnTable) {
    // The caret is inside the array: the entry goes on its own line there.
    if (!lines[at].trim()) {
      const out = text.slice(0, starts[at]) + indent + entry + text.slice(starts[at] + lines[at].length);
      return { text: out, offset: starts[at] + indent.length + entry.length };
    }
    const col = offset - starts[at];
    const before = lines[at].slice(0, col);
    if (!before.trim()) return insertLine(text, at, indent + entry);
    return insertLine(text, at + 1, indent + entry);
  }
  // Otherwise at the end of the array.
  const closing = lines[last];
  const bracket = closing.lastIndexOf(']');
  if (closing.slice(0, bracket).trim()) {
    // `…last entry }]`: put the `]` on a line of its own.
    const head = closing.slice(0, bracket).replace(/\s+$/, '');
    const rebuilt = head + (head.endsWith(',') || head.endsWith('[') ? '' : ',') + '\n' + indent + entry + '\n' +
      /^\s*/.exec(lines[follow])[0] + closing.slice(bracket);
    const out = text.slice(0, starts[last]) + rebuilt + text.slice(starts[last] + closing.length);
    return { text: out, offset: starts[last] + rebuilt.indexOf(entry) + entry.length };
  }
  return insertLine(text, last, indent + entry);
}
