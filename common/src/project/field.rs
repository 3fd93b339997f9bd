//! Item fields: `item.<name> = ...` in a handler (also the values of a follow's `save`).
//!
//! A field is written either as a string or as a table:
//!
//! - `"$url"`, `"$status"`, `"$save.<key>"`, `"$header.<name>"`, `"$now"`, `"$project"`,
//!   `"$screenshot"`: a value of the page or task ([`PageValue`]);
//! - any other string: a constant; `"$$x"` is the literal `"$x"` (a single leading `$`
//!   always names a page value, so a typo like `"$ulr"` is an error instead of a constant);
//! - a table ([`FieldRule`]): one source (`css`, `xpath`, `json`, `value`, or the page's
//!   structured data: `jsonld`, `itemprop` (+ `itemtype`), `meta`; none inside an `each`
//!   block means the element itself), then `attr` / `html` / `separator`, `regex`, `as`
//!   (+ `format`) or `unit`, `expr`, `all`, `default`, `required`.
//!
//! [`Field`]'s `Deserialize` is written by hand rather than as an untagged enum because an
//! untagged enum swallows the inner error and its span: "data did not match any variant" at
//! the field, instead of "unknown key `xpaht`" at the key.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::compute::Expr;
use super::exprs::{DatetimeFormat, JsonPathExpr, XPathExpr};
use super::units::{Unit, UnitName};
use super::values::{CssSelector, NonEmpty, Pattern};

/// One field of the item a handler emits.
// Fields are built once per project and read in place, never moved in bulk: the size of
// the table variant costs nothing worth a box at every construction site.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A value of the page or task: `"$url"`, `"$status"`, `"$save.<key>"`, ...
    Page(PageValue),
    /// A constant string (`"$$x"` in the file is the constant `"$x"`).
    Const(String),
    /// A value extracted from the page (or a page value with transforms).
    Extract(FieldRule),
}

/// A value that comes with the page rather than from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageValue {
    /// The task's URL (`$url`).
    Url,
    /// The HTTP status of the response (`$status`).
    Status,
    /// A key of the data the parent page passed on (`$save.<key>`).
    Save(String),
    /// A response header, by case-insensitive name (`$header.<name>`).
    Header(String),
    /// The time of processing, RFC 3339 in UTC (`$now`).
    Now,
    /// The project's name (`$project`).
    Project,
    /// The PNG screenshot of a page rendered with `js = { screenshot = true }`, base64
    /// (`$screenshot`); null when the page has none.
    Screenshot,
}

/// Where a field's raw value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Elements matching a CSS selector (relative to the element inside `each`).
    Css(String),
    /// Nodes selected by an XPath 1.0 expression (relative inside `each_xpath`).
    XPath(String),
    /// Values selected by a JSONPath expression on the JSON body (relative inside
    /// `each_json`).
    Json(String),
    /// A page value (`value = "$url"`).
    Page(PageValue),
    /// A constant (`value = "text"`).
    Const(String),
    /// The `each` element itself (a table with no source, inside an `each` block).
    Element,
    /// Values selected by a JSONPath on the page's JSON-LD: every
    /// `<script type="application/ld+json">` block, parsed, `@graph`s flattened, as one
    /// array of nodes (`jsonld = "$[?@['@type']=='Product'].name"`); inside `each_jsonld`,
    /// relative to the node.
    JsonLd(String),
    /// Microdata properties: elements whose `itemprop` has this name (relative to the
    /// element inside `each`), optionally only those of an item of type `itemtype`.
    Microdata {
        /// The property name (`itemprop = "price"`).
        prop: String,
        /// The item type the property must belong to (`itemtype = "Product"`, or a full
        /// `https://schema.org/Product`); `None`: any item.
        itemtype: Option<String>,
    },
    /// The `content` of `<meta>` elements whose `property` or `name` is this (any case):
    /// `meta = "og:title"`, `meta = "description"`. Always page-wide.
    Meta(String),
}

impl Source {
    /// Whether the source reads HTML elements (so `attr` and `html` apply).
    pub fn reads_elements(&self) -> bool {
        matches!(
            self,
            Source::Css(_) | Source::Element | Source::Microdata { .. }
        )
    }
}

