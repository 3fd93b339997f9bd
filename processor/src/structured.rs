//! Structured data in HTML pages: JSON-LD blocks, microdata properties and `<meta>` tags,
//! the sources of `jsonld`, `itemprop` and `meta` fields.
//!
//! JSON-LD: every `<script type="application/ld+json">` block of the page, in document
//! order, is parsed and its nodes gathered into **one array**, the root that a field's
//! JSONPath runs on: a block that is an array gives its elements, an object with `@graph`
//! gives the nodes of its graph (and itself, without `@graph`, when it has more than
//! `@context`), any other object gives itself. So a Product alone, inside `@graph`, or after
//! other blocks is found by the same `$[?@['@type']=='Product']`. A block that is not JSON is
//! skipped, with a log line naming it and a count of the skipped blocks: never a failed task.
//!
//! Microdata: an element whose `itemprop` lists the name is a property; with `itemtype`, only
//! properties of an item (the nearest ancestor with `itemscope`) of that type count. Its
//! value is, as in the HTML standard, the `content` attribute when there is one (common on
//! any element), else `src`, `href`, `data`, `value` or `datetime` for the elements that
//! carry their value there, else the element's text.

use scraper::{ElementRef, Html};
use serde_json::Value;

use crate::value::element_text;

/// The page's JSON-LD nodes as one array; blocks that are not JSON are skipped and logged.
pub(crate) fn jsonld_nodes(html: &Html, logs: &mut Vec<String>) -> Value {
    let blocks: Vec<String> = html
        .tree
        .root()
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| e.value().name() == "script" && is_jsonld_type(e.attr("type")))
        .map(|e| e.text().collect())
        .collect();
    let mut nodes = Vec::new();
    let mut skipped = 0usize;
    for (i, block) in blocks.iter().enumerate() {
        match parse_block(block) {
            Ok(value) => flatten(value, &mut nodes),
            Err(e) => {
                skipped += 1;
                logs.push(format!(
                    "jsonld: block {} of {} is not valid JSON ({e}); skipped",
                    i + 1,
                    blocks.len()
                ));
            }
        }
    }
    if skipped > 0 {
        logs.push(format!(
            "jsonld: {skipped} of {} block(s) skipped as invalid JSON",
            blocks.len()
        ));
    }
    logs.push(format!(
        "jsonld: {} node(s) from {} block(s)",
        nodes.len(),
        blocks.len() - skipped
    ));
    Value::Array(nodes)
}

/// `application/ld+json`, any case, parameters ignored.
fn is_jsonld_type(kind: Option<&str>) -> bool {
    kind.and_then(|k| k.split(';').next())
        .is_some_and(|k| k.trim().eq_ignore_ascii_case("application/ld+json"))
}

/// One block's JSON. Pages often wrap it in an HTML comment or CDATA, or break its strings
/// with raw newlines and tabs (invalid in JSON strings): both are forgiven.
fn parse_block(block: &str) -> Result<Value, serde_json::Error> {
    let mut text = block.trim();
    for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>")] {
        if let Some(inner) = text.strip_prefix(open).and_then(|t| t.strip_suffix(close)) {
            text = inner.trim();
        }
    }
    serde_json::from_str(text).or_else(|err| {
        // Outside strings these characters are whitespace, so this changes nothing there.
        let spaced: String = text
            .chars()
            .map(|c| {
                if matches!(c, '\n' | '\r' | '\t') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        serde_json::from_str(&spaced).map_err(|_| err)
    })
}

/// Adds the nodes of one parsed block (or part of it) to `nodes`.
fn flatten(value: Value, nodes: &mut Vec<Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, nodes);
            }
        }
        Value::Object(mut object) => match object.remove("@graph") {
            Some(graph) => {
                if object.keys().any(|k| k != "@context") {
                    nodes.push(Value::Object(object));
                }
                flatten(graph, nodes);
            }
            None => nodes.push(Value::Object(object)),
        },
        // A bare string or number is no node.
        _ => {}
    }
}

