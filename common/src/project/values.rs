//! Scalar values of a project file, checked while the file is read.
//!
//! Each newtype here deserializes one kind of value (a duration, a byte size, a CSS selector,
//! a regex, ...) and refuses a bad one with a message that says what was expected. Because the
//! check runs inside deserialization, the TOML deserializer attaches the span of the offending
//! value to the error, which is how [`super::ProjectError`] gets its line and column without
//! every check having to carry spans around.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration: a string with units (`"30s"`, `"10m"`, `"1d"`, `"1h 30m"`) or an integer
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration such as "30s", "10m" or "1d", or a number of seconds"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v.trim()).map(Dur).map_err(|err| {
                    E::custom(format!(
                        r#"invalid duration "{v}" ({err}); expected a number with a unit such as "30s", "10m" or "1d""#
                    ))
                })
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|secs| Dur(Duration::from_secs(secs)))
                    .map_err(|_| {
                        E::custom(format!(
                            "expected a duration that is not negative, found {v}"
                        ))
                    })
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number (integer or float), refused with a message that says "a number" rather than
/// serde's "f64".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

/// A count (`u32`), refused with a message that gives the range rather than serde's "u32".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Count(pub u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number from 0 to {}", u32::MAX)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u32::try_from(v)
                    .map(Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                u32::try_from(v)
                    .map(Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration that must be longer than zero (timeouts, periods).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PositiveDur(pub Duration);

impl<'de> Deserialize<'de> for PositiveDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Dur(dur) = Dur::deserialize(d)?;
        if dur.is_zero() {
            return Err(de::Error::custom(
                "expected a duration longer than zero, such as \"30s\"",
            ));
        }
        Ok(PositiveDur(dur))
    }
}

/// A size in bytes: an integer, or a string with a unit (`"10MiB"`, `"512 kB"`, `"1GB"`).
/// Units: B; kB, MB, GB (powers of 1000); KiB, MiB, GiB (powers of 1024); case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a size such as "10MiB" or "500kB", or a number of bytes"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).ok_or_else(|| {
                    E::custom(format!(
                        r#"invalid size "{v}"; expected a positive number of bytes with an optional unit (B, kB, KiB, MB, MiB, GB, GiB), such as "10MiB""#
                    ))
                })
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                match u64::try_from(v) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!(
                        "expected a positive size in bytes, found {v}"
                    ))),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                if v == 0 {
                    return Err(E::custom("expected a positive size in bytes, found 0"));
                }
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `"10MiB"`-style sizes; `None` when malformed, zero, or too large for a `u64`.
fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * multiplier).round();
    // `u64::MAX as f64` rounds up to 2^64, so compare strictly below it.
    if bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64 {
        Some(bytes as u64)
    } else {
        None
    }
}

/// A CSS selector that compiles (it is compiled again, once, by the processor).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CssSelector(pub String);

impl<'de> Deserialize<'de> for CssSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let css = String::deserialize(d)?;
        check_selector(&css).map_err(de::Error::custom)?;
        Ok(CssSelector(css))
    }
}

/// Checks that `css` is a selector scraper can use; the error says why not.
pub(super) fn check_selector(css: &str) -> Result<(), String> {
    if css.trim().is_empty() {
        return Err("expected a CSS selector, found an empty string".to_string());
    }
    scraper::Selector::parse(css).map(drop).map_err(|err| {
        format!(
            "invalid CSS selector \"{css}\": {}",
            describe_selector_error(&err)
        )
    })
}

/// A readable reason for a selector error. scraper's own text for the less common kinds is a
/// Rust debug dump ("Please report this to the developer"), so those are spelled out from the
/// kind's name instead: `DanglingCombinator` becomes "dangling combinator".
fn describe_selector_error(err: &scraper::error::SelectorErrorKind) -> String {
    use scraper::error::SelectorErrorKind as K;
    match err {
        K::UnexpectedToken => "unexpected token".to_string(),
        K::EndOfLine => "unexpected end of selector".to_string(),
        K::UnexpectedSelectorParseError(kind) => {
            let name = format!("{kind:?}");
            let mut words = String::with_capacity(name.len() + 8);
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    words.push(' ');
                }
                words.push(c.to_ascii_lowercase());
            }
            words
        }
        other => other.to_string().to_lowercase(),
    }
}

