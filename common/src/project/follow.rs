//! Follow rules: which links of a page become new tasks, and how those tasks are fetched.
//!
//! A rule takes links from one source (`css` + `attr`, `xpath`, `json`, or a `url`
//! template), filters them (same site, `allow` / `deny` regexes, `max_depth`, URL length),
//! and makes tasks with the rule's `callback`, `priority`, `age`, `itag`, `force`, fetch
//! options and `save` data.
//!
//! With `each` (CSS), the rule runs once per matching element: its links come from `css`
//! inside the element (or the element itself), and its `save`, `itag` and form values are
//! read inside it too, so each link carries its own values (the price of its own tile).
//! A `form = { css = ... }` makes the link a form of the page ([`PageForm`]).

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::exprs::{JsonPathExpr, Method, XPathExpr, check_json_path};
use super::fetch::{RawPart, with_fetch_keys};
use super::field::{Field, PageValue, Source};
use super::form::{FormFields, PageForm, ReadForm, read_form};
use super::values::{CssSelector, Dur, NonEmpty, Pattern};
use crate::message::FetchOptions;

/// Attribute read by a follow rule when the file does not say.
pub(super) const DEFAULT_FOLLOW_ATTR: &str = "href";
/// Longest URL followed when the rule does not say.
pub const DEFAULT_MAX_URL_LENGTH: usize = 2048;

/// Which links of a page to follow, and how to fetch them.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowRule {
    /// Where the links come from.
    pub links: LinkSource,
    /// Handler of the followed pages.
    pub callback: String,
    /// Priority of the follow tasks (higher first; default 0).
    pub priority: i32,
    /// Re-crawl the followed URLs after this long (overrides `[defaults] age`).
    pub age: Option<Duration>,
    /// Re-crawl tag: a constant or a page value; a task whose tag changed is fetched again.
    pub itag: Option<Field>,
    /// Queue the follows even when they are known and young.
    pub force: bool,
    /// The follows' own fetch options (the project's defaults are merged under them).
    pub fetch: FetchOptions,
    /// Data passed to the next handler (`$save.<key>` there), evaluated on this page (inside
    /// the `each` element of each link, with `each`).
    pub save: IndexMap<String, Field>,
    /// Elements (CSS) each of which makes the rule's links with values of its own: `css`,
    /// `save`, `itag` and form values are read inside the element.
    pub each: Option<String>,
    /// Form fields read from the page (a page value or a field rule among them), evaluated for
    /// each link; a form of constants only is in `fetch.form`.
    pub form: Option<FormFields>,
    /// Request headers (of the rule's own `headers`, names lower-cased) whose values are part
    /// of the task's id (see [`crate::urlnorm::request_fingerprint_with_headers`]).
    pub identity_headers: Vec<String>,
    /// Regexes of which one must match the URL (none: every URL).
    pub allow: Vec<String>,
    /// Regexes of which none may match the URL.
    pub deny: Vec<String>,
    /// Keep only URLs on the site of the start URLs (default true).
    pub same_site: bool,
    /// Make no follow deeper than this (the start URLs are depth 0).
    pub max_depth: Option<u32>,
    /// Drop URLs longer than this many bytes.
    pub max_url_length: usize,
}

/// Where a follow rule's links come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkSource {
    /// Elements matching a CSS selector, link in attribute `attr` (default `href`).
    Css {
        /// The selector.
        css: String,
        /// The attribute holding the link.
        attr: String,
    },
    /// Nodes selected by XPath: an attribute node's value, or an element's `attr`.
    XPath {
        /// The expression.
        xpath: String,
        /// The attribute read from element nodes.
        attr: String,
    },
    /// String values selected by JSONPath on the JSON body.
    Json(String),
    /// A URL built from a template (see [`UrlTemplate`]).
    Url(UrlTemplate),
    /// The `each` element itself, link in attribute `attr` (a rule with `each` and no `css`).
    Element {
        /// The attribute holding the link.
        attr: String,
    },
    /// Forms of the page, submitted as a browser does (`form = { css = ... }`).
    Form(PageForm),
}

/// A URL template such as `https://api.example/items?page={$.next_page}&cat={$save.cat}`.
///
/// A placeholder is a JSONPath expression on the JSON body (`{$.x}`, `{$[0]}`) or a page
/// value (`{$url}`, `{$save.key}`, `{$header.name}`, ...); `{{` and `}}` are literal braces.
/// Values are percent-encoded, except a placeholder at the very start of the template,
/// which may hold a whole URL. A JSONPath that selects nothing makes no URL (the last page
/// of a paged API); one that selects several values makes one URL per value.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlTemplate {
    /// The template as written.
    pub text: String,
    /// Its parts in order.
    pub parts: Vec<TemplatePart>,
}

/// One part of a [`UrlTemplate`].
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Text taken as is.
    Literal(String),
    /// A page value.
    Page(PageValue),
    /// A JSONPath on the JSON body.
    Json(String),
}