/// The elements under `root` (the page, or the descendants of an element) that are
/// microdata property `prop`, of an item of type `itemtype` if given, in document order.
pub(crate) fn microdata<'a>(
    candidates: impl Iterator<Item = ElementRef<'a>> + 'a,
    prop: &'a str,
    itemtype: Option<&'a str>,
) -> impl Iterator<Item = ElementRef<'a>> + 'a {
    candidates.filter(move |e| {
        e.attr("itemprop")
            .is_some_and(|p| p.split_ascii_whitespace().any(|t| t == prop))
            && itemtype.is_none_or(|want| item_type_is(*e, want))
    })
}

/// Whether the item a property belongs to (its nearest `itemscope` ancestor) has type
/// `want`: a full URL (either scheme), or a name that ends the type's URL (`Product` for
/// `https://schema.org/Product`).
fn item_type_is(property: ElementRef<'_>, want: &str) -> bool {
    let Some(item) = property
        .ancestors()
        .filter_map(ElementRef::wrap)
        .find(|a| a.attr("itemscope").is_some())
    else {
        return false;
    };
    let bare = |t: &str| {
        t.strip_prefix("https://")
            .or_else(|| t.strip_prefix("http://"))
            .unwrap_or(t)
            .to_string()
    };
    let want_bare = bare(want);
    let is_url = want.contains('/');
    item.attr("itemtype").is_some_and(|types| {
        types.split_ascii_whitespace().any(|t| {
            if is_url {
                bare(t) == want_bare
            } else {
                t == want || t.rsplit(['/', '#']).next().is_some_and(|last| last == want)
            }
        })
    })
}

/// A microdata property's value (see the module's doc), its text joined by `separator`.
pub(crate) fn microdata_value(element: ElementRef<'_>, separator: &str) -> String {
    if let Some(content) = element.attr("content") {
        return content.to_string();
    }
    let attr = match element.value().name() {
        "audio" | "embed" | "iframe" | "img" | "source" | "track" | "video" => Some("src"),
        "a" | "area" | "link" => Some("href"),
        "object" => Some("data"),
        "data" | "meter" => Some("value"),
        "time" => element.attr("datetime").map(|_| "datetime"),
        _ => None,
    };
    match attr {
        Some(attr) => element.attr(attr).unwrap_or_default().to_string(),
        None => element_text(element, separator),
    }
}

/// The `content` of the page's `<meta>` elements whose `property` or `name` is `name` (ASCII
/// case-insensitively), in document order.
pub(crate) fn meta_contents<'a>(
    html: &'a Html,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    html.tree
        .root()
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(move |e| {
            e.value().name() == "meta"
                && ["property", "name"].iter().any(|a| {
                    e.attr(a)
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case(name))
                })
        })
        .filter_map(|e| e.attr("content").map(str::to_string))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nodes(html: &str) -> (Value, Vec<String>) {
        let mut logs = Vec::new();
        let v = jsonld_nodes(&Html::parse_document(html), &mut logs);
        (v, logs)
    }

    #[test]
    fn blocks_alone_in_graphs_and_in_arrays_become_one_array() {
        let html = r#"<head>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Organization", "name": "Shop"}</script>
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
  {"@type": "BreadcrumbList"}, {"@type": "Product", "name": "A"}]}</script>
