//! The HTML of a generated site's pages.
//!
//! Every page is a complete HTML5 document in UTF-8 with all text and attribute values
//! escaped. Which products a page shows and links to comes from [`SiteSpec`]'s arithmetic;
//! this file only decides how the links are spelled. List pages spell a product's link in
//! several ways that a crawler must normalize to the same canonical `/item/{id}`:
//!
//! | `id % 10` | href |
//! |---|---|
//! | 1 | `http://HOST/item/{id}` (absolute, echoing the request's `Host`) |
//! | 4 | `/item/{id}#reviews` |
//! | 7 | `/item/{id}?utm_source=list&utm_medium=web` |
//! | 9 | `http://HOST/item/{id}?utm_source=list&utm_medium=web#reviews` |
//! | other | `/item/{id}` |
//!
//! Without a `Host` header the absolute spellings fall back to relative ones.

use std::fmt::{self, Write as _};
use std::sync::LazyLock;

use super::{Product, Site, SiteSpec};

/// The tracking parameters some list links carry; a crawler must drop them.
const TRACKING_QUERY: &str = "?utm_source=list&utm_medium=web";

/// The fragment some links carry; a crawler must drop it.
const FRAGMENT: &str = "#reviews";

/// The words the filler paragraphs of detail pages are drawn from (ASCII, so any byte length
/// is a character boundary).
const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
    tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
    exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor \
    in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. ";

/// Appends formatted text to a page being built.
fn put(out: &mut String, args: fmt::Arguments<'_>) {
    // Formatting into a String only fails if a Display impl fails, and ours (numbers and
    // strings) never do.
    let _ = out.write_fmt(args);
}

/// Appends `text` to `out` with the characters that are special in HTML text and in quoted
/// attribute values escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Wraps `body` (already HTML) in a complete document titled `title` (plain text).
fn document(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 160);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    escape_into(&mut out, title);
    out.push_str("</title>\n</head>\n<body>\n");
    out.push_str(body);
    out.push_str("</body>\n</html>\n");
    out
}

/// The index page `/`: a `nav` with one `a.category` link per category.
pub(super) fn index(site: &Site) -> String {
    let categories = site.spec.categories;
    let mut body = String::with_capacity(128 + 64 * categories as usize);
    body.push_str("<header><p class=\"site\">Spindle test shop</p></header>\n<nav>\n");
    for category in 0..categories {
        put(
            &mut body,
            format_args!(
                "<a class=\"category\" href=\"/cat/{category}/page/1\">Category {category}</a>\n"
            ),
        );
    }
    body.push_str("</nav>\n");
    document("Spindle test shop", &body)
}

/// The list page `/cat/{category}/page/{page}`, or `None` if the site has no such page.
///
/// `host` is the request's `Host` header, used for the absolute spellings of product links.
pub(super) fn list(site: &Site, category: u32, page: u32, host: Option<&str>) -> Option<String> {
    let spec = &site.spec;
    let last = spec.pages_in_category(category);
    if page == 0 || page > last {
        return None;
    }
    let ids = site.category_ids(category)?;
    let per_page = spec.per_page as usize;
    let start = (page as usize - 1).saturating_mul(per_page);
    let on_page = ids.get(start..).unwrap_or_default();
    let on_page = &on_page[..on_page.len().min(per_page)];

    let mut body = String::with_capacity(256 + 160 * on_page.len());
    put(
        &mut body,
        format_args!("<main>\n<h1>Category {category} — page {page} of {last}</h1>\n"),
    );
    if on_page.is_empty() {
        body.push_str("<p class=\"empty\">No products in this category.</p>\n");
    }
    for product in on_page.iter().filter_map(|&id| site.product(id)) {
        body.push_str("<article><h3><a href=\"");
        list_href(&mut body, product.id, host);
        body.push_str("\">");
        escape_into(&mut body, &product.title);
        put(
            &mut body,
            format_args!(
                "</a></h3><p class=\"price\">{}</p></article>\n",
                product.price_text()
            ),
        );
    }
    body.push_str("<ul class=\"pager\">\n");
    if page > 1 {
        put(
            &mut body,
            format_args!(
                "<li class=\"previous\"><a href=\"/cat/{category}/page/{}\">previous</a></li>\n",
                page - 1
            ),
        );
    }
    put(
        &mut body,
        format_args!("<li class=\"current\">Page {page} of {last}</li>\n"),
    );
    if page < last {
        put(
            &mut body,
            format_args!(
                "<li class=\"next\"><a href=\"/cat/{category}/page/{}\">next</a></li>\n",
                page + 1
            ),
        );
    }
    body.push_str("</ul>\n</main>\n");
    Some(document(
        &format!("Category {category}, page {page}"),
        &body,
    ))
}