/// Which HTML of an element a field takes (`html = "inner"` or `"outer"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HtmlPart {
    /// The element's content.
    Inner,
    /// The element with its tags.
    Outer,
}

/// How to extract one field and turn it into a value.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRule {
    /// Where the raw value comes from.
    pub source: Source,
    /// Attribute to read from matched elements; `None` reads the text, whitespace-normalized.
    pub attr: Option<String>,
    /// Take the element's HTML instead of its text.
    pub html: Option<HtmlPart>,
    /// Regex applied to the value: its first capture group if it has one, else the whole
    /// match; no match gives null.
    pub regex: Option<String>,
    /// Type of the value (key `as`); `None`: a string from HTML, the JSON value as is.
    pub kind: Option<ValueKind>,
    /// Input format of `as = "datetime"` or `as = "date"` (chrono `strftime` directives).
    pub format: Option<String>,
    /// What an element's text puts between the texts of its blocks and table cells
    /// (`separator`); `None`: one space.
    pub separator: Option<String>,
    /// Read the value as a quantity and give it as a number in this unit (`unit = "g"`).
    pub unit: Option<Unit>,
    /// Arithmetic on the number the value is by then (`expr = "value * 1000"`).
    pub expr: Option<Expr>,
    /// Every match as an array, instead of the first match.
    pub all: bool,
    /// Value used when the field comes out null (or an empty list with `all`).
    pub default: Option<serde_json::Value>,
    /// An item whose field is null (after `default`) is dropped, counted and logged.
    pub required: bool,
}

impl FieldRule {
    /// A rule with this source and no transforms.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            attr: None,
            html: None,
            regex: None,
            kind: None,
            format: None,
            separator: None,
            unit: None,
            expr: None,
            all: false,
            default: None,
            required: false,
        }
    }
}

/// The type a field value is converted to (`as = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// The text as is.
    String,
    /// A floating-point number; thousands separators are ignored.
    Number,
    /// A whole number.
    Integer,
    /// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0` (any case).
    Bool,
    /// A URL resolved against the page URL.
    Url,
    /// A date and time, output as RFC 3339 (UTC when the input has no offset).
    Datetime,
    /// A calendar date, output as `YYYY-MM-DD`: the date as written (in the input's own
    /// offset, if it has one), its time of day dropped. Reads what `Datetime` reads.
    Date,
}

impl ValueKind {
    /// Whether the kind reads dates, so that `format` (an input format) applies to it.
    pub fn takes_format(self) -> bool {
        matches!(self, ValueKind::Datetime | ValueKind::Date)
    }
}

impl PageValue {
    /// Reads a string field: `Ok(None)` for a constant, the page value for `$...`, an error
    /// saying what was expected for an unknown `$name`.
    pub(crate) fn parse(text: &str) -> Result<Option<PageValue>, String> {
        let Some(name) = text.strip_prefix('$') else {
            return Ok(None);
        };
        if name.starts_with('$') {
            return Ok(None);
        }
        let keyed = |prefix: &str| name.strip_prefix(prefix).filter(|k| !k.is_empty());
        match name {
            "url" => Ok(Some(PageValue::Url)),
            "status" => Ok(Some(PageValue::Status)),
            "now" => Ok(Some(PageValue::Now)),
            "project" => Ok(Some(PageValue::Project)),
            "screenshot" => Ok(Some(PageValue::Screenshot)),
            _ => {
                if let Some(key) = keyed("save.") {
                    Ok(Some(PageValue::Save(key.to_string())))
                } else if let Some(header) = keyed("header.") {
                    Ok(Some(PageValue::Header(header.to_ascii_lowercase())))
                } else {
                    Err(format!(
                        "unknown page value \"{text}\"; expected \"$url\", \"$status\", \"$save.<key>\", \"$header.<name>\", \"$now\", \"$project\" or \"$screenshot\" (write \"$$\" for a literal \"$\")"
                    ))
                }
            }
        }
    }
}

impl Field {
    /// The field a string in the file stands for.
    pub(crate) fn from_text(text: &str) -> Result<Field, String> {
        Ok(match PageValue::parse(text)? {
            Some(value) => Field::Page(value),
            None => Field::Const(unescape(text).to_string()),
        })
    }

