// The selector helper's logic: from a clicked element, the shortest CSS selector that matches
// the same elements as the element's full structural path. Pure functions over a DOM (the
// preview's document); no UI here.
//
// The structural path of an element is, for it and each ancestor below <body>, its tag, #id,
// .classes and [itemprop|rel|property|name|type] attributes ("features"). The full path
// `body > main > ul.tiles > li.tile > h3 > a` (every feature, child combinators) defines the
// target set: the elements "in the same place" as the clicked one (no :nth-child, so the
// clicked product link of a list stands for all of them). Any selector made of a subset of
// these features, joined with descendant combinators and ending on the clicked element's
// own node, matches a superset of the target set (fewer conditions can only match more), so
// it matches exactly the target set when it matches as many elements. The search tries
// subsets breadth-first by number of features, each size ordered by fewer compound parts,
// then features closer to the clicked element, then id < class < attribute < tag; bounded
// (features nearest the element, subsets up to MAX_SIZE, a time budget), then greedy, then
// the full path itself.

/** Attributes that are features of a node besides tag, id and classes. */
export const ATTRIBUTES = ['itemprop', 'rel', 'property', 'name', 'type'];

/** Search bounds: features considered (nearest the element first), largest subset tried
 * exhaustively, queries tried and time spent before the greedy fallback. */
export const LIMITS = { features: 18, maxSize: 4, queries: 4000, ms: 250, classesPerNode: 6 };

const KIND_RANK = { id: 0, class: 1, attr: 2, tag: 3 };

const esc = s => (typeof CSS !== 'undefined' && CSS.escape ? CSS.escape(s) : String(s).replace(/[^\w-]/g, c => '\\' + c));
const quote = s => '"' + String(s).replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\a ') + '"';

/**
 * The structural path of `element`: one node per element from the topmost ancestor below
 * <body> down to `element`, each `{tag, features: [{kind, text}]}`, `text` being the feature
 * as CSS (`li`, `#main`, `.tile`, `[rel="next"]`).
 */
export function structuralPath(element) {
  const nodes = [];
  for (let e = element; e && e.nodeType === 1; e = e.parentElement) {
    const tag = e.localName;
    if (tag === 'body' || tag === 'html') break;
    nodes.unshift(describe(e));
  }
  return nodes;
}

function describe(e) {
  const tag = e.localName;
  const features = [{ kind: 'tag', text: esc(tag) }];
  const id = e.getAttribute('id');
  if (id && !/\s/.test(id)) features.push({ kind: 'id', text: '#' + esc(id) });
  const seen = new Set();
  for (const c of (e.getAttribute('class') || '').split(/\s+/)) {
    if (!c || seen.has(c) || seen.size >= LIMITS.classesPerNode) continue;
    seen.add(c);
    features.push({ kind: 'class', text: '.' + esc(c) });
  }
  for (const name of ATTRIBUTES) {
    const value = e.getAttribute(name);
    if (value === null || value === '' || value.length > 80) continue;
    features.push({ kind: 'attr', text: `[${name}=${quote(value)}]` });
  }
  return { tag, features };
}

/** The compound selector of one node from the chosen features (tag first), or '' if none. */
function compound(features) {
  const tag = features.find(f => f.kind === 'tag');
  return (tag ? tag.text : '') + features.filter(f => f.kind !== 'tag').map(f => f.text).join('');
}

/** The full path as a selector: every feature of every node, child combinators from body. */
export function fullSelector(path) {
  if (!path.length) return 'body';
  return 'body > ' + path.map(n => compound(n.features)).join(' > ');
}

/**
 * The selector of `parts` (a path whose features carry `on`): the chosen features of each
 * node, nodes joined by descendant combinators; the last node gives at least `*`.
 */
export function selectorFor(parts) {
  if (!parts.length) return 'body';
  const out = [];
  parts.forEach((node, i) => {
    const c = compound(node.features.filter(f => f.on));
    if (c) out.push(c);
    else if (i === parts.length - 1) out.push('*');
  });
  return out.join(' ');
}

/** How many elements of `root` match `selector`; -1 if it is not a valid selector. */
export function countMatches(selector, root) {
  try {
    return root.querySelectorAll(selector).length;
  } catch {
    return -1;
  }
}

/**
 * The shortest selector for `element` within `root` (a document or element): `{selector,
 * count, parts, full, method}` where `parts` is the structural path with each feature's `on`
 * telling whether the selector uses it, `full` the full-path selector and `method` how it was
 * found ('search', 'greedy' or 'full').
 */
