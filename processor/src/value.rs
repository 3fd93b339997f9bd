//! From a raw value (text of an element, an attribute, a JSON value, a page value) to the
//! field's JSON value: `regex`, then `as` (+ `format`) or `unit`, then `expr`.
//!
//! Value rules: the regex keeps its first capture group if it has groups, else the whole
//! match (no match, or a group that did not take part, gives no value); `as` converts the
//! text (a value that does not convert gives no value); `unit` reads a quantity ("1.24 kg")
//! as a number in its unit; `expr` computes on the number the value is by then. Without
//! `as`, text stays a string and a JSON value stays what it is. A `unit` or `expr` result is
//! an integer when it is whole, else a float. Every "no value" is a [`Miss`], which the
//! caller turns into `null` and a log line.
//!
//! An element's text ([`element_text`]) is its text content with a separator (one space by
//! default) between the texts of its block-level elements, table cells and line breaks, so a
//! row `<tr><td>Weight</td><td>95 g</td></tr>` reads "Weight 95 g", not "Weight95 g".

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use regex::Regex;
use scraper::{ElementRef, Node};
use serde_json::Value;
use spindle_common::project::{Expr, Unit, ValueKind};
use url::Url;

/// A value before the field's transforms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    /// Text (of an element, an attribute, an XPath node, a constant).
    Text(String),
    /// A JSON value (from a JSON body or a page value).
    Json(Value),
}

/// Why a raw value gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The element lacks the attribute to read.
    NoAttribute,
    /// The regex found nothing (or its group did not take part).
    NoRegexMatch,
    /// The value does not convert to the field's type.
    NotConvertible,
    /// The field's `expr` has no finite result for the value (a division by zero).
    NoResult,
}

/// The transforms of one field, compiled.
#[derive(Debug)]
pub(crate) struct Transform {
    pub(crate) regex: Option<Regex>,
    pub(crate) kind: Option<ValueKind>,
    pub(crate) format: Option<String>,
    pub(crate) unit: Option<Unit>,
    pub(crate) expr: Option<Expr>,
}

impl Transform {
    /// Applies regex, conversion (or unit) and expression to one raw value.
    pub(crate) fn apply(&self, raw: Raw, base: &Url) -> Result<Value, Miss> {
        let value = self.convert(raw, base)?;
        let Some(expr) = &self.expr else {
            return Ok(value);
        };
        let x = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_number(s),
            _ => None,
        }
        .ok_or(Miss::NotConvertible)?;
        expr.eval(x).and_then(number_value).ok_or(Miss::NoResult)
    }

    /// What the value is converted to, for log lines: "number", "quantity in g", ...
    pub(crate) fn target(&self) -> String {
        match (&self.unit, &self.expr, self.kind) {
            (Some(unit), _, _) => format!("quantity in {} (a number and a unit)", unit.symbol),
            (None, Some(_), None) => "number".to_string(),
            (None, _, kind) => kind_name(kind).to_string(),
        }
    }

    /// Regex, then `as` or `unit`.
    fn convert(&self, raw: Raw, base: &Url) -> Result<Value, Miss> {
        let raw = match &self.regex {
            None => raw,
            Some(re) => {
                let text = text_of(&raw).ok_or(Miss::NoRegexMatch)?;
                let caps = re.captures(&text).ok_or(Miss::NoRegexMatch)?;
                // A regex with groups means "this part": a group that did not take part in
                // the match is no value, rather than silently the whole match.
                let part = if re.captures_len() > 1 {
                    caps.get(1)
                } else {
                    caps.get(0)
                };
                Raw::Text(part.ok_or(Miss::NoRegexMatch)?.as_str().to_string())
            }
        };
        if let Some(unit) = &self.unit {
            let text = text_of(&raw).ok_or(Miss::NotConvertible)?;
            return unit
                .read(&text)
                .and_then(number_value)
                .ok_or(Miss::NotConvertible);
        }
        match (self.kind, raw) {
            (None, Raw::Text(text)) => Ok(Value::String(text)),
            (None, Raw::Json(value)) => Ok(value),
            (Some(kind), raw) => {
                // A JSON number or bool already has the asked type.
                if let Raw::Json(v) = &raw {
                    match (kind, v) {
                        (ValueKind::Number, Value::Number(_))
                        | (ValueKind::Bool, Value::Bool(_)) => return Ok(v.clone()),
                        (ValueKind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                            return Ok(v.clone());
                        }
                        _ => {}
                    }
                }
                let text = text_of(&raw).ok_or(Miss::NotConvertible)?;
                convert(&text, kind, self.format.as_deref(), base).ok_or(Miss::NotConvertible)
            }
        }
    }
}

