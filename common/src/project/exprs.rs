//! Expression-like values of a project file, checked while the file is read: JSONPath and
//! XPath expressions, datetime formats, HTTP methods, proxy URLs and the `every` schedule.
//!
//! Like [`super::values`], each newtype refuses a bad value inside deserialization, so the TOML
//! deserializer attaches the value's span to the error and `spindle check` can point at it.
//! The checks use the same crates the processor runs with (serde_json_path, sxd-xpath,
//! chrono, croner), so an expression accepted here is one the processor can evaluate.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer};

/// A JSONPath expression (RFC 9535) that parses, such as `$.results[*].name`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JsonPathExpr(pub String);

impl<'de> Deserialize<'de> for JsonPathExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = String::deserialize(d)?;
        check_json_path(&path).map_err(de::Error::custom)?;
        Ok(JsonPathExpr(path))
    }
}

/// Checks that `path` is a JSONPath expression; the error says why not.
pub(super) fn check_json_path(path: &str) -> Result<(), String> {
    serde_json_path::JsonPath::parse(path)
        .map(drop)
        .map_err(|err| {
            let reason = err.to_string();
            let reason = reason.lines().next().unwrap_or_default().trim().to_string();
            format!(
                "invalid JSONPath \"{path}\": {reason}; expected an expression such as \"$.items[*].name\""
            )
        })
}

/// An XPath 1.0 expression that parses, such as `//table[@id='specs']//td[2]`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct XPathExpr(pub String);

impl<'de> Deserialize<'de> for XPathExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let xpath = String::deserialize(d)?;
        check_xpath(&xpath).map_err(de::Error::custom)?;
        Ok(XPathExpr(xpath))
    }
}

/// Checks that `xpath` is an XPath 1.0 expression; the error says why not.
pub(super) fn check_xpath(xpath: &str) -> Result<(), String> {
    if xpath.trim().is_empty() {
        return Err("expected an XPath expression, found an empty string".to_string());
    }
    match sxd_xpath::Factory::new().build(xpath) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("invalid XPath \"{xpath}\": it is empty")),
        Err(err) => Err(format!("invalid XPath \"{xpath}\": {err}")),
    }
}

/// A chrono `strftime`-style format for `as = "datetime"` or `as = "date"`, such as `"%d %B %Y"`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DatetimeFormat(pub String);

impl<'de> Deserialize<'de> for DatetimeFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let format = String::deserialize(d)?;
        let bad = chrono::format::StrftimeItems::new(&format)
            .any(|item| matches!(item, chrono::format::Item::Error));
        if format.is_empty() || bad {
            return Err(de::Error::custom(format!(
                "invalid datetime format \"{format}\"; expected strftime directives such as \"%Y-%m-%d %H:%M\""
            )));
        }
        Ok(DatetimeFormat(format))
    }
}

/// An HTTP method: a token, upper-cased once read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Method(pub String);

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let method = String::deserialize(d)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(de::Error::custom(format!(
                "invalid HTTP method \"{method}\"; expected letters only, such as \"POST\""
            )));
        }
        Ok(Method(method.to_ascii_uppercase()))
    }
}

/// A proxy URL: `http://`, `https://`, `socks5://` or `socks5h://`, credentials allowed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProxyUrl(pub String);

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let ok = url::Url::parse(&text).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h")
                && url.host_str().is_some()
        });
        if !ok {
            return Err(de::Error::custom(format!(
                "invalid proxy \"{text}\"; expected a URL such as \"http://user:pass@proxy:3128\" or \"socks5://proxy:1080\""
            )));
        }
        Ok(ProxyUrl(text))
    }
}