/// Appends the (escaped) href of product `id` on a list page, spelled as the module
/// documentation's table says.
fn list_href(out: &mut String, id: u32, host: Option<&str>) {
    let (absolute, query, fragment) = match id % 10 {
        1 => (true, "", ""),
        4 => (false, "", FRAGMENT),
        7 => (false, TRACKING_QUERY, ""),
        9 => (true, TRACKING_QUERY, FRAGMENT),
        _ => (false, "", ""),
    };
    if let (true, Some(host)) = (absolute, host) {
        out.push_str("http://");
        escape_into(out, host);
    }
    put(out, format_args!("/item/{id}"));
    escape_into(out, query);
    out.push_str(fragment);
}

/// The detail page `/item/{id}`, or `None` if the site has no such product.
pub(super) fn detail(site: &Site, id: u32) -> Option<String> {
    let product = site.product(id)?;
    let spec = &site.spec;
    let mut body = String::with_capacity(1024 + spec.detail_padding);
    body.push_str("<main>\n<article class=\"product\">\n<h1>");
    escape_into(&mut body, &product.title);
    put(
        &mut body,
        format_args!(
            "</h1>\n<img class=\"cover\" src=\"{}\" alt=\"",
            product.image
        ),
    );
    escape_into(&mut body, &product.title);
    put(
        &mut body,
        format_args!(
            "\" width=\"300\" height=\"300\">\n<p class=\"price\">{}</p>\n\
             <p class=\"category\">Category {}</p>\n</article>\n",
            product.price_text(),
            product.category
        ),
    );
    related_section(&mut body, site, spec, product);
    filler_into(&mut body, spec.detail_padding, id);
    body.push_str("</main>\n");
    Some(document(&product.title, &body))
}

/// Appends the `section.related` of `product`'s detail page: its related products and,
/// for every `missing_every`-th product, a link to a page that does not exist.
fn related_section(out: &mut String, site: &Site, spec: &SiteSpec, product: &Product) {
    out.push_str("<section class=\"related\">\n<h2>Related products</h2>\n<ul>\n");
    for link in spec.related_of(product.id) {
        let Some(related) = site.product(link.id) else {
            continue;
        };
        put(out, format_args!("<li><a href=\"/item/{}", related.id));
        if link.fragment {
            out.push_str(FRAGMENT);
        }
        out.push_str("\">");
        escape_into(out, &related.title);
        out.push_str("</a></li>\n");
    }
    if spec.links_missing(product.id) {
        put(
            out,
            format_args!(
                "<li><a href=\"/missing/{}\">Discontinued model</a></li>\n",
                product.id
            ),
        );
    }
    out.push_str("</ul>\n</section>\n");
}

/// The body of every 404 response. It has no `h1` or `p.price`, so a processor that ran
/// extraction rules on it anyway would not find an item's fields.
pub(super) fn not_found() -> String {
    document(
        "Not found",
        "<main>\n<p class=\"error\">Not found.</p>\n</main>\n",
    )
}