/// The text of a raw value: a JSON string as is, a number or bool as written, nothing for
/// null; arrays and objects as JSON text.
pub(crate) fn text_of(raw: &Raw) -> Option<String> {
    match raw {
        Raw::Text(text) => Some(text.clone()),
        Raw::Json(Value::String(s)) => Some(s.clone()),
        Raw::Json(Value::Null) => None,
        Raw::Json(other) => Some(other.to_string()),
    }
}

/// A computed number as JSON: an integer when whole (and exact in an f64), else a float;
/// `None` when not finite.
fn number_value(x: f64) -> Option<Value> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() <= EXACT {
        // Whole and within ±2^53, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::from(x as i64));
    }
    serde_json::Number::from_f64(x).map(Value::Number)
}

/// The element's text with one space between its blocks and cells (see [`element_text`]).
pub(crate) fn normalized_text(element: ElementRef<'_>) -> String {
    element_text(element, " ")
}

/// Elements whose start and end separate text: block-level elements, table parts, line
/// breaks and list items. Inline elements (`span`, `b`, `a`, ...) do not, so
/// `<b>Light</b>house` stays one word.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
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
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// The element's text content: the text of each stretch between block boundaries inside it
/// (see [`BLOCKS`]) with whitespace runs collapsed to one space and trimmed, the non-empty
/// stretches joined by `separator`. With a space, that is `textContent` collapsed, except
/// that texts of two blocks or cells never run together.
pub(crate) fn element_text(element: ElementRef<'_>, separator: &str) -> String {
    let mut out = String::new();
    let mut stretch = String::new();
    let flush = |stretch: &mut String, out: &mut String| {
        let text = collapse_whitespace(stretch);
        if !text.is_empty() {
            if !out.is_empty() {
                out.push_str(separator);
            }
            out.push_str(&text);
        }
        stretch.clear();
    };
    // A walk with an explicit stack (no recursion: pages can nest deeply); a block is pushed
    // again as "closing" under its children, so its end is a boundary too.
    let mut stack = vec![(*element, false)];
    while let Some((node, closing)) = stack.pop() {
        match node.value() {
            Node::Text(text) => stretch.push_str(text),
            Node::Element(e) => {
                let block = node.id() != element.id() && BLOCKS.contains(&e.name());
                if block {
                    flush(&mut stretch, &mut out);
                }
                if !closing {
                    if block {
                        stack.push((node, true));
                    }
                    stack.extend(node.children().rev().map(|child| (child, false)));
                }
            }
            _ => {}
        }
    }
    flush(&mut stretch, &mut out);
    out
}