impl UrlTemplate {
    /// Parses a template; the error says which placeholder is wrong.
    pub fn parse(text: &str) -> Result<UrlTemplate, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                literal.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                literal.push('}');
                rest = after;
            } else if tail.starts_with('}') {
                return Err(format!(
                    "URL template \"{text}\" has a `}}` without `{{`; write `}}}}` for a literal brace"
                ));
            } else {
                let Some(end) = tail.find('}') else {
                    return Err(format!("URL template \"{text}\" has an unclosed `{{`"));
                };
                let inner = tail[1..end].trim();
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(placeholder(text, inner)?);
                rest = &tail[end + 1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        Ok(UrlTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// Whether a placeholder reads the JSON body.
    pub fn reads_json(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, TemplatePart::Json(_)))
    }
}

/// One `{...}` of a template.
fn placeholder(text: &str, inner: &str) -> Result<TemplatePart, String> {
    let expected = "expected a JSONPath such as {$.next_page} or a page value such as {$save.page}";
    let Some(after) = inner.strip_prefix('$') else {
        return Err(format!(
            "URL template \"{text}\": placeholder {{{inner}}}: {expected}"
        ));
    };
    if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return match PageValue::parse(inner) {
            Ok(Some(value)) => Ok(TemplatePart::Page(value)),
            Ok(None) | Err(_) => Err(format!(
                "URL template \"{text}\": unknown page value {{{inner}}}; {expected}"
            )),
        };
    }
    check_json_path(inner).map_err(|e| format!("URL template \"{text}\": {e}"))?;
    Ok(TemplatePart::Json(inner.to_string()))
}

with_fetch_keys! {
    /// A follow rule as written.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawFollow {
        each: Option<CssSelector>,
        css: Option<CssSelector>,
        xpath: Option<XPathExpr>,
        json: Option<JsonPathExpr>,
        url: Option<String>,
        attr: Option<NonEmpty>,
        callback: Spanned<String>,
        #[serde(default)]
        priority: i32,
        age: Option<Dur>,
        itag: Option<Field>,
        #[serde(default)]
        force: bool,
        #[serde(default)]
        save: IndexMap<NonEmpty, Field>,
        #[serde(default)]
        allow: Vec<Pattern>,
        #[serde(default)]
        deny: Vec<Pattern>,
        same_site: Option<bool>,
        max_depth: Option<u32>,
        max_url_length: Option<usize>,
        #[serde(default)]
        identity_headers: Vec<super::values::HeaderName>,
        method: Option<Method>,
        body: Option<String>,
        form: Option<toml::Value>,
        #[serde(default)]
        multipart: Vec<RawPart>,
    }
}

/// A follow rule as read, with the spans the cross-reference checks point at.
pub(super) struct ReadFollow {
    /// The rule, callback not yet checked.
    pub rule: FollowRule,
    /// Span of the callback's value.
    pub callback_span: std::ops::Range<usize>,
}

impl<'de> Deserialize<'de> for ReadFollow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawFollow::deserialize(d)?;
        raw.build().map_err(serde::de::Error::custom)
    }
}