export function proposeSelector(element, root, limits = LIMITS, exclude = new Set()) {
  const path = withoutExcluded(structuralPath(element), exclude);
  const full = fullSelector(path);
  const target = countMatches(full, root);
  const last = path.length - 1;
  const result = (chosen, method) => {
    const parts = path.map((node, i) => ({
      tag: node.tag,
      features: node.features.map((f, j) => ({ ...f, on: chosen.has(i + ':' + j) })),
    }));
    const selector = selectorFor(parts);
    return { selector, count: countMatches(selector, root), parts, full, method };
  };
  if (last < 0 || target <= 0) {
    return result(new Set(path.flatMap((n, i) => n.features.map((_, j) => i + ':' + j))), 'full');
  }

  // Every feature with its node, distance from the element and kind; nearest first.
  const all = [];
  path.forEach((node, i) => node.features.forEach((f, j) => all.push({
    key: i + ':' + j, node: i, distance: last - i, rank: KIND_RANK[f.kind], feature: f,
  })));
  all.sort((a, b) => a.distance - b.distance || a.rank - b.rank);
  const pool = all.filter(f => f.node === last).concat(all.filter(f => f.node !== last)
    .slice(0, Math.max(0, limits.features - all.filter(f => f.node === last).length)));

  const selectorOf = features => {
    const byNode = new Map();
    for (const f of features) {
      if (!byNode.has(f.node)) byNode.set(f.node, []);
      byNode.get(f.node).push(f.feature);
    }
    return [...byNode.keys()].sort((a, b) => a - b).map(i => compound(byNode.get(i))).join(' ');
  };

  const started = Date.now();
  let queries = 0;
  const outOfBudget = () => queries >= limits.queries || Date.now() - started > limits.ms;

  for (let size = 1; size <= Math.min(limits.maxSize, pool.length); size++) {
    const candidates = [];
    combinations(pool, size, combo => {
      if (!combo.some(f => f.node === last)) return;
      const nodes = new Set(combo.map(f => f.node));
      candidates.push({
        combo,
        score: [nodes.size, combo.reduce((s, f) => s + f.distance, 0), combo.reduce((s, f) => s + f.rank, 0)],
      });
    });
    candidates.sort((a, b) => a.score[0] - b.score[0] || a.score[1] - b.score[1] || a.score[2] - b.score[2]);
    for (const { combo } of candidates) {
      if (outOfBudget()) break;
      queries++;
      if (countMatches(selectorOf(combo), root) === target) {
        return result(new Set(combo.map(f => f.key)), 'search');
      }
    }
    if (outOfBudget()) break;
  }

  // Greedy: from the element's most selective feature, add whichever feature narrows most.
  const chosen = [];
  let count = Infinity;
  const candidatesFor = () => all.filter(f => !chosen.includes(f));
  const firstPool = all.filter(f => f.node === last);
  for (let step = 0; step < 12 && count !== target && Date.now() - started < 4 * limits.ms; step++) {
    let best = null;
    let bestCount = count;
    for (const f of step === 0 ? firstPool : candidatesFor()) {
      const n = countMatches(selectorOf([...chosen, f]), root);
      if (n >= 0 && n < bestCount) { best = f; bestCount = n; }
      if (bestCount === target) break;
    }
    if (!best) break;
    chosen.push(best);
    count = bestCount;
  }
  if (count === target) return result(new Set(chosen.map(f => f.key)), 'greedy');

  // The full path with descendant combinators may still match more (a `div > p` path also
  // matches `div div p`): fall back to the full path itself.
  const everything = result(new Set(all.map(f => f.key)), 'full');
  if (everything.count === target) return everything;
  return { ...everything, selector: full, count: target };
}

/** The path without the features `exclude` names (by their text, as `i:.class`); tags stay. */
function withoutExcluded(path, exclude) {
  if (!exclude.size) return path;
  return path.map((node, i) => ({ ...node, features: node.features.filter(f => f.kind === 'tag' || !exclude.has(i + ':' + f.text)) }));
}

/**
 * Ways to widen the target set: features of the full path (classes, ids, attributes) that
 * single out the clicked element's place among similar ones (`li.tile.sale` among `li.tile`).
 * For each, `{key, text, count}`: leaving it out of the full path matches `count` elements,
 * more than the full path does. At most `max`, largest first.
 */
export function widenings(element, root, exclude = new Set(), max = 3) {
  const path = withoutExcluded(structuralPath(element), exclude);
  const base = countMatches(fullSelector(path), root);
  const out = [];
  path.forEach((node, i) => node.features.forEach(f => {
    if (f.kind === 'tag') return;
    const key = i + ':' + f.text;
    const count = countMatches(fullSelector(withoutExcluded(path, new Set([key]))), root);
    if (count > base) out.push({ key, text: f.text, count });
  }));
  return out.sort((a, b) => b.count - a.count).slice(0, max);
}

/** Calls `visit` with every `size`-element combination of `items`, in order. */
function combinations(items, size, visit) {
  const combo = [];
  const walk = start => {
    if (combo.length === size) { visit(combo.slice()); return; }
    for (let i = start; i <= items.length - (size - combo.length); i++) {
      combo.push(items[i]);
      walk(i + 1);
      combo.pop();
    }
  };
  walk(0);
}

/** A field name suggested by an element: its itemprop, a telling class, or its tag. */
export function suggestName(element) {
  // A table cell or a definition: the label beside it (`<th>SKU</th><td>…` → sku).
  const row = element.closest('td, dd');
  const label = row && (row.localName === 'td' ? row.parentElement.querySelector('th') : row.previousElementSibling);
  const labelText = label && label !== row && (label.textContent || '').trim();
  if (labelText && labelText.length <= 30) return labelText.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'field';
  const prop = element.getAttribute('itemprop');
  const fromClass = (element.getAttribute('class') || '').split(/\s+/).find(c => /^[a-z][a-z_-]{2,20}$/i.test(c));
  const tagNames = { h1: 'title', h2: 'heading', h3: 'name', a: 'link', img: 'image', time: 'date', p: 'text' };
  const name = prop || fromClass || tagNames[element.localName] || element.localName;
  return name.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'field';
}