/// `text` with each whitespace run collapsed to one space, and trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Converts text to the field's type; `None` when it does not convert.
fn convert(text: &str, kind: ValueKind, format: Option<&str>, base: &Url) -> Option<Value> {
    match kind {
        ValueKind::String => Some(Value::String(text.to_string())),
        ValueKind::Number => parse_number(text)
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ValueKind::Integer => parse_integer(text).map(Value::from),
        ValueKind::Bool => parse_bool(text).map(Value::Bool),
        // An empty value would resolve to the page itself, which is never what it meant.
        ValueKind::Url => match text.trim() {
            "" => None,
            href => base.join(href).ok().map(|url| Value::String(url.into())),
        },
        ValueKind::Datetime => parse_datetime(text.trim(), format).map(|dt| {
            Value::String(
                dt.with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            )
        }),
        // The day as written: "2024-03-01T23:30:00-05:00" is the 1st, not the UTC 2nd.
        ValueKind::Date => parse_datetime(text.trim(), format)
            .map(|dt| Value::String(dt.date_naive().format("%Y-%m-%d").to_string())),
    }
}

/// Drops what a number may be written with besides digits: thousands separators (commas)
/// and whitespace (including no-break spaces, common as thousands separators too).
fn number_digits(text: &str) -> String {
    text.chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect()
}

/// A finite number such as "1,234.5" or "-3e2"; `None` otherwise.
fn parse_number(text: &str) -> Option<f64> {
    let digits = number_digits(text);
    // Rust accepts "inf" and "NaN", which no page means as a price.
    if !digits.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A whole number such as "1,234" or "-7"; `None` otherwise (including "1.5").
fn parse_integer(text: &str) -> Option<i64> {
    number_digits(text).parse::<i64>().ok()
}

/// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any case.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A date and time with its offset: with `format`, parsed by it (with an offset, or without
/// one as UTC, or a date alone as midnight UTC); without, RFC 3339, RFC 2822 or ISO-like
/// `YYYY-MM-DD[ HH:MM[:SS]]` (UTC). `as = "datetime"` converts it to UTC, `as = "date"`
/// keeps its day.
fn parse_datetime(text: &str, format: Option<&str>) -> Option<DateTime<FixedOffset>> {
    let utc = |n: NaiveDateTime| n.and_utc().fixed_offset();
    let with = |format: &str| {
        DateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(utc))
            .or_else(|| {
                NaiveDate::parse_from_str(text, format)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(utc)
            })
    };
    if let Some(format) = format {
        return with(format);
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc2822(text))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M",
                "%Y-%m-%d",
            ]
            .into_iter()
            .find_map(with)
        })
}

/// The name of a type, for log lines.
pub(crate) fn kind_name(kind: Option<ValueKind>) -> &'static str {
    match kind {
        None | Some(ValueKind::String) => "string",
        Some(ValueKind::Number) => "number",
        Some(ValueKind::Integer) => "integer",
        Some(ValueKind::Bool) => "bool",
        Some(ValueKind::Url) => "URL",
        Some(ValueKind::Datetime) => "datetime",
        Some(ValueKind::Date) => "date",
    }
}