impl RawFollow {
    /// The checks between keys of one rule.
    fn build(mut self) -> Result<ReadFollow, String> {
        let form = self.form.take().map(read_form).transpose()?;
        let page_form = matches!(form, Some(ReadForm::Page(_)));
        let given = [
            self.css.is_some(),
            self.xpath.is_some(),
            self.json.is_some(),
            self.url.is_some(),
            page_form,
        ];
        let attr = || {
            self.attr
                .as_ref()
                .map_or_else(|| DEFAULT_FOLLOW_ATTR.to_string(), |a| a.0.clone())
        };
        let links = match (given.iter().filter(|g| **g).count(), &form) {
            (0, _) if self.each.is_some() => LinkSource::Element { attr: attr() },
            (0, _) => {
                return Err(
                    "a follow rule needs a source of links: `css`, `xpath`, `json`, `url` or a form of the page (`form = { css = ... }`)"
                        .to_string(),
                );
            }
            (1, Some(ReadForm::Page(page))) => LinkSource::Form(page.clone()),
            (1, _) => {
                if let Some(css) = &self.css {
                    LinkSource::Css {
                        css: css.0.clone(),
                        attr: attr(),
                    }
                } else if let Some(xpath) = &self.xpath {
                    LinkSource::XPath {
                        xpath: xpath.0.clone(),
                        attr: attr(),
                    }
                } else if let Some(json) = &self.json {
                    LinkSource::Json(json.0.clone())
                } else {
                    let text = self.url.as_deref().unwrap_or_default();
                    LinkSource::Url(UrlTemplate::parse(text)?)
                }
            }
            (_, Some(ReadForm::Page(_))) => {
                return Err(
                    "a form of the page (`form = { css = ... }`) is the rule's link (its action): remove `css`, `xpath`, `json` and `url`"
                        .to_string(),
                );
            }
            _ => {
                return Err(
                    "expected one source of links per rule: `css`, `xpath`, `json` or `url`, not several"
                        .to_string(),
                );
            }
        };
        if self.attr.is_some()
            && !matches!(
                links,
                LinkSource::Css { .. } | LinkSource::XPath { .. } | LinkSource::Element { .. }
            )
        {
            return Err("`attr` reads elements: use it with `css` or `xpath`".to_string());
        }
        if self.each.is_some()
            && !matches!(
                links,
                LinkSource::Css { .. } | LinkSource::Element { .. } | LinkSource::Form(_)
            )
        {
            return Err(
                "`each` (CSS) takes links with `css` inside each element, the element itself (no source) or a form of the page; not `xpath`, `json` or `url`"
                    .to_string(),
            );
        }
        if page_form && (self.method.is_some() || self.body.is_some() || !self.multipart.is_empty())
        {
            return Err(
                "a form of the page is sent with its own method and fields: remove `method`, `body` and `multipart` (set values with `fill`)"
                    .to_string(),
            );
        }
        let bodies = [
            self.body.is_some(),
            form.is_some(),
            !self.multipart.is_empty(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err("expected one of `body`, `form` and `multipart`, not several".to_string());
        }
        if let Some(itag) = &self.itag
            && matches!(itag, Field::Extract(_))
            && self.each.is_none()
        {
            return Err(
                "`itag` is a constant or a page value such as \"$header.etag\" (a field rule only with `each`)".to_string(),
            );
        }
        if self.max_url_length == Some(0) {
            return Err("expected a `max_url_length` of at least 1".to_string());
        }
        // Where the rule's values are read: inside `each`, as in `items.each`; else on the page,
        // where a value without a source has no element to read.
        let scoped = self
            .each
            .as_ref()
            .map(|css| super::handler::Each::Css(css.0.clone()));
        let mut values: Vec<(String, &Field)> = self
            .save
            .iter()
            .map(|(k, f)| (format!("save.{}", k.0), f))
            .collect();
        values.extend(self.itag.iter().map(|f| ("itag".to_string(), f)));
        let form_fields = match &form {
            Some(ReadForm::Fields(fields)) => Some(fields),
            Some(ReadForm::Page(page)) => Some(&page.fill),
            _ => None,
        };
        for (name, value) in form_fields.into_iter().flatten() {
            if let super::form::FormValue::Field(f) = value {
                values.push((format!("form.{name}"), f));
            }
        }
        for (name, field) in values {
            let Some(source) = field.source() else {
                continue;
            };
            match &scoped {
                Some(each) => each.allows(source).map_err(|e| format!("`{name}`: {e}"))?,
                None if *source == Source::Element => {
                    return Err(format!(
                        "`{name}`: expected a source: `css`, `xpath`, `json`, `value`, `jsonld`, `itemprop` or `meta` (a value without one reads the element of the rule's `each`)"
                    ));
                }
                None => {}
            }
        }
        let mut fetch = self.take_fetch().into_options();
        fetch.method = self.method.map(|m| m.0);
        fetch.body = self.body;
        let form = match form {
            Some(ReadForm::Constant(constants)) => {
                fetch.form = Some(constants);
                None
            }
            Some(ReadForm::Fields(fields)) => Some(fields),
            Some(ReadForm::Page(_)) | None => None,
        };
        fetch.multipart = self.multipart.into_iter().map(Into::into).collect();
        let callback_span = self.callback.span();
        Ok(ReadFollow {
            rule: FollowRule {
                links,
                callback: self.callback.into_inner(),
                priority: self.priority,
                age: self.age.map(|a| a.0),
                itag: self.itag,
                force: self.force,
                fetch,
                save: self.save.into_iter().map(|(k, v)| (k.0, v)).collect(),
                each: self.each.map(|e| e.0),
                form,
                identity_headers: self
                    .identity_headers
                    .into_iter()
                    .map(|h| h.0.to_ascii_lowercase())
                    .collect(),
                allow: self.allow.into_iter().map(|p| p.0).collect(),
                deny: self.deny.into_iter().map(|p| p.0).collect(),
                same_site: self.same_site.unwrap_or(true),
                max_depth: self.max_depth,
                max_url_length: self.max_url_length.unwrap_or(DEFAULT_MAX_URL_LENGTH),
            },
            callback_span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_literals_json_paths_and_page_values() {
        let t = UrlTemplate::parse("https://api.example/x?page={$.next}&c={ $save.cat }&l={{1}}")
            .expect("valid");
        assert_eq!(
            t.parts,
            vec![
                TemplatePart::Literal("https://api.example/x?page=".into()),
                TemplatePart::Json("$.next".into()),
                TemplatePart::Literal("&c=".into()),
                TemplatePart::Page(PageValue::Save("cat".into())),
                TemplatePart::Literal("&l={1}".into()),
            ]
        );
        assert!(t.reads_json());
        assert!(
            !UrlTemplate::parse("https://a/{$url}")
                .expect("ok")
                .reads_json()
        );
    }

    #[test]
    fn bad_templates_say_why() {
        for (bad, why) in [
            ("https://a/{$.x", "unclosed"),
            ("https://a/}", "without"),
            ("https://a/{page}", "expected a JSONPath"),
            ("https://a/{$nope}", "unknown page value"),
            ("https://a/{$.x[}", "invalid JSONPath"),
        ] {
            let err = UrlTemplate::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