/// When to submit the start URLs again: a fixed interval or a cron expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Every {
    /// Every this long after the last start.
    Interval(Duration),
    /// At the times a cron expression matches (UTC).
    Cron(String),
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Every;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"an interval such as "1d" or "6h", or a cron expression such as "0 3 * * *""#,
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Every, E> {
                if let Ok(dur) = humantime::parse_duration(v.trim()) {
                    if dur.is_zero() {
                        return Err(E::custom(
                            "expected an interval longer than zero, such as \"1d\"",
                        ));
                    }
                    return Ok(Every::Interval(dur));
                }
                match parse_cron(v) {
                    Ok(_) => Ok(Every::Cron(v.trim().to_string())),
                    Err(reason) => Err(E::custom(format!(
                        "invalid schedule \"{v}\": not an interval, and not a cron expression ({reason}); expected an interval such as \"1d\" or a cron expression such as \"0 3 * * *\""
                    ))),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Every, E> {
                match u64::try_from(v) {
                    Ok(secs) if secs > 0 => Ok(Every::Interval(Duration::from_secs(secs))),
                    _ => Err(E::custom(format!(
                        "expected an interval longer than zero, found {v}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a cron expression: five fields (minute hour day month weekday), an optional
/// leading seconds field, or a nickname such as `@daily`.
pub(crate) fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    // The default parser takes an optional seconds field and the `@daily`-style nicknames.
    croner::parser::CronParser::new()
        .parse(expr.trim())
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, String> {
        #[derive(serde::Deserialize)]
        struct Doc<T> {
            v: T,
        }
        toml::from_str::<Doc<T>>(&format!("v = {value}"))
            .map(|doc| doc.v)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn json_paths_must_parse() {
        assert!(read::<JsonPathExpr>(r#""$.items[*].name""#).is_ok());
        let err = read::<JsonPathExpr>(r#""$.items[""#).expect_err("unclosed");
        assert!(err.starts_with("invalid JSONPath \"$.items[\""), "{err}");
        let err = read::<JsonPathExpr>(r#""items""#).expect_err("no root");
        assert!(err.contains("invalid JSONPath"), "{err}");
    }

    #[test]
    fn xpaths_must_parse() {
        assert!(read::<XPathExpr>(r#""//table[@id='x']//td[2]/text()""#).is_ok());
        let err = read::<XPathExpr>(r#""//td[""#).expect_err("unclosed");
        assert!(err.starts_with("invalid XPath \"//td[\""), "{err}");
        assert!(read::<XPathExpr>(r#""""#).is_err());
    }

    #[test]
    fn datetime_formats_must_parse() {
        assert!(read::<DatetimeFormat>(r#""%d %B %Y""#).is_ok());
        let err = read::<DatetimeFormat>(r#""%Q""#).expect_err("bad directive");
        assert!(err.contains("invalid datetime format"), "{err}");
    }

    #[test]
    fn methods_and_proxies_are_checked() {
        assert_eq!(read::<Method>(r#""post""#), Ok(Method("POST".into())));
        assert!(read::<Method>(r#""PO ST""#).is_err());
        assert!(read::<ProxyUrl>(r#""socks5://u:p@proxy:1080""#).is_ok());
        let err = read::<ProxyUrl>(r#""ftp://proxy""#).expect_err("scheme");
        assert!(err.contains("invalid proxy"), "{err}");
    }

    #[test]
    fn every_is_an_interval_or_a_cron_expression() {
        assert_eq!(
            read::<Every>(r#""1d""#),
            Ok(Every::Interval(Duration::from_secs(86_400)))
        );
        assert_eq!(
            read::<Every>("60"),
            Ok(Every::Interval(Duration::from_secs(60)))
        );
        assert_eq!(
            read::<Every>(r#""0 3 * * *""#),
            Ok(Every::Cron("0 3 * * *".into()))
        );
        assert_eq!(
            read::<Every>(r#""@daily""#),
            Ok(Every::Cron("@daily".into()))
        );
        let err = read::<Every>(r#""0 25 * * *""#).expect_err("hour 25");
        assert!(err.contains("invalid schedule"), "{err}");
        let err = read::<Every>(r#""0s""#).expect_err("zero");
        assert!(err.contains("longer than zero"), "{err}");
    }
}