/// A regular expression that compiles.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pattern(pub String);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        if let Err(err) = regex::Regex::new(&pattern) {
            return Err(de::Error::custom(format!(
                "invalid regex \"{pattern}\": {}",
                describe_regex_error(&err)
            )));
        }
        Ok(Pattern(pattern))
    }
}

/// The one-line reason of a regex error; the crate's syntax errors span several lines with an
/// ASCII-art caret, which does not fit a `line:column: message` report.
fn describe_regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map_or_else(|| text.trim().to_string(), str::to_string)
}

/// A project name: 1 to 64 characters of `A-Z a-z 0-9 _ -`, because it becomes a NATS subject
/// token and a path segment.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProjectName(pub String);

/// Longest project name accepted.
pub(super) const MAX_NAME_LEN: usize = 64;

impl<'de> Deserialize<'de> for ProjectName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if name.is_empty() || name.len() > MAX_NAME_LEN || !valid_chars {
            return Err(de::Error::custom(format!(
                "invalid project name \"{name}\"; expected 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '_' and '-'"
            )));
        }
        Ok(ProjectName(name))
    }
}

/// A string that must not be empty (handler names, attribute names, field names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct NonEmpty(pub String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::custom("expected a non-empty string"));
        }
        Ok(NonEmpty(s))
    }
}

/// An HTTP header name (an RFC 9110 token), so a typo fails at load and not on every request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HeaderName(pub String);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(de::Error::custom(format!(
                "invalid header name \"{name}\"; expected letters, digits and !#$%&'*+-.^_`|~ only"
            )));
        }
        Ok(HeaderName(name))
    }
}

/// An HTTP header value: no line breaks or other control characters but tab.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HeaderValue(pub String);

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(de::Error::custom(
                "invalid header value; expected text without line breaks or control characters",
            ));
        }
        Ok(HeaderValue(value))
    }
}

/// `allow_private`: `true` (every non-public address), `false`, or a list of hosts and CIDR
/// ranges (`["127.0.0.1/32", "intranet.local"]`), each entry checked where it is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum AllowPrivate {
    /// `false` or absent.
    #[default]
    Nothing,
    /// `true`.
    All,
    /// The entries of a list as written, each with its span: the build step checks them
    /// with [`crate::netrange::parse_entry`] (an error raised while the list is read would
    /// carry the list's span, not the entry's).
    Only(Vec<serde_spanned::Spanned<String>>),
}

