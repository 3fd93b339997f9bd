//! XPath 1.0 on HTML pages.
//!
//! The page is parsed once, by html5ever (through scraper), as browsers parse it. For
//! handlers that use XPath, that tree is copied into an sxd-document DOM (elements,
//! attributes and text; comments and doctypes are left out) on which sxd-xpath evaluates.
//! Parsing HTML as XML instead would fail on most real pages, and a second HTML parser could
//! build a different tree than the CSS rules see. Element and attribute names are taken
//! without namespaces, so `//svg/path` and `@href` match as written.
//!
//! A compiled `sxd_xpath::XPath` is neither `Send` nor `Sync`, so expressions (checked when
//! the project was parsed) are compiled again for each page that needs them.

use scraper::{Html, Node};
use sxd_document::Package;
use sxd_document::dom::{self, Document};
use sxd_xpath::nodeset::Node as XNode;
use sxd_xpath::{Context, Factory, Value as XValue};

use crate::value::{Raw, collapse_whitespace};

/// An XPath view of an HTML page.
pub(crate) struct XmlPage {
    package: Package,
}

impl XmlPage {
    /// Copies the parsed page into an XPath DOM.
    pub(crate) fn new(html: &Html) -> Self {
        let package = Package::new();
        {
            let doc = package.as_document();
            let root = doc.root();
            // An explicit stack, not recursion: a deeply nested page must not overflow it.
            let mut stack = Vec::new();
            let mut top: Option<dom::Element<'_>> = None;
            for child in html.tree.root().children() {
                stack.push((child, None::<dom::Element<'_>>));
            }
            stack.reverse();
            while let Some((node, parent)) = stack.pop() {
                match node.value() {
                    Node::Element(element) => {
                        let el = doc.create_element(element.name());
                        for (name, value) in element.attrs() {
                            el.set_attribute_value(name, value);
                        }
                        match parent {
                            Some(p) => p.append_child(el),
                            // XML allows one root element; extra top-level elements (never
                            // made by html5ever) would go under the first.
                            None => match top {
                                None => {
                                    root.append_child(el);
                                    top = Some(el);
                                }
                                Some(first) => first.append_child(el),
                            },
                        }
                        for child in node.children().rev() {
                            stack.push((child, Some(el)));
                        }
                    }
                    Node::Text(text) => {
                        if let Some(p) = parent {
                            p.append_child(doc.create_text(text));
                        }
                    }
                    _ => {}
                }
            }
        }
        XmlPage { package }
    }

    /// The document, to evaluate expressions on.
    pub(crate) fn document(&self) -> Document<'_> {
        self.package.as_document()
    }
}

/// Evaluates `expr` with `node` as the context node. Node sets come back in document order;
/// a string, number or boolean result is one value. Fails with the reason.
pub(crate) fn select<'d>(expr: &str, node: XNode<'d>) -> Result<Vec<Selected<'d>>, String> {
    let xpath = Factory::new()
        .build(expr)
        .map_err(|e| format!("invalid XPath `{expr}`: {e}"))?
        .ok_or_else(|| format!("invalid XPath `{expr}`: it is empty"))?;
    let value = xpath
        .evaluate(&Context::new(), node)
        .map_err(|e| format!("XPath `{expr}` failed: {e}"))?;
    Ok(match value {
        XValue::Nodeset(nodes) => nodes
            .document_order()
            .into_iter()
            .map(Selected::Node)
            .collect(),
        XValue::String(s) => vec![Selected::Value(s)],
        XValue::Number(n) => vec![Selected::Value(n.to_string())],
        XValue::Boolean(b) => vec![Selected::Value(b.to_string())],
    })
}

/// One result of an XPath expression.
pub(crate) enum Selected<'d> {
    /// A node.
    Node(XNode<'d>),
    /// A string, number or boolean result, as text.
    Value(String),
}

impl Selected<'_> {
    /// The raw value: an element's `attr` (or its text, whitespace-normalized), an
    /// attribute's value, a text node's text; `None` for an element without `attr`.
    pub(crate) fn raw(&self, attr: Option<&str>) -> Option<Raw> {
        match self {
            Selected::Value(v) => Some(Raw::Text(v.clone())),
            Selected::Node(XNode::Element(e)) => match attr {
                Some(attr) => e.attribute_value(attr).map(|v| Raw::Text(v.to_string())),
                None => Some(Raw::Text(collapse_whitespace(
                    &XNode::Element(*e).string_value(),
                ))),
            },
            Selected::Node(XNode::Attribute(a)) => Some(Raw::Text(a.value().to_string())),
            Selected::Node(XNode::Text(t)) => Some(Raw::Text(t.text().to_string())),
            Selected::Node(other) => Some(Raw::Text(collapse_whitespace(&other.string_value()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(html: &str, expr: &str, attr: Option<&str>) -> Vec<Option<String>> {
        let html = Html::parse_document(html);
        let page = XmlPage::new(&html);
        let doc = page.document();
        select(expr, XNode::Root(doc.root()))
            .expect("evaluates")
            .iter()
            .map(|s| match s.raw(attr) {
                Some(Raw::Text(t)) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn xpath_sees_the_html5_tree() {
        let html = "<p>Intro<table><tr><td>Weight</td><td> 2 kg </td></tr><tr><td>Color</td><td>red</td></tr></table><a href='/x'>x</a>";
        assert_eq!(
            texts(html, "//td[text()='Weight']/following-sibling::td", None),
            [Some("2 kg".to_string())]
        );
        // html5ever inserted <tbody>, as browsers do.
        assert_eq!(texts(html, "count(//tbody)", None), [Some("1".to_string())]);
        assert_eq!(texts(html, "//a/@href", None), [Some("/x".to_string())]);
        assert_eq!(texts(html, "//a", Some("href")), [Some("/x".to_string())]);
        assert_eq!(texts(html, "//a", Some("title")), [None]);
    }

    #[test]
    fn deep_pages_do_not_overflow_the_stack() {
        let html = format!("{}deep{}", "<div>".repeat(20_000), "</div>".repeat(20_000));
        let parsed = Html::parse_document(&html);
        let page = XmlPage::new(&parsed);
        let doc = page.document();
        let found = select("count(//div)", XNode::Root(doc.root())).expect("evaluates");
        assert_eq!(found.len(), 1);
    }
}
