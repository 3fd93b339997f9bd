//! Handlers: what to do with a page fetched for one callback name.
//!
//! A handler has follow rules, item fields (`item.<field>`), optionally an `items` block that
//! turns the fields into many items per page (one per `each` element, with fields relative
//! to it), and optionally a script hook run after the declarative rules.

use std::time::Duration;

use indexmap::IndexMap;

use super::field::{Field, Source};
use super::follow::FollowRule;

/// What to do with a page fetched for one callback name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handler {
    /// Links to follow, in file order.
    pub follow: Vec<FollowRule>,
    /// Fields of the item(s) this handler emits, in file order; empty: no item.
    pub item: IndexMap<String, Field>,
    /// Many items per page: one per element of `each`, fields relative to it.
    pub items: Option<ItemsRule>,
    /// A script run after the declarative rules.
    pub script: Option<Script>,
}

/// `[handlers.<name>.items]`: one item per element, instead of one per page.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsRule {
    /// The elements (or JSON values) that each make one item.
    pub each: Each,
    /// Field whose value keys the item (the same value on another page updates the same
    /// item); `None`: the key is the fingerprint of the task id and the element's index.
    pub key: Option<String>,
}

/// What `each` selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Each {
    /// Elements matching a CSS selector (`each`).
    Css(String),
    /// Nodes selected by XPath (`each_xpath`).
    XPath(String),
    /// Values selected by JSONPath on the JSON body (`each_json`).
    Json(String),
    /// Nodes selected by JSONPath on the page's JSON-LD (`each_jsonld`); fields read them
    /// with `jsonld`.
    JsonLd(String),
}

impl Each {
    /// Whether a field of this source may be used inside this `each`, and if not, why.
    pub(super) fn allows(&self, source: &Source) -> Result<(), String> {
        let (ok, expected) = match self {
            Each::Css(_) => (
                !matches!(source, Source::XPath(_) | Source::Json(_)),
                "inside `each` (CSS), fields read the element with `css` or `itemprop` (or no source: the element itself)",
            ),
            Each::XPath(_) => (
                !matches!(
                    source,
                    Source::Css(_) | Source::Json(_) | Source::Microdata { .. }
                ),
                "inside `each_xpath`, fields read the node with `xpath` (or no source: the node itself)",
            ),
            Each::Json(_) => (
                !matches!(
                    source,
                    Source::Css(_) | Source::XPath(_) | Source::Microdata { .. }
                ),
                "inside `each_json`, fields read the value with `json` (or no source: the value itself)",
            ),
            Each::JsonLd(_) => (
                matches!(
                    source,
                    Source::JsonLd(_)
                        | Source::Element
                        | Source::Meta(_)
                        | Source::Page(_)
                        | Source::Const(_)
                ),
                "inside `each_jsonld`, fields read the node with `jsonld` (or no source: the node itself)",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(expected.to_string())
        }
    }
}

/// A script hook (`script = '''...'''` or `script_file = "x.rhai"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The script's text.
    pub source: String,
    /// Where it was written, for error positions.
    pub origin: ScriptOrigin,
    /// Wall-clock limit of one call (`script_timeout`), `None`: the default.
    pub timeout: Option<Duration>,
}

/// Where a script was written.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptOrigin {
    /// In the project file; the text starts at this 1-based line of the file.
    Inline {
        /// Line of the file where the script's first line is.
        line: usize,
    },
    /// In a file next to the project file (`script_file`), by the path as written.
    File(String),
}