<script type="Application/LD+JSON; charset=utf-8">[{"@type": "WebSite"}]</script>
<script type="application/json">{"@type": "NotLd"}</script>
<script>var x = 1;</script>
</head>"#;
        let (v, logs) = nodes(html);
        assert_eq!(
            v,
            json!([
                {"@context": "https://schema.org", "@type": "Organization", "name": "Shop"},
                {"@type": "BreadcrumbList"},
                {"@type": "Product", "name": "A"},
                {"@type": "WebSite"}
            ])
        );
        assert!(
            logs.contains(&"jsonld: 4 node(s) from 3 block(s)".to_string()),
            "{logs:?}"
        );
    }

    #[test]
    fn a_graph_with_its_own_properties_keeps_them() {
        let (v, _) = nodes(
            r##"<script type="application/ld+json">{"@context": "x", "@id": "#site", "@graph": {"@type": "Product"}}</script>"##,
        );
        assert_eq!(
            v,
            json!([{"@context": "x", "@id": "#site"}, {"@type": "Product"}])
        );
    }

    #[test]
    fn malformed_blocks_are_skipped_and_counted() {
        let (v, logs) = nodes(
            r#"<script type="application/ld+json">{"@type": "Product", </script>
<script type="application/ld+json"><!-- {"@type": "Offer", "description": "two
lines"} --></script>"#,
        );
        assert_eq!(v, json!([{"@type": "Offer", "description": "two lines"}]));
        assert!(
            logs.iter()
                .any(|l| l.starts_with("jsonld: block 1 of 2 is not valid JSON")),
            "{logs:?}"
        );
        assert!(
            logs.contains(&"jsonld: 1 of 2 block(s) skipped as invalid JSON".to_string()),
            "{logs:?}"
        );
        let (v, logs) = nodes("<p>no structured data</p>");
        assert_eq!(v, json!([]));
        assert_eq!(logs, ["jsonld: 0 node(s) from 0 block(s)"]);
    }

    #[test]
    fn microdata_properties_are_scoped_by_item_type() {
        let html = Html::parse_document(
            r#"<div itemscope itemtype="https://schema.org/Product">
  <h1 itemprop="name">Kettle</h1>
  <img itemprop="image" src="/k.png">
  <div itemprop="brand" itemscope itemtype="http://schema.org/Brand"><span itemprop="name">Acme</span></div>
  <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
    <span itemprop="price" content="19.99">£19.99</span>
    <link itemprop="availability" href="https://schema.org/InStock">
    <time itemprop="priceValidUntil" datetime="2025-01-01">New Year</time>
  </div>
</div>"#,
        );
        let all = || html.tree.root().descendants().filter_map(ElementRef::wrap);
        let values = |prop: &'static str, itemtype: Option<&'static str>| -> Vec<String> {
            microdata(all(), prop, itemtype)
                .map(|e| microdata_value(e, " "))
                .collect()
        };
        assert_eq!(values("name", None), ["Kettle", "Acme"]);
        assert_eq!(values("name", Some("Product")), ["Kettle"]);
        assert_eq!(values("name", Some("https://schema.org/Brand")), ["Acme"]);
        assert_eq!(values("name", Some("Offer")), Vec::<String>::new());
        assert_eq!(values("price", Some("Offer")), ["19.99"]);
        assert_eq!(values("image", None), ["/k.png"]);
        assert_eq!(values("availability", None), ["https://schema.org/InStock"]);
        assert_eq!(values("priceValidUntil", None), ["2025-01-01"]);
        assert_eq!(values("offers", Some("Product")).len(), 1);
    }

    #[test]
    fn meta_is_found_by_property_or_name() {
        let html = Html::parse_document(
            r#"<head><meta property="og:title" content="Kettle">
<meta name="Description" content="A kettle.">
<meta property="og:image" content="/a.png"><meta property="og:image" content="/b.png">
<meta property="og:empty"></head>"#,
        );
        let get = |name: &str| meta_contents(&html, name).collect::<Vec<_>>();
        assert_eq!(get("og:title"), ["Kettle"]);
        assert_eq!(get("description"), ["A kettle."]);
        assert_eq!(get("OG:IMAGE"), ["/a.png", "/b.png"]);
        assert_eq!(get("og:empty"), Vec::<String>::new());
        assert_eq!(get("twitter:card"), Vec::<String>::new());
    }
}
