// TOML syntax highlighting for the project editor.
//
// `tokenize(text)` splits a TOML document into lines of `[kind, text]` tokens (kinds: comment,
// string, key, table, number, bool, date, punct, var, text); `highlightLines(text)` turns
// them into one `<div class="ln">` of `<span class="t-KIND">` per line. Text only: token
// texts become text nodes, never markup. The tokenizer is forgiving: it never throws, and
// anything it does not understand is plain text (the server's check names real errors).

const NUMBER = /^[+-]?(?:0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|inf\b|nan\b|\d[\d_]*(?:\.[\d_]+)?(?:[eE][+-]?\d+)?)/;
const DATE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?|^\d{2}:\d{2}:\d{2}(?:\.\d+)?/;
const BARE_KEY = /^[A-Za-z0-9_-]+/;
const WORD = /^[^\s,\]}#=]+/;
/** Page values inside strings (`"$url"`, `"$save.category"`): shown apart from plain text. */
const PAGE_VALUE = /^\$(?:url|status|now|project|screenshot|save\.[\w.-]+|header\.[\w-]+)$/;

/**
 * Splits `text` into lines of `[kind, text]` tokens; joining every token's text and the lines
 * with "\n" gives `text` back. `lines.topLevel[i]` tells whether line `i` starts outside any
 * array, inline table or multi-line string (where a key or table header may start).
 */
export function tokenize(text) {
  const lines = [[]];
  lines.topLevel = [true];
  let line = lines[0];
  const push = (kind, s) => {
    const parts = s.split('\n');
    parts.forEach((part, i) => {
      if (i > 0) {
        line = [];
        lines.push(line);
        lines.topLevel.push(kind === 'text' && stack.length === 0);
      }
      if (part) line.push([kind, part]);
    });
  };
  // The nesting of arrays ('[') and inline tables ('{') around the position, and whether a
  // key comes next (at the start of a top-level line, after `{` or after `,` in an inline table).
  const stack = [];
  let expectKey = true;
  let atLineStart = true;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    const rest = () => text.slice(i, i + 200);
    if (c === '\n') {
      push('text', '\n');
      i++;
      if (stack.length === 0) expectKey = true;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      let j = i;
      while (j < n && (text[j] === ' ' || text[j] === '\t' || text[j] === '\r')) j++;
      push('text', text.slice(i, j));
      i = j;
      continue;
    }
    if (c === '#') {
      let j = text.indexOf('\n', i);
      if (j < 0) j = n;
      push('comment', text.slice(i, j));
      i = j;
      continue;
    }
    const wasLineStart = atLineStart;
    atLineStart = false;
    // A table header: `[table]`, `[[array.of.tables]]`, at the start of a top-level line.
    if (c === '[' && stack.length === 0 && expectKey && wasLineStart) {
      let j = i;
      let quote = null;
      let closing = 0;
      while (j < n && text[j] !== '\n') {
        const d = text[j];
        if (quote) { if (d === quote) quote = null; }
        else if (d === '"' || d === "'") quote = d;
        else if (d === '#') break;
        else if (d === ']') { closing = j + 1; if (text[j + 1] === ']') closing = j + 2; break; }
        j++;
      }
      const end = closing || j;
      push('table', text.slice(i, end));
      i = end;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = stringEnd(text, i);
      const s = text.slice(i, end);
      if (expectKey) push('key', s);
      else push(PAGE_VALUE.test(s.slice(1, -1)) ? 'var' : 'string', s);
      i = end;
      continue;
    }
    if (expectKey) {
      const m = BARE_KEY.exec(rest());
      if (m) { push('key', m[0]); i += m[0].length; continue; }
      if (c === '.') { push('punct', c); i++; continue; }
      if (c === '=') { push('punct', c); i++; expectKey = false; continue; }
      if (c === '}' && stack[stack.length - 1] === '{') { stack.pop(); push('punct', c); i++; expectKey = false; continue; }
      if (c === ',') { push('punct', c); i++; continue; }
      const w = WORD.exec(rest());
      const s = w ? w[0] : c;
      push('text', s);
      i += s.length;
      continue;
    }
    // A value.
    if (c === '[') { stack.push('['); push('punct', c); i++; continue; }
    if (c === '{') { stack.push('{'); push('punct', c); i++; expectKey = true; continue; }
    if (c === ']' || c === '}') {
      if (stack.length) stack.pop();
      push('punct', c);
      i++;
      continue;
    }
    if (c === ',') {
      push('punct', c);
      i++;
      if (stack[stack.length - 1] === '{') expectKey = true;
      continue;
    }
    const r = rest();
    let m = DATE.exec(r);
    if (m) { push('date', m[0]); i += m[0].length; continue; }
    m = /^(?:true|false)\b/.exec(r);
    if (m) { push('bool', m[0]); i += m[0].length; continue; }
    m = NUMBER.exec(r);
    if (m) { push('number', m[0]); i += m[0].length; continue; }
    m = WORD.exec(r);
    const s = m ? m[0] : c;
    push('text', s);
    i += s.length;
  }
  return lines;
}

/** The end (exclusive) of the string starting at `i`: basic, literal, or their multi-line forms. */
function stringEnd(text, i) {
  const q = text[i];
  const triple = text.startsWith(q + q + q, i);
  if (triple) {
    let j = i + 3;
    while (j < text.length) {
      if (q === '"' && text[j] === '\\') { j += 2; continue; }
      if (text.startsWith(q + q + q, j)) {
        // A multi-line string may end with up to two more quotes: `""""` ends after four.
        let end = j + 3;
        while (end < text.length && text[end] === q && end < j + 5) end++;
        return end;
      }
      j++;
    }
    return text.length;
  }
  let j = i + 1;
  while (j < text.length && text[j] !== '\n') {
    if (q === '"' && text[j] === '\\') { j += 2; continue; }
    if (text[j] === q) return j + 1;
    j++;
  }
  return j;
}

/** One `<div class="ln">` per line of `text`, its tokens as `<span class="t-KIND">` text. */
export function highlightLines(text) {
  return tokenize(text).map(tokens => {
    const div = document.createElement('div');
    div.className = 'ln';
    for (const [kind, s] of tokens) {
      if (kind === 'text') { div.append(s); continue; }
      const span = document.createElement('span');
      span.className = 't-' + kind;
      span.textContent = s;
      div.append(span);
    }
    return div;
  });
}