/// Appends exactly `bytes` bytes of filler paragraphs for the detail page of product `id`.
///
/// Paragraphs of up to 400 characters cut from [`filler_text`] at an offset of the product's
/// own, so that pages differ as real product descriptions do: one repeated text would make
/// pages, and bundles of them on the bus, compress far better than real HTML (lz4 makes 2.2×
/// of a detail page and 2.6× of a bundle of them, about as of real pages). When what is left
/// is too short for a paragraph's tags, it is made up with newlines, which HTML ignores.
pub(super) fn filler_into(out: &mut String, bytes: usize, id: u32) {
    const OPEN: &str = "<p class=\"filler\">";
    const CLOSE: &str = "</p>\n";
    const MAX_TEXT: usize = 400;
    let text = filler_text();
    let mut at = (u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) % text.len() as u64) as usize;
    let overhead = OPEN.len() + CLOSE.len();
    let end = out.len() + bytes;
    loop {
        let left = end - out.len();
        if left <= overhead {
            out.extend(std::iter::repeat_n('\n', left));
            break;
        }
        let len = (left - overhead).min(MAX_TEXT);
        out.push_str(OPEN);
        // ASCII, so every byte offset is a character boundary.
        let first = len.min(text.len() - at);
        out.push_str(&text[at..at + first]);
        out.push_str(&text[..len - first]);
        at = (at + len) % text.len();
        out.push_str(CLOSE);
    }
}

/// 1 MiB of words drawn from [`LOREM`] by a fixed generator, made once: detail pages cut
/// their filler from it (copying is cheap; drawing words for every request made the site
/// server a third more expensive).
fn filler_text() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        let words: Vec<&str> = LOREM.split_whitespace().collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut text = String::with_capacity(1 << 20);
        while text.len() < 1 << 20 {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(words[(state % words.len() as u64) as usize]);
            text.push(' ');
        }
        text
    });
    &TEXT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let mut out = String::new();
        escape_into(&mut out, r#"Nuts & Bolts <b> "q" 'a' — é"#);
        assert_eq!(
            out,
            "Nuts &amp; Bolts &lt;b&gt; &quot;q&quot; &#39;a&#39; — é"
        );
    }

    #[test]
    fn filler_has_exactly_the_requested_size() {
        for bytes in [0, 1, 22, 23, 24, 100, 423, 424, 425, 9_000, 10_007] {
            let mut filler = String::from("<main>");
            filler_into(&mut filler, bytes, 7);
            assert_eq!(filler.len(), bytes + "<main>".len());
            assert_eq!(filler.matches("<p").count(), filler.matches("</p>").count());
        }
    }

    #[test]
    fn filler_differs_by_product_and_not_by_request() {
        let text = |id| {
            let mut out = String::new();
            filler_into(&mut out, 9_000, id);
            out
        };
        assert_eq!(text(1), text(1));
        assert_ne!(text(1), text(2));
        assert_ne!(text(1)[..400], text(1)[400..800], "paragraphs differ too");
    }

    #[test]
    fn padding_grows_detail_pages_by_exactly_its_size() {
        let spec = SiteSpec {
            products: 10,
            ..SiteSpec::small()
        };
        let plain = Site::new(spec);
        let padded = Site::new(SiteSpec {
            detail_padding: 9_000,
            ..spec
        });
        let plain_page = detail(&plain, 3).expect("product 3 exists");
        let padded_page = detail(&padded, 3).expect("product 3 exists");
        assert_eq!(padded_page.len(), plain_page.len() + 9_000);
    }

    #[test]
    fn bench_detail_pages_are_about_10_kb() {
        let site = Site::new(SiteSpec::bench(1_000));
        for id in [1, 100, 1_000] {
            let page = detail(&site, id).expect("product exists");
            assert!(
                (9_500..=10_500).contains(&page.len()),
                "{} bytes",
                page.len()
            );
        }
    }

    #[test]
    fn list_links_use_every_spelling() {
        let site = Site::new(SiteSpec {
            categories: 1,
            products: 10,
            per_page: 10,
            ..SiteSpec::small()
        });
        let page = list(&site, 0, 1, Some("shop.test:8080")).expect("page 1 exists");
        for href in [
            "href=\"http://shop.test:8080/item/1\"",
            "href=\"/item/2\"",
            "href=\"/item/4#reviews\"",
            "href=\"/item/7?utm_source=list&amp;utm_medium=web\"",
            "href=\"http://shop.test:8080/item/9?utm_source=list&amp;utm_medium=web#reviews\"",
        ] {
            assert!(page.contains(href), "{href} missing from {page}");
        }
        let relative = list(&site, 0, 1, None).expect("page 1 exists");
        assert!(relative.contains("href=\"/item/1\""));
        assert!(!relative.contains("http://"));
    }
}
