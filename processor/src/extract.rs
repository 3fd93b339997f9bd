//! Items: fields evaluated in a scope (the page, or one `each` element, node or JSON value),
//! then `default` and `required`, then one item per page or one per `each` match.
//!
//! A field takes the first match in document order (every match with `all = true`, one
//! entry per match, null included, so parallel `all` fields stay aligned). A field whose
//! source matches nothing is null (`[]` with `all`); then `default` replaces a null or empty
//! result; then a `required` field still null (or empty) drops its item, as does an empty
//! `key` field of `items`: each drop is a [`DroppedItem`] (counted in the handler's output,
//! logged with its reason, and summed up by [`drop_summary`]).

use std::fmt;

use scraper::{ElementRef, Html};
use serde::Serialize;
use serde_json::{Map, Value};
use serde_json_path::JsonPath;
use spindle_common::project::{HtmlPart, PageValue};
use spindle_common::{Item, Page, Task, urlnorm};
use sxd_xpath::nodeset::Node as XNode;
use url::Url;

use crate::rules::{CompiledEach, CompiledField, CompiledHandler, CompiledSource};
use crate::structured::{meta_contents, microdata, microdata_value};
use crate::value::{Miss, Raw, element_text};
use crate::xpath::{self, Selected, XmlPage};

/// An item a handler dropped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedItem {
    /// Its position among the page's items (its `each` match; 0 for one item per page).
    pub index: usize,
    /// The field that came out null or empty.
    pub field: String,
    /// What that field is for.
    pub cause: DropCause,
}

/// Why an empty field drops its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCause {
    /// The field is `required = true`.
    Required,
    /// The field is the `key` of `items`: an item without a key cannot be stored.
    EmptyKey,
}

impl fmt::Display for DroppedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.cause {
            DropCause::Required => "required",
            DropCause::EmptyKey => "key",
        };
        write!(
            f,
            "item {} dropped: {what} field `{}` is empty",
            self.index, self.field
        )
    }
}

/// One line summing up the drops of a page, by cause: "3 item(s) dropped: 2 for an empty
/// required field, 1 for an empty key field".
pub(crate) fn drop_summary(dropped: &[DroppedItem]) -> String {
    let count = |cause| dropped.iter().filter(|d| d.cause == cause).count();
    let parts: Vec<String> = [
        (count(DropCause::Required), "an empty required field"),
        (count(DropCause::EmptyKey), "an empty key field"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} for {why}"))
    .collect();
    format!("{} item(s) dropped: {}", dropped.len(), parts.join(", "))
}

/// What a field may read besides its scope.
pub(crate) struct PageCtx<'a> {
    /// The task the page was fetched for.
    pub(crate) task: &'a Task,
    /// The fetched page.
    pub(crate) page: &'a Page,
    /// URL relative links and `as = "url"` values resolve against.
    pub(crate) base: &'a Url,
    /// The parsed HTML, when the handler reads it.
    pub(crate) html: Option<&'a Html>,
    /// The XPath view, when the handler uses XPath.
    pub(crate) xml: Option<&'a XmlPage>,
    /// The body as JSON, when the handler reads it.
    pub(crate) json: Option<&'a Value>,
    /// The page's JSON-LD nodes (one array), when the handler reads them.
    pub(crate) jsonld: Option<&'a Value>,
    /// The project's name (`$project`).
    pub(crate) project: &'a str,
    /// Processing time, RFC 3339 (`$now`).
    pub(crate) now: &'a str,
}