    /// The extraction source of a table field, `None` for the string forms.
    pub fn source(&self) -> Option<&Source> {
        match self {
            Field::Extract(rule) => Some(&rule.source),
            _ => None,
        }
    }
}

/// The table form of a field, as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFieldRule {
    css: Option<CssSelector>,
    xpath: Option<XPathExpr>,
    json: Option<JsonPathExpr>,
    value: Option<String>,
    jsonld: Option<JsonPathExpr>,
    itemprop: Option<NonEmpty>,
    itemtype: Option<NonEmpty>,
    meta: Option<NonEmpty>,
    attr: Option<NonEmpty>,
    html: Option<HtmlPart>,
    regex: Option<Pattern>,
    #[serde(rename = "as")]
    kind: Option<ValueKind>,
    format: Option<DatetimeFormat>,
    separator: Option<String>,
    unit: Option<UnitName>,
    expr: Option<Expr>,
    #[serde(default)]
    all: bool,
    default: Option<serde_json::Value>,
    #[serde(default)]
    required: bool,
}

impl RawFieldRule {
    /// The checks between keys of one table.
    fn build(self) -> Result<FieldRule, String> {
        let sources = [
            self.css.is_some(),
            self.xpath.is_some(),
            self.json.is_some(),
            self.value.is_some(),
            self.jsonld.is_some(),
            self.itemprop.is_some(),
            self.meta.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(
                "expected one source per field: `css`, `xpath`, `json`, `value`, `jsonld`, `itemprop` or `meta`, not several"
                    .to_string(),
            );
        }
        if self.itemtype.is_some() && self.itemprop.is_none() {
            return Err("`itemtype` narrows `itemprop`: use it with `itemprop`".to_string());
        }
        let source = if let Some(css) = self.css {
            Source::Css(css.0)
        } else if let Some(xpath) = self.xpath {
            Source::XPath(xpath.0)
        } else if let Some(json) = self.json {
            Source::Json(json.0)
        } else if let Some(value) = self.value {
            match PageValue::parse(&value)? {
                Some(v) => Source::Page(v),
                None => Source::Const(unescape(&value).to_string()),
            }
        } else if let Some(path) = self.jsonld {
            Source::JsonLd(path.0)
        } else if let Some(prop) = self.itemprop {
            if prop.0.contains(char::is_whitespace) {
                return Err(format!(
                    "expected one property name in `itemprop`, found \"{}\"",
                    prop.0
                ));
            }
            Source::Microdata {
                prop: prop.0,
                itemtype: self.itemtype.map(|t| t.0),
            }
        } else if let Some(name) = self.meta {
            Source::Meta(name.0)
        } else {
            Source::Element
        };
        let reads_elements = source.reads_elements();
        if self.html.is_some() && !reads_elements {
            return Err(
                "`html` reads elements: use it with `css` or `itemprop` (or inside `each`)"
                    .to_string(),
            );
        }
        if self.html.is_some() && self.attr.is_some() {
            return Err("expected `attr` or `html`, not both".to_string());
        }
        if self.attr.is_some() && !reads_elements && !matches!(source, Source::XPath(_)) {
            return Err(
                "`attr` reads elements: use it with `css`, `xpath` or `itemprop`".to_string(),
            );
        }
        if self.separator.is_some()
            && (!reads_elements || self.attr.is_some() || self.html.is_some())
        {
            return Err(
                "`separator` joins the texts of an element's blocks and cells: use it with `css` or `itemprop` (or inside `each`), without `attr` or `html`"
                    .to_string(),
            );
        }
        if self.unit.is_some() && self.kind.is_some() {
            return Err(
                "expected `as` or `unit`, not both (`unit` gives a number in that unit)"
                    .to_string(),
            );
        }
        if self.expr.is_some()
            && self
                .kind
                .is_some_and(|k| !matches!(k, ValueKind::Number | ValueKind::Integer))
        {
            return Err(
                "`expr` computes on numbers: use it with `as = \"number\"`, `as = \"integer\"`, `unit`, or no `as`"
                    .to_string(),
            );
        }
        if self.format.is_some() && !self.kind.is_some_and(ValueKind::takes_format) {
            return Err(
                "`format` is the input format of `as = \"datetime\"` or `as = \"date\"`"
                    .to_string(),
            );
        }
        Ok(FieldRule {
            source,
            attr: self.attr.map(|a| a.0),
            html: self.html,
            regex: self.regex.map(|r| r.0),
            kind: self.kind,
            format: self.format.map(|f| f.0),
            separator: self.separator,
            unit: self.unit.map(|u| u.0),
            expr: self.expr,
            all: self.all,
            default: self.default,
            required: self.required,
        })
    }
}