/// One value with these transforms, for the tests of other modules.
#[cfg(test)]
pub(crate) fn transform(kind: Option<ValueKind>) -> Transform {
    Transform {
        regex: None,
        kind,
        format: None,
        unit: None,
        expr: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: ValueKind, format: Option<&str>) -> Transform {
        Transform {
            format: format.map(str::to_string),
            ..transform(Some(kind))
        }
    }

    fn base() -> Url {
        Url::parse("http://site.example/a/b").expect("url")
    }

    #[test]
    fn datetimes_become_rfc3339_utc() {
        let dt = t(ValueKind::Datetime, None);
        let conv = |text: &str| dt.apply(Raw::Text(text.into()), &base());
        assert_eq!(
            conv("2024-03-01T10:00:00+02:00"),
            Ok("2024-03-01T08:00:00Z".into())
        );
        assert_eq!(
            conv("Fri, 01 Mar 2024 10:00:00 GMT"),
            Ok("2024-03-01T10:00:00Z".into())
        );
        assert_eq!(conv("2024-03-01"), Ok("2024-03-01T00:00:00Z".into()));
        assert_eq!(conv("yesterday"), Err(Miss::NotConvertible));
        let fmt = t(ValueKind::Datetime, Some("%d %B %Y"));
        assert_eq!(
            fmt.apply(Raw::Text("5 January 2023".into()), &base()),
            Ok("2023-01-05T00:00:00Z".into())
        );
        let fmt = t(ValueKind::Datetime, Some("%d/%m/%Y %H:%M"));
        assert_eq!(
            fmt.apply(Raw::Text("05/01/2023 14:30".into()), &base()),
            Ok("2023-01-05T14:30:00Z".into())
        );
    }

    #[test]
    fn dates_are_the_day_as_written() {
        let date = t(ValueKind::Date, None);
        let conv = |text: &str| date.apply(Raw::Text(text.into()), &base());
        assert_eq!(conv("2024-03-01"), Ok("2024-03-01".into()));
        assert_eq!(conv(" 2024-03-01 14:30 "), Ok("2024-03-01".into()));
        assert_eq!(conv("2024-03-01T14:30:05"), Ok("2024-03-01".into()));
        // The input's own day, not the UTC one (that would be the 2nd).
        assert_eq!(conv("2024-03-01T23:30:00-05:00"), Ok("2024-03-01".into()));
        assert_eq!(
            conv("Fri, 01 Mar 2024 23:00:00 -0500"),
            Ok("2024-03-01".into())
        );
        assert_eq!(conv("yesterday"), Err(Miss::NotConvertible));
        assert_eq!(conv("2024-02-30"), Err(Miss::NotConvertible));
        assert_eq!(conv(""), Err(Miss::NotConvertible));
        let born = t(ValueKind::Date, Some("%B %d, %Y"));
        assert_eq!(
            born.apply(Raw::Text("August 15, 1921".into()), &base()),
            Ok("1921-08-15".into())
        );
        assert_eq!(
            born.apply(Raw::Text("15/08/1921".into()), &base()),
            Err(Miss::NotConvertible)
        );
        let stamped = t(ValueKind::Date, Some("%d/%m/%Y %H:%M"));
        assert_eq!(
            stamped.apply(Raw::Text("05/01/2023 14:30".into()), &base()),
            Ok("2023-01-05".into())
        );
        // A JSON string reads the same; a JSON number is no date.
        assert_eq!(
            date.apply(
                Raw::Json(Value::String("2024-03-01T08:00:00Z".into())),
                &base()
            ),
            Ok("2024-03-01".into())
        );
        assert_eq!(
            date.apply(Raw::Json(serde_json::json!(20240301)), &base()),
            Err(Miss::NotConvertible)
        );
        assert_eq!(kind_name(Some(ValueKind::Date)), "date");
    }

    #[test]
    fn bools_and_json_values() {
        let b = t(ValueKind::Bool, None);
        assert_eq!(
            b.apply(Raw::Text("Yes".into()), &base()),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            b.apply(Raw::Text("0".into()), &base()),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            b.apply(Raw::Text("maybe".into()), &base()),
            Err(Miss::NotConvertible)
        );
        assert_eq!(
            b.apply(Raw::Json(Value::Bool(true)), &base()),
            Ok(Value::Bool(true))
        );
        let n = t(ValueKind::Number, None);
        assert_eq!(
            n.apply(Raw::Json(serde_json::json!(2.5)), &base()),
            Ok(serde_json::json!(2.5))
        );
        assert_eq!(
            n.apply(Raw::Json(serde_json::json!("1,5")), &base()),
            Ok(serde_json::json!(15.0))
        );
        let i = t(ValueKind::Integer, None);
        assert_eq!(
            i.apply(Raw::Json(serde_json::json!(7)), &base()),
            Ok(serde_json::json!(7))
        );
        let keep = transform(None);
        let obj = serde_json::json!({ "a": [1] });
        assert_eq!(keep.apply(Raw::Json(obj.clone()), &base()), Ok(obj));
        assert_eq!(keep.apply(Raw::Json(Value::Null), &base()), Ok(Value::Null));
    }
}
