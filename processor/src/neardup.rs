//! Near-duplicate pages: a page whose text matches one already seen in the project is a
//! duplicate of it, and its follows are not expanded (its items still are).
//!
//! This is what stops traps that URL rules cannot see: a session id in a path segment
//! (`/s/8f3a.../page`) or a parameter of an unknown name gives the same page a new URL on
//! every visit, and each visit links to more of them. The page itself stays the same.
//!
//! **Fingerprint**: a 64-bit SimHash (Charikar) over shingles of three consecutive words of the
//! page's visible text (tags, comments, `<script>` and `<style>` removed, words lower-cased,
//! so whitespace and markup never count). Words that look like generated ids (16 characters
//! or more mixing letters and digits: every session id format in use) are left out, so a
//! session id echoed into the text changes nothing. SimHash, unlike an exact hash, moves by
//! only a few bits when a few other words change (a clock, a counter). Two
//! pages are duplicates when their fingerprints differ in at most [`MAX_DISTANCE`] bits (the
//! usual threshold for 64-bit SimHash of web pages, Manku et al., WWW 2007). A page with fewer
//! than [`MIN_SHINGLES`] shingles has too little text to judge and is never a duplicate, so
//! short distinct pages (an API answer, a tiny list) are never confused.
//!
//! **Memory**: a [`Seen`] table per project keeps at most [`CAPACITY`] fingerprints, first in
//! first out (about 110 bytes each with the task id and the index, so under 4 MiB a project).
//! A duplicate of a page pushed out of the table is not recognized; a trap still stops,
//! because its pages keep matching the recent ones.
//!
//! **Where**: the processor is the one role that has the body. Each processor keeps its own
//! table (in memory, not stored), so in distributed mode with several processors a page is
//! compared with the pages that processor handled: a trap is still cut, a few pages later.
//! A re-crawl of the same task is never a duplicate of itself.

use std::collections::{HashMap, VecDeque};

use xxhash_rust::xxh3::xxh3_64;

/// Largest number of differing bits between two fingerprints of duplicate pages.
pub const MAX_DISTANCE: u32 = 3;

/// Fewest distinct shingles a page needs to be judged at all: below that, one changed word
/// moves too many bits of the fingerprint for the distance to mean anything.
pub const MIN_SHINGLES: usize = 32;

/// Fingerprints kept per project (oldest dropped first).
pub const CAPACITY: usize = 32_768;

/// Words per shingle.
const SHINGLE: usize = 3;

/// Longest text fingerprinted: a page's first 256 KiB of text judge it well enough, and a
/// huge page costs no more than that.
const MAX_TEXT: usize = 256 * 1024;

/// The SimHash of `html`'s visible text, or `None` when it has too little text to judge.
pub fn fingerprint(html: &str) -> Option<u64> {
    let text = visible_words(html);
    // Each word hashed once, then combined three at a time (so "a bc" and "ab c" differ).
    let words: Vec<u64> = text
        .split_ascii_whitespace()
        .filter(|w| !looks_like_id(w))
        .map(|w| xxh3_64(w.as_bytes()))
        .collect();
    if words.len() < SHINGLE + MIN_SHINGLES - 1 {
        return None;
    }
    // Each distinct shingle counts once: a phrase repeated in every row of a list must not
    // outweigh the rows' own words.
    let mut shingles: Vec<u64> = words
        .windows(SHINGLE)
        .map(|shingle| {
            shingle
                .iter()
                .fold(0u64, |h, word| h.rotate_left(21) ^ word)
        })
        .collect();
    shingles.sort_unstable();
    shingles.dedup();
    if shingles.len() < MIN_SHINGLES {
        return None;
    }
    // Counts of set bits: a branchless loop the compiler vectorizes (this runs on every page).
    let mut ones = [0u32; 64];
    for h in &shingles {
        for (bit, count) in ones.iter_mut().enumerate() {
            *count += (h >> bit & 1) as u32;
        }
    }
    // A bit is set when most shingles have it.
    let count = shingles.len() as u64;
    Some(
        ones.iter()
            .enumerate()
            .filter(|(_, ones)| 2 * u64::from(**ones) > count)
            .fold(0u64, |acc, (bit, _)| acc | 1 << bit),
    )
}