/// Where a field is evaluated.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// The whole page.
    Page,
    /// One element of `each`.
    Element(ElementRef<'a>),
    /// One node of `each_xpath`.
    Node(XNode<'a>),
    /// One value of `each_json`.
    Json(&'a Value),
    /// One node of `each_jsonld`.
    JsonLd(&'a Value),
}

/// Elements of the page matching `selector`, in document order.
pub(crate) fn select_page<'a>(
    html: &'a Html,
    selector: &'a scraper::Selector,
) -> impl Iterator<Item = ElementRef<'a>> + 'a {
    // A pre-order walk of the tree is document order (`Html::select` walks the node arena,
    // whose order the parser does not guarantee to be document order).
    html.tree
        .root()
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(move |e| selector.matches(e))
}

/// The value of a page value; `None` when the page does not have it.
pub(crate) fn page_value(value: &PageValue, ctx: &PageCtx<'_>) -> Option<Value> {
    match value {
        PageValue::Url => Some(Value::String(ctx.task.url.clone())),
        PageValue::Status => Some(Value::from(ctx.page.status)),
        PageValue::Save(key) => ctx.task.save.as_ref().and_then(|s| s.get(key)).cloned(),
        PageValue::Header(name) => ctx.page.header(name).map(|v| Value::String(v.to_string())),
        PageValue::Now => Some(Value::String(ctx.now.to_string())),
        PageValue::Project => Some(Value::String(ctx.project.to_string())),
        PageValue::Screenshot => ctx.page.screenshot_png_base64.clone().map(Value::String),
    }
}

/// The raw value of an element: its attribute, HTML or normalized text.
fn element_raw(element: ElementRef<'_>, field: &CompiledField) -> Result<Raw, Miss> {
    if let Some(attr) = &field.attr {
        return element
            .attr(attr)
            .map(|v| Raw::Text(v.to_string()))
            .ok_or(Miss::NoAttribute);
    }
    Ok(Raw::Text(match field.html {
        Some(HtmlPart::Inner) => element.inner_html(),
        Some(HtmlPart::Outer) => element.html(),
        None if matches!(field.source, CompiledSource::Microdata { .. }) => {
            microdata_value(element, &field.separator)
        }
        None => element_text(element, &field.separator),
    }))
}

/// The raw values a field's source yields in `scope` (one at most unless `all`).
/// The first `limit` values `path` selects in `root`.
fn json_raws(path: &JsonPath, root: &Value, limit: usize) -> Vec<Result<Raw, Miss>> {
    path.query(root)
        .all()
        .into_iter()
        .take(limit)
        .map(|v| Ok(Raw::Json(v.clone())))
        .collect()
}

fn raws(
    field: &CompiledField,
    scope: Scope<'_>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> Vec<Result<Raw, Miss>> {
    let limit = if field.all { usize::MAX } else { 1 };
    match (&field.source, scope) {
        (CompiledSource::Const(text), _) => vec![Ok(Raw::Text(text.clone()))],
        (CompiledSource::Page(value), _) => page_value(value, ctx)
            .map(Raw::Json)
            .map(Ok)
            .into_iter()
            .collect(),
        (CompiledSource::Css(selector), Scope::Element(element)) => element
            .select(selector)
            .take(limit)
            .map(|e| element_raw(e, field))
            .collect(),
        (CompiledSource::Css(selector), _) => match ctx.html {
            Some(html) => select_page(html, selector)
                .take(limit)
                .map(|e| element_raw(e, field))
                .collect(),
            None => Vec::new(),
        },
        (CompiledSource::Element, Scope::Element(element)) => vec![element_raw(element, field)],
        (CompiledSource::Element, Scope::Node(node)) => Selected::Node(node)
            .raw(field.attr.as_deref())
            .map_or(vec![Err(Miss::NoAttribute)], |r| vec![Ok(r)]),
        (CompiledSource::Element, Scope::Json(value) | Scope::JsonLd(value)) => {
            vec![Ok(Raw::Json(value.clone()))]
        }
        (CompiledSource::Element, Scope::Page) => Vec::new(),
        (CompiledSource::XPath(expr), scope) => {
            let Some(xml) = ctx.xml else {
                return Vec::new();
            };
            let node = match scope {
                Scope::Node(node) => node,
                _ => XNode::Root(xml.document().root()),
            };
            match xpath::select(expr, node) {
                Ok(found) => found
                    .iter()
                    .take(limit)
                    .map(|s| s.raw(field.attr.as_deref()).ok_or(Miss::NoAttribute))
                    .collect(),
                Err(e) => {
                    logs.push(e);
                    Vec::new()
                }
            }
        }
        (CompiledSource::JsonLd(path), Scope::JsonLd(node)) => json_raws(path, node, limit),
        (CompiledSource::JsonLd(path), _) => ctx
            .jsonld
            .map(|root| json_raws(path, root, limit))
            .unwrap_or_default(),
        (CompiledSource::Microdata { prop, itemtype }, Scope::Element(element)) => microdata(
            element.descendants().skip(1).filter_map(ElementRef::wrap),
            prop,
            itemtype.as_deref(),
        )
        .take(limit)
        .map(|e| element_raw(e, field))
        .collect(),
        (CompiledSource::Microdata { prop, itemtype }, _) => match ctx.html {
            Some(html) => microdata(
                html.tree.root().descendants().filter_map(ElementRef::wrap),
                prop,
                itemtype.as_deref(),
            )
            .take(limit)
            .map(|e| element_raw(e, field))
            .collect(),
            None => Vec::new(),
        },
        (CompiledSource::Meta(name), _) => match ctx.html {
            Some(html) => meta_contents(html, name)
                .take(limit)
                .map(|v| Ok(Raw::Text(v)))
                .collect(),
            None => Vec::new(),
        },
        (CompiledSource::Json(path), scope) => {
            let root = match scope {
                Scope::Json(value) => Some(value),
                _ => ctx.json,
            };
            root.map(|root| json_raws(path, root, limit))
                .unwrap_or_default()
        }
    }
}

/// The value of one field in `scope`, `default` applied.
pub(crate) fn field_value(
    name: &str,
    field: &CompiledField,
    scope: Scope<'_>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> Value {
    let found = raws(field, scope, ctx, logs);
    let value = if found.is_empty() {
        logs.push(match &field.source {
            CompiledSource::Page(PageValue::Save(key)) => {
                format!("field `{name}`: the task saved no `{key}`")
            }
            CompiledSource::Page(PageValue::Header(h)) => {
                format!("field `{name}`: the response has no `{h}` header")
            }
            CompiledSource::Page(PageValue::Screenshot) => format!(
                "field `{name}`: the page has no screenshot (it needs `fetch = \"js\"` and `js = {{ screenshot = true }}`)"
            ),
            _ => format!("field `{name}`: nothing matches {}", field.label),
        });
        if field.all {
            Value::Array(Vec::new())
        } else {
            Value::Null
        }
    } else {
        let total = found.len();
        let mut first_miss = None;
        let mut misses = 0usize;
        let values: Vec<Value> = found
            .into_iter()
            .map(|raw| {
                raw.and_then(|raw| field.transform.apply(raw, ctx.base))
                    .unwrap_or_else(|miss| {
                        misses += 1;
                        first_miss.get_or_insert(miss);
                        Value::Null
                    })
            })
            .collect();
        if let Some(miss) = first_miss {
            let why = match miss {
                Miss::NoAttribute => format!(
                    "the element has no `{}` attribute",
                    field.attr.as_deref().unwrap_or_default()
                ),
                Miss::NoRegexMatch => "the regex did not match".to_string(),
                Miss::NotConvertible => {
                    format!("the value is not a valid {}", field.transform.target())
                }
                Miss::NoResult => format!(
                    "`expr` {} has no finite result (a division by zero?)",
                    field.transform.expr.as_ref().map_or("", |e| e.text())
                ),
            };
            logs.push(format!(
                "field `{name}`: {misses} of {total} value(s) null: {why}"
            ));
        }
        if field.all {
            Value::Array(values)
        } else {
            values.into_iter().next().unwrap_or(Value::Null)
        }
    };
    match (&field.default, is_empty(&value)) {
        (Some(default), true) => default.clone(),
        _ => value,
    }
}

/// Null, or an empty list.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// One item's data in `scope`; `Err(field)` names a required field that came out empty.
fn item_data(
    fields: &[(String, CompiledField)],
    scope: Scope<'_>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> Result<Map<String, Value>, String> {
    let mut data = Map::with_capacity(fields.len());
    let mut missing = None;
    for (name, field) in fields {
        let value = field_value(name, field, scope, ctx, logs);
        if field.required && missing.is_none() && is_empty(&value) {
            missing = Some(name.clone());
        }
        data.insert(name.clone(), value);
    }
    match missing {
        Some(name) => Err(name),
        None => Ok(data),
    }
}

/// The items of a page and the ones dropped for an empty required or key field (each drop
/// is logged too).
pub(crate) fn build_items(
    handler: &CompiledHandler,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> (Vec<Item>, Vec<DroppedItem>) {
    if handler.fields.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let scopes: Vec<Scope<'_>> = match &handler.each {
        None => vec![Scope::Page],
        Some(CompiledEach::Css(selector)) => ctx
            .html
            .map(|html| select_page(html, selector).map(Scope::Element).collect())
            .unwrap_or_default(),
        Some(CompiledEach::XPath(expr)) => match ctx.xml {
            Some(xml) => match xpath::select(expr, XNode::Root(xml.document().root())) {
                Ok(found) => found
                    .into_iter()
                    .filter_map(|s| match s {
                        Selected::Node(node) => Some(Scope::Node(node)),
                        Selected::Value(_) => None,
                    })
                    .collect(),
                Err(e) => {
                    logs.push(e);
                    Vec::new()
                }
            },
            None => Vec::new(),
        },
        Some(CompiledEach::JsonLd(path)) => ctx
            .jsonld
            .map(|nodes| {
                path.query(nodes)
                    .all()
                    .into_iter()
                    .map(Scope::JsonLd)
                    .collect()
            })
            .unwrap_or_default(),
        Some(CompiledEach::Json(path)) => ctx
            .json
            .map(|json| {
                path.query(json)
                    .all()
                    .into_iter()
                    .map(Scope::Json)
                    .collect()
            })
            .unwrap_or_default(),
    };
    if handler.each.is_some() {
        logs.push(format!("items: `each` matched {}", scopes.len()));
    }
    let mut items = Vec::with_capacity(scopes.len());
    let mut dropped = Vec::new();
    for (index, scope) in scopes.into_iter().enumerate() {
        let data = match item_data(&handler.fields, scope, ctx, logs) {
            Ok(data) => data,
            Err(field) => {
                let item = DroppedItem {
                    index,
                    field,
                    cause: DropCause::Required,
                };
                logs.push(item.to_string());
                dropped.push(item);
                continue;
            }
        };
        let taskid = match (&handler.each, &handler.key) {
            (None, _) => ctx.task.taskid.clone(),
            (Some(_), Some(key)) => match data.get(key) {
                Some(Value::String(s)) if !s.is_empty() => urlnorm::fingerprint(s),
                Some(v) if !is_empty(v) && !matches!(v, Value::String(_)) => {
                    urlnorm::fingerprint(&v.to_string())
                }
                _ => {
                    let item = DroppedItem {
                        index,
                        field: key.clone(),
                        cause: DropCause::EmptyKey,
                    };
                    logs.push(item.to_string());
                    dropped.push(item);
                    continue;
                }
            },
            (Some(_), None) => item_key(&ctx.task.taskid, index),
        };
        items.push(Item {
            taskid,
            url: ctx.task.url.clone(),
            data,
        });
    }
    (items, dropped)
}

/// The key of the `index`th item of a page without a key field.
pub(crate) fn item_key(taskid: &str, index: usize) -> String {
    urlnorm::fingerprint(&format!("{taskid}:{index}"))
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
