//! A cap on how deep a page's elements nest, checked before the HTML is parsed.
//!
//! The HTML parsing algorithm scans the stack of open elements at each start tag, so a page
//! of N unclosed elements costs O(N²): 20,000 unclosed `<div>`s take seconds, 100,000 take a
//! processor minutes. No real page nests anywhere near [`MAX_DEPTH`] (Chromium stops building
//! deeper than 512), so a page that does fails its task with the reason, at the cost of one
//! linear scan.
//!
//! The scan is an estimate of the parser's stack, erring low: void elements and `/>` open
//! nothing; an end tag closes up to its open twin (and is ignored without one); the start tags
//! that imply an end (`li`, `td`, `tr`, `option`, a block after an open `p`, …) close an open
//! element of their family within its bounds, as the parser would; comments, doctypes and the
//! contents of `script`, `style`, `textarea`, `title` and `xmp` are skipped.

/// Deepest nesting a page may have.
pub const MAX_DEPTH: usize = 2_048;

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen",
];

/// Start tags that close an open element of their family (the parser's implied end tags):
/// the tag, the family it closes, and the elements that bound the search.
const IMPLIED_ENDS: &[(&str, &[&str], &[&str])] = &[
    ("li", &["li"], &["ul", "ol"]),
    ("dt", &["dt", "dd"], &["dl"]),
    ("dd", &["dt", "dd"], &["dl"]),
    ("td", &["td", "th"], &["tr", "table"]),
    ("th", &["td", "th"], &["tr", "table"]),
    ("tr", &["tr"], &["table"]),
    ("tbody", &["thead", "tbody", "tfoot"], &["table"]),
    ("thead", &["thead", "tbody", "tfoot"], &["table"]),
    ("tfoot", &["thead", "tbody", "tfoot"], &["table"]),
    ("option", &["option"], &["select", "datalist"]),
    ("optgroup", &["option", "optgroup"], &["select"]),
    ("rb", &["rb", "rt", "rp"], &["ruby"]),
    ("rt", &["rb", "rt", "rp"], &["ruby"]),
    ("rp", &["rb", "rt", "rp"], &["ruby"]),
];

/// Start tags that close an open `p` (block elements).
const CLOSE_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "dialog",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// What bounds the search for an open `p`.
const P_SCOPE: &[&str] = &["button", "table", "td", "th", "caption", "html", "object"];

/// Elements whose content is text up to their end tag.
const RAW: &[&str] = &["script", "style", "textarea", "title", "xmp"];

/// Open elements the scan follows, at most: enough to tell a page over [`MAX_DEPTH`].
const STACK: usize = MAX_DEPTH + 1;

/// `Some(depth)` when the elements of `html` nest deeper than `max`, else `None`.
pub fn too_deep(html: &str, max: usize) -> Option<usize> {
    let bytes = html.as_bytes();
    // Every open element starts with a `<`: a page with no more of them than `max` cannot
    // nest deeper, and most pages end here after one vectorized count.
    if memchr::memchr_iter(b'<', bytes).count() <= max {
        return None;
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'<', &bytes[i..]) {
        i += offset + 1;
        let rest = &html[i..];
        if rest.starts_with("!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with('!') || rest.starts_with('?') {
            i += rest.find('>').map_or(rest.len(), |e| e + 1);
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &rest[name_start..name_start + name_len];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        let self_closing = rest[..end].ends_with("/>");
        i += end;
        let is = |list: &[&str]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
        if closing {
            if let Some(open) = stack.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                stack.truncate(open);
            }
            continue;
        }
        if is(VOID) || self_closing {
            continue;
        }
        if is(RAW) {
            // Skip to the matching end tag, whatever it holds.
            let closing_tag = format!("</{name}");
            i += find_ci(&bytes[i..], closing_tag.as_bytes())
                .map_or(html.len() - i, |e| e + closing_tag.len());
            continue;
        }
        if let Some((_, family, bounds)) = IMPLIED_ENDS
            .iter()
            .find(|(tag, _, _)| tag.eq_ignore_ascii_case(name))
        {
            close_open(&mut stack, family, bounds);
        }
        if is(CLOSE_P) {
            close_open(&mut stack, &["p"], P_SCOPE);
        }
        if stack.len() < STACK {
            stack.push(name);
        }
        if stack.len() > max {
            return Some(stack.len());
        }
    }
    None
}

/// Closes the nearest open element of `family`, with what it holds, unless an element of
/// `bounds` comes first.
fn close_open(stack: &mut Vec<&str>, family: &[&str], bounds: &[&str]) {
    let matches = |list: &[&str], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    for i in (0..stack.len()).rev() {
        if matches(family, stack[i]) {
            stack.truncate(i);
            return;
        }
        if matches(bounds, stack[i]) {
            return;
        }
    }
}

/// The first position of `needle` in `haystack`, ASCII case ignored.
fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_trap_is_caught_early() {
        let page = "<div>".repeat(100_000);
        assert_eq!(too_deep(&page, MAX_DEPTH), Some(MAX_DEPTH + 1));
        let spans = format!("<html><body>{}</body></html>", "<span><b>".repeat(3_000));
        assert!(too_deep(&spans, MAX_DEPTH).is_some());
    }

    #[test]
    fn ordinary_pages_pass_whatever_their_size() {
        // Thousands of siblings, closed or left open as HTML allows.
        let list = format!(
            "<!doctype html><html><head><title>a <div> in a title</title>\
             <script>for (i = 0; i < n; i++) document.write('<div>')</script></head>\
             <body><ul>{}</ul><table>{}</table>{}<br><img src=x><input/><!-- <div><div> -->\
             </body></html>",
            "<li>item <a href=#>link</a>".repeat(5_000),
            "<tr><td>a<td>b".repeat(5_000),
            "<p>para".repeat(5_000),
        );
        assert_eq!(too_deep(&list, MAX_DEPTH), None);
        let nested = format!("{}{}", "<div>".repeat(200), "</div>".repeat(200)).repeat(100);
        assert_eq!(too_deep(&nested, MAX_DEPTH), None);
        assert_eq!(too_deep("", MAX_DEPTH), None);
        assert_eq!(too_deep("a < b and <3 and </>", MAX_DEPTH), None);
    }

    #[test]
    fn stray_end_tags_close_nothing() {
        let page = format!("{}{}", "</div>".repeat(10), "<div>".repeat(5));
        assert_eq!(too_deep(&page, 4), Some(5));
        assert_eq!(too_deep(&page, 5), None);
    }
}