impl<'de> Deserialize<'de> for AllowPrivate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AllowPrivate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a boolean (true: every private address) or a list of hosts and CIDR ranges such as ["127.0.0.1/32"]"#,
                )
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AllowPrivate, E> {
                Ok(if v {
                    AllowPrivate::All
                } else {
                    AllowPrivate::Nothing
                })
            }

            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AllowPrivate, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = seq.next_element()? {
                    entries.push(entry);
                }
                Ok(AllowPrivate::Only(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deserializes `value` as the right-hand side of `v = <value>`.
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
    fn durations_take_units_or_seconds() {
        assert_eq!(
            read::<Dur>(r#""10d""#),
            Ok(Dur(Duration::from_secs(864_000)))
        );
        assert_eq!(
            read::<Dur>(r#""1h 30m""#),
            Ok(Dur(Duration::from_secs(5400)))
        );
        assert_eq!(read::<Dur>(r#""0s""#), Ok(Dur(Duration::ZERO)));
        assert_eq!(read::<Dur>("90"), Ok(Dur(Duration::from_secs(90))));
        let err = read::<Dur>(r#""ten days""#).expect_err("not a duration");
        assert!(err.contains("invalid duration \"ten days\""), "{err}");
        assert!(err.contains("\"30s\""), "{err}");
        let err = read::<Dur>("-5").expect_err("negative");
        assert!(err.contains("not negative"), "{err}");
        let err = read::<Dur>("true").expect_err("wrong type");
        assert!(err.contains("a duration such as"), "{err}");
    }

    #[test]
    fn numbers_and_counts_say_what_they_expect() {
        assert_eq!(read::<Number>("3"), Ok(Number(3.0)));
        assert_eq!(read::<Number>("2.5"), Ok(Number(2.5)));
        let err = read::<Number>(r#""fast""#).expect_err("string");
        assert!(err.ends_with("expected a number"), "{err}");
        assert_eq!(read::<Count>("7"), Ok(Count(7)));
        for bad in ["-1", "4294967296", "1.5", r#""8""#] {
            let err = read::<Count>(bad).expect_err(bad);
            assert!(
                err.contains("expected a whole number from 0 to 4294967295"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn positive_durations_refuse_zero() {
        let err = read::<PositiveDur>(r#""0s""#).expect_err("zero");
        assert!(err.contains("longer than zero"), "{err}");
        assert_eq!(
            read::<PositiveDur>(r#""1s""#),
            Ok(PositiveDur(Duration::from_secs(1)))
        );
    }

    #[test]
    fn byte_sizes_take_units_or_bytes() {
        assert_eq!(
            read::<ByteSize>(r#""10MiB""#),
            Ok(ByteSize(10 * 1024 * 1024))
        );
        assert_eq!(read::<ByteSize>(r#""500 kB""#), Ok(ByteSize(500_000)));
        assert_eq!(read::<ByteSize>(r#""1.5kib""#), Ok(ByteSize(1536)));
        assert_eq!(read::<ByteSize>(r#""2GB""#), Ok(ByteSize(2_000_000_000)));
        assert_eq!(read::<ByteSize>("4096"), Ok(ByteSize(4096)));
        for bad in [
            r#""10 parsecs""#,
            r#""MiB""#,
            r#""0B""#,
            "0",
            "-1",
            r#""1e30GB""#,
        ] {
            let err = read::<ByteSize>(bad).expect_err(bad);
            assert!(err.contains("size"), "{bad}: {err}");
        }
    }

    #[test]
    fn selectors_must_compile() {
        assert!(read::<CssSelector>(r#""nav a.category""#).is_ok());
        let err = read::<CssSelector>(r#""a[""#).expect_err("unclosed");
        assert!(err.starts_with("invalid CSS selector \"a[\": "), "{err}");
        let err = read::<CssSelector>(r#""a >""#).expect_err("dangling");
        assert!(err.contains("dangling combinator"), "{err}");
        assert!(!err.contains("report this"), "{err}");
        let err = read::<CssSelector>(r#""  ""#).expect_err("empty");
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn regexes_must_compile_and_report_on_one_line() {
        assert!(read::<Pattern>(r#"'[0-9.]+'"#).is_ok());
        let err = read::<Pattern>(r#"'[0-9'"#).expect_err("unclosed class");
        assert_eq!(err, "invalid regex \"[0-9\": unclosed character class");
    }

    #[test]
    fn project_names_are_subject_tokens() {
        assert_eq!(
            read::<ProjectName>(r#""books_2-x""#),
            Ok(ProjectName("books_2-x".into()))
        );
        let long = format!("\"{}\"", "a".repeat(65));
        for bad in [
            r#""""#,
            r#""two words""#,
            r#""a.b""#,
            r#""a>b""#,
            long.as_str(),
        ] {
            let err = read::<ProjectName>(bad).expect_err(bad);
            assert!(err.contains("invalid project name"), "{bad}: {err}");
        }
        let max = format!("\"{}\"", "a".repeat(64));
        assert!(read::<ProjectName>(&max).is_ok());
    }

    #[test]
    fn headers_are_checked() {
        assert!(read::<HeaderName>(r#""User-Agent""#).is_ok());
        let err = read::<HeaderName>(r#""User Agent""#).expect_err("space");
        assert!(err.contains("invalid header name"), "{err}");
        assert!(read::<HeaderValue>(r#""spindle/1.0 (+http://x)""#).is_ok());
        let err = read::<HeaderValue>(r#""a\r\nX-Evil: 1""#).expect_err("line break");
        assert!(err.contains("invalid header value"), "{err}");
    }

    #[test]
    fn non_empty_strings_refuse_blank() {
        assert!(read::<NonEmpty>(r#""x""#).is_ok());
        assert!(read::<NonEmpty>(r#"" ""#).is_err());
    }
}