/// The constant a string that names no page value stands for: `$$x` is `$x`.
pub(super) fn unescape(text: &str) -> &str {
    text.strip_prefix('$').unwrap_or(text)
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a page value ("$url", "$status", "$save.<key>", "$header.<name>"), a constant string, or a table { css | xpath | json | value | jsonld | itemprop | meta, attr, html, separator, regex, as, format, unit, expr, all, default, required }"#,
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Field::from_text(v).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
                // Hand the map to the derived struct so unknown keys and bad values are
                // reported by the TOML deserializer at their own spans.
                let raw = RawFieldRule::deserialize(MapAccessDeserializer::new(map))?;
                raw.build().map(Field::Extract).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: &str) -> Result<Field, toml::de::Error> {
        #[derive(serde::Deserialize)]
        struct Doc {
            v: Field,
        }
        toml::from_str::<Doc>(&format!("v = {value}")).map(|d| d.v)
    }

    #[test]
    fn page_values_are_recognized() {
        assert_eq!(read(r#""$url""#).expect("ok"), Field::Page(PageValue::Url));
        assert_eq!(
            read(r#""$status""#).expect("ok"),
            Field::Page(PageValue::Status)
        );
        assert_eq!(
            read(r#""$save.category""#).expect("ok"),
            Field::Page(PageValue::Save("category".into()))
        );
        assert_eq!(
            read(r#""$header.Content-Type""#).expect("ok"),
            Field::Page(PageValue::Header("content-type".into()))
        );
        assert_eq!(read(r#""$now""#).expect("ok"), Field::Page(PageValue::Now));
        assert_eq!(
            read(r#""$project""#).expect("ok"),
            Field::Page(PageValue::Project)
        );
        assert_eq!(
            read(r#""$screenshot""#).expect("ok"),
            Field::Page(PageValue::Screenshot)
        );
    }

    #[test]
    fn other_strings_are_constants_and_double_dollar_escapes() {
        assert_eq!(
            read(r#""books""#).expect("ok"),
            Field::Const("books".into())
        );
        assert_eq!(
            read(r#""$$5.00""#).expect("ok"),
            Field::Const("$5.00".into())
        );
        assert_eq!(
            read(r#""a $url""#).expect("ok"),
            Field::Const("a $url".into())
        );
    }

    #[test]
    fn unknown_page_values_are_refused_at_the_value() {
        for bad in [
            r#""$ulr""#,
            r#""$save.""#,
            r#""$""#,
            r#""$URL""#,
            r#""$header.""#,
        ] {
            let err = read(bad).expect_err(bad);
            assert!(err.message().contains("unknown page value"), "{bad}: {err}");
            assert!(err.message().contains("\"$save.<key>\""), "{bad}: {err}");
            assert_eq!(err.span().map(|s| s.start), Some(4), "{bad}");
        }
    }

    #[test]
    fn tables_are_extraction_rules_with_defaults() {
        let field = read(r#"{ css = "h1" }"#).expect("ok");
        assert_eq!(
            field,
            Field::Extract(FieldRule::new(Source::Css("h1".into())))
        );
        let field = read(
            r#"{ css = "img", attr = "src", regex = '(\d+)', as = "url", all = true, default = [], required = true }"#,
        )
        .expect("ok");
        assert_eq!(
            field,
            Field::Extract(FieldRule {
                source: Source::Css("img".into()),
                attr: Some("src".into()),
                html: None,
                regex: Some(r"(\d+)".into()),
                kind: Some(ValueKind::Url),
                format: None,
                separator: None,
                unit: None,
                expr: None,
                all: true,
                default: Some(serde_json::json!([])),
                required: true,
            })
        );
    }

    #[test]
    fn every_source_has_its_key() {
        let source = |text: &str| match read(text).expect(text) {
            Field::Extract(rule) => rule.source,
            other => panic!("not a table: {other:?}"),
        };
        assert_eq!(
            source(r#"{ xpath = "//h1" }"#),
            Source::XPath("//h1".into())
        );
        assert_eq!(source(r#"{ json = "$.a" }"#), Source::Json("$.a".into()));
        assert_eq!(
            source(r#"{ value = "$url" }"#),
            Source::Page(PageValue::Url)
        );
        assert_eq!(source(r#"{ value = "x" }"#), Source::Const("x".into()));
        assert_eq!(source(r#"{ attr = "href" }"#), Source::Element);
        assert_eq!(
            read(r#"{ css = "div", html = "outer" }"#).expect("ok"),
            Field::Extract(FieldRule {
                html: Some(HtmlPart::Outer),
                ..FieldRule::new(Source::Css("div".into()))
            })
        );
        assert!(read(r#"{ css = "p", as = "datetime", format = "%d/%m/%Y" }"#).is_ok());
    }

    #[test]
    fn dates_take_a_format_like_datetimes() {
        let field = read(r#"{ css = ".born", as = "date", format = "%B %d, %Y" }"#).expect("ok");
        assert_eq!(
            field,
            Field::Extract(FieldRule {
                kind: Some(ValueKind::Date),
                format: Some("%B %d, %Y".into()),
                ..FieldRule::new(Source::Css(".born".into()))
            })
        );
        let err = read(r#"{ css = "p", as = "date", format = "%Q" }"#).expect_err("bad format");
        assert!(err.message().contains("invalid datetime format"), "{err}");
        let err = read(r#"{ css = "p", as = "number", format = "%Y" }"#).expect_err("not a date");
        assert!(
            err.message()
                .contains("`format` is the input format of `as = \"datetime\"` or `as = \"date\"`"),
            "{err}"
        );
    }

    #[test]
    fn conflicting_keys_are_refused_at_the_table() {
        for (bad, why) in [
            (r#"{ css = "h1", json = "$.a" }"#, "one source"),
            (
                r#"{ json = "$.a", html = "inner" }"#,
                "`html` reads elements",
            ),
            (r#"{ css = "a", html = "inner", attr = "x" }"#, "not both"),
            (r#"{ value = "$url", attr = "x" }"#, "`attr` reads elements"),
            (r#"{ css = "p", format = "%Y" }"#, "`format`"),
        ] {
            let err = read(bad).expect_err(bad);
            assert!(err.message().contains(why), "{bad}: {err}");
            assert_eq!(err.span().map(|s| s.start), Some(4), "{bad}");
        }
    }

    #[test]
    fn table_errors_point_inside_the_table() {
        //            0         1         2         3
        //            0123456789012345678901234567890123
        let err = read(r#"{ css = "h1", xpaht = "//h1" }"#).expect_err("unknown key");
        assert!(err.message().contains("unknown field `xpaht`"), "{err}");
        assert_eq!(err.span().map(|s| s.start), Some(18));

        let err = read(r#"{ css = "h1", as = "float" }"#).expect_err("bad kind");
        assert!(err.message().contains("unknown variant `float`"), "{err}");
        assert!(
            err.message().contains(
                "expected one of `string`, `number`, `integer`, `bool`, `url`, `datetime`, `date`"
            ),
            "{err}"
        );
        assert_eq!(err.span().map(|s| s.start), Some(23));

        let err = read(r#"{ css = "h1[" }"#).expect_err("bad css");
        assert!(err.message().contains("invalid CSS selector"), "{err}");
        assert_eq!(err.span().map(|s| s.start), Some(12));

        let err = read(r#"{ json = "$.a[" }"#).expect_err("bad json path");
        assert!(err.message().contains("invalid JSONPath"), "{err}");
        let err = read(r#"{ xpath = "//a[" }"#).expect_err("bad xpath");
        assert!(err.message().contains("invalid XPath"), "{err}");
    }

    #[test]
    fn structured_data_sources_have_their_keys() {
        let rule = |text: &str| match read(text).expect(text) {
            Field::Extract(rule) => rule,
            other => panic!("not a table: {other:?}"),
        };
        assert_eq!(
            rule(r#"{ jsonld = "$[?@['@type']=='Product'].gtin13" }"#).source,
            Source::JsonLd("$[?@['@type']=='Product'].gtin13".into())
        );
        assert_eq!(
            rule(r#"{ itemprop = "price", itemtype = "Product", attr = "content" }"#),
            FieldRule {
                attr: Some("content".into()),
                ..FieldRule::new(Source::Microdata {
                    prop: "price".into(),
                    itemtype: Some("Product".into()),
                })
            }
        );
        assert_eq!(
            rule(r#"{ itemprop = "name" }"#).source,
            Source::Microdata {
                prop: "name".into(),
                itemtype: None
            }
        );
        assert_eq!(
            rule(r#"{ meta = "og:title" }"#).source,
            Source::Meta("og:title".into())
        );
        assert!(read(r#"{ itemprop = "description", html = "inner" }"#).is_ok());
    }

    #[test]
    fn computed_fields_take_unit_expr_and_separator() {
        let rule = |text: &str| match read(text).expect(text) {
            Field::Extract(rule) => rule,
            other => panic!("not a table: {other:?}"),
        };
        let r = rule(r#"{ css = "td.w", unit = "g", expr = "round(value)" }"#);
        assert_eq!(r.unit.map(|u| u.symbol), Some("g"));
        assert_eq!(r.expr.as_ref().map(Expr::text), Some("round(value)"));
        let r = rule(r#"{ css = "tr", separator = ": " }"#);
        assert_eq!(r.separator.as_deref(), Some(": "));
        assert!(read(r#"{ json = "$.p", as = "integer", expr = "value * 100" }"#).is_ok());
        assert!(read(r#"{ jsonld = "$..price", expr = "value * 100" }"#).is_ok());
    }

    #[test]
    fn structured_and_computed_conflicts_are_refused_at_the_table() {
        for (bad, why) in [
            (r#"{ jsonld = "$.a", css = "p" }"#, "one source"),
            (r#"{ meta = "og:title", itemprop = "name" }"#, "one source"),
            (
                r#"{ css = "p", itemtype = "Product" }"#,
                "`itemtype` narrows `itemprop`",
            ),
            (r#"{ itemprop = "a b" }"#, "one property name"),
            (
                r#"{ meta = "og:image", attr = "content" }"#,
                "`attr` reads elements",
            ),
            (
                r#"{ jsonld = "$.a", html = "inner" }"#,
                "`html` reads elements",
            ),
            (
                r#"{ css = "p", attr = "title", separator = " " }"#,
                "`separator`",
            ),
            (r#"{ json = "$.a", separator = " " }"#, "`separator`"),
            (
                r#"{ css = "p", as = "number", unit = "g" }"#,
                "`as` or `unit`",
            ),
            (
                r#"{ css = "p", as = "date", expr = "value" }"#,
                "`expr` computes on numbers",
            ),
        ] {
            let err = read(bad).expect_err(bad);
            assert!(err.message().contains(why), "{bad}: {err}");
            assert_eq!(err.span().map(|s| s.start), Some(4), "{bad}");
        }
        // The span of the value, after "v = { css = \"p\", unit = ".
        let err = read(r#"{ css = "p", unit = "stone" }"#).expect_err("unit");
        assert!(err.message().contains("unknown unit"), "{err}");
        assert_eq!(err.span().map(|s| s.start), Some(24));
        let err = read(r#"{ css = "p", expr = "value *" }"#).expect_err("expr");
        assert!(err.message().contains("invalid expression"), "{err}");
        assert_eq!(err.span().map(|s| s.start), Some(24));
        let err = read(r#"{ jsonld = "$[" }"#).expect_err("path");
        assert!(err.message().contains("invalid JSONPath"), "{err}");
        let err = read(r#"{ meta = "" }"#).expect_err("empty");
        assert!(err.span().is_some(), "{err}");
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let err = read("5").expect_err("number");
        assert!(err.message().contains("a page value"), "{err}");
        assert!(err.message().contains("a table"), "{err}");
    }
}