/// Whether a word looks like a generated id (a session id, a token): 16 characters or more,
/// letters and digits mixed.
fn looks_like_id(word: &str) -> bool {
    word.len() >= 16
        && word.bytes().any(|b| b.is_ascii_digit())
        && word.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The text of `html` without tags, comments, scripts and styles, lower-cased, words
/// separated by spaces (at most [`MAX_TEXT`] bytes of the input are read).
fn visible_words(html: &str) -> String {
    let mut end = html.len().min(MAX_TEXT);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let html = &html[..end];
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let skip_to = if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else if starts_with_tag(rest, "script") {
            find_ci(rest, "</script").and_then(|i| rest[i..].find('>').map(|j| i + j + 1))
        } else if starts_with_tag(rest, "style") {
            find_ci(rest, "</style").and_then(|i| rest[i..].find('>').map(|j| i + j + 1))
        } else {
            rest.find('>').map(|i| i + 1)
        };
        match skip_to {
            Some(i) => {
                // A tag separates words: `a<br>b` is two words.
                out.push(' ');
                rest = &rest[i..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // This runs on every page: ASCII is folded in place, and only the words that are not
    // ASCII go through Unicode's tables.
    out.make_ascii_lowercase();
    if out.is_ascii() {
        return out;
    }
    out.split_inclusive(' ')
        .map(|word| match word.is_ascii() {
            true => std::borrow::Cow::Borrowed(word),
            false => std::borrow::Cow::Owned(word.to_lowercase()),
        })
        .collect()
}

/// Whether `s` opens the tag `name` (`<name>` or `<name ...`), ignoring case.
fn starts_with_tag(s: &str, name: &str) -> bool {
    let Some(after) = s.get(1..1 + name.len()) else {
        return false;
    };
    after.eq_ignore_ascii_case(name)
        && s[1 + name.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == '>' || c == '/' || c.is_whitespace())
}

/// Position of `needle` (ASCII) in `hay`, ignoring ASCII case.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// The fingerprints of one project's recent pages, with the task each came from.
#[derive(Debug, Default)]
pub struct Seen {
    /// Fingerprint and task id by slot, oldest first.
    entries: VecDeque<(u64, Box<str>)>,
    /// Number of entries pushed out so far: slot `i` of `entries` has id `evicted + i`.
    evicted: u64,
    /// By (block number, 16-bit block): ids of the entries with that block. Two fingerprints
    /// within [`MAX_DISTANCE`] (< 4) bits agree on one of their four blocks at least.
    index: HashMap<(u8, u16), Vec<u64>>,
}

impl Seen {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fingerprints held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The task whose page `fp` duplicates (another task's, within [`MAX_DISTANCE`] bits), or
    /// `None`, in which case `fp` is remembered as the page of `taskid`.
    pub fn check(&mut self, taskid: &str, fp: u64) -> Option<String> {
        let mut own = false;
        for (block, key) in blocks(fp) {
            for id in self.index.get(&(block, key)).into_iter().flatten() {
                let Some((other, other_task)) = id
                    .checked_sub(self.evicted)
                    .and_then(|slot| usize::try_from(slot).ok())
                    .and_then(|slot| self.entries.get(slot))
                else {
                    continue;
                };
                if (other ^ fp).count_ones() <= MAX_DISTANCE {
                    if &**other_task == taskid {
                        own = true;
                    } else {
                        return Some(other_task.to_string());
                    }
                }
            }
        }
        if !own {
            self.insert(taskid, fp);
        }
        None
    }

    fn insert(&mut self, taskid: &str, fp: u64) {
        if self.entries.len() >= CAPACITY
            && let Some((old, _)) = self.entries.pop_front()
        {
            let id = self.evicted;
            self.evicted += 1;
            for key in blocks(old) {
                if let Some(ids) = self.index.get_mut(&key) {
                    ids.retain(|i| *i != id);
                    if ids.is_empty() {
                        self.index.remove(&key);
                    }
                }
            }
        }
        let id = self.evicted + self.entries.len() as u64;
        self.entries.push_back((fp, taskid.into()));
        for key in blocks(fp) {
            self.index.entry(key).or_default().push(id);
        }
    }
}

/// The four 16-bit blocks of a fingerprint, with their numbers.
fn blocks(fp: u64) -> [(u8, u16); 4] {
    [0u8, 1, 2, 3].map(|b| (b, (fp >> (16 * u32::from(b))) as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> String {
        format!(
            "<html><head><title>Shop</title><style>p {{ color: red }}</style>\
             <script>var sid = '{body}';</script></head><body>{body}</body></html>"
        )
    }

    const ARTICLE: &str = "The quick brown fox jumps over the lazy dog while the farmer \
        watches from the old wooden porch and drinks his morning coffee slowly before the \
        long day of work in the fields begins under a pale grey sky. Later the neighbours \
        come by with news of the market in town, where prices for wheat and barley have \
        risen again since the spring rains flooded the lower valley and washed away half of \
        the young crop that everyone had hoped would carry them through the coming winter. \
        The children run along the fence chasing the dog, who has long since given up on \
        the fox and now only wants his dinner and a warm place by the stove at night";

    #[test]
    fn a_session_id_echoed_in_the_text_keeps_the_page_a_duplicate() {
        let a = fingerprint(&page(&format!(
            "Your session 8f3a9c1d77e04b5a9c1d {ARTICLE}"
        )))
        .expect("judged");
        let b = fingerprint(&page(&format!(
            "Your session 1b2e0f6a90c3d4e5f607 {ARTICLE}"
        )))
        .expect("judged");
        assert_eq!(a, b);
        // A page that differs by real words is another page.
        let other = fingerprint(&page(&ARTICLE.replace("fox", "cat").replace("dog", "hen")))
            .expect("judged");
        assert!((a ^ other).count_ones() > MAX_DISTANCE);
        // Markup and whitespace do not count at all.
        let c = fingerprint(&format!(
            "<div>\n  {}</div><a href=\"/x?sid=42\">",
            ARTICLE.replace(' ', "  \n")
        ))
        .expect("judged");
        let d = fingerprint(&format!("<p class=x>{ARTICLE}</p>")).expect("judged");
        assert_eq!(c, d);
        let mut seen = Seen::new();
        assert_eq!(seen.check("t1", a), None);
        assert_eq!(seen.check("t2", b), Some("t1".to_string()));
        // The same task again (a re-crawl) is not its own duplicate.
        assert_eq!(seen.check("t1", a), None);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn pages_with_different_content_are_not_duplicates() {
        // List pages of a shop: the same frame, other products.
        let list = |n: usize| {
            let products: String = (n * 20..n * 20 + 20)
                .map(|i| {
                    format!(
                        "<li><a href=/item?id={i}>Widget model {i} in steel</a> price {}.{:02}</li>",
                        i * 7 % 100,
                        i % 97
                    )
                })
                .collect();
            format!(
                "<h1>All products</h1><nav>Home Shop About Contact</nav><ul>{products}</ul><p>Page {n} of 1000</p>"
            )
        };
        let mut seen = Seen::new();
        for n in 0..1000 {
            let fp = fingerprint(&list(n)).expect("judged");
            assert_eq!(seen.check(&format!("list{n}"), fp), None, "page {n}");
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn short_pages_are_never_judged() {
        assert_eq!(fingerprint("<p>Page 1 of 2</p>"), None);
        assert_eq!(fingerprint(""), None);
        assert!(fingerprint(&page(ARTICLE)).is_some());
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest() {
        let mut seen = Seen::new();
        let fp = |i: u64| xxh3_64(&i.to_le_bytes());
        for i in 0..(CAPACITY as u64 + 10) {
            // Random fingerprints are far apart: all are kept until the table is full.
            let _ = seen.check(&format!("t{i}"), fp(i));
        }
        assert_eq!(seen.len(), CAPACITY);
        assert!(seen.index.values().map(Vec::len).sum::<usize>() <= 4 * CAPACITY);
        // The first ones were pushed out; the recent ones are still recognized.
        assert_eq!(seen.check("again", fp(0)), None);
        let recent = CAPACITY as u64 + 9;
        assert_eq!(
            seen.check("again2", fp(recent) ^ 0b101),
            Some(format!("t{recent}"))
        );
    }

    #[test]
    fn text_is_read_without_markup() {
        assert_eq!(
            visible_words("<P>Hello<BR>World<!-- x y --><SCRIPT type=a>var a</script >Ünd"),
            " hello world  ünd"
        );
        assert_eq!(visible_words("a < b"), "a ");
        assert_eq!(visible_words("<scripted>x</scripted>"), " x ");
        assert!(looks_like_id("8f3a9c1d77e04b5a9c1d"));
        assert!(!looks_like_id("internationalization"));
        assert!(!looks_like_id("B07XJ8C8F5"));
    }
}
