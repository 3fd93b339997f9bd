//! Property tests (fuzzing on stable Rust) of the two parsers of `common` that read text from
//! outside: the project-file parser and URL normalization.
//!
//! Each property runs a fixed number of cases in the normal test run (a few seconds in a
//! debug build); `PROPTEST_CASES=100000 cargo test -p spindle-common --test fuzz` runs longer.
//! A failure found here is shrunk by proptest and kept as a named regression test below.

use proptest::prelude::*;
use spindle_common::Project;
use spindle_common::project::line_column;
use spindle_common::urlnorm::{normalize, resolve};
use url::Url;

/// The number of cases: `PROPTEST_CASES` when set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Failures are turned into the regression tests of this file by hand.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid project using many keys, the seed the mutations below start from.
const VALID: &str = r#"name = "books"
start = ["https://books.example/", "https://books.example/a?utm_source=x"]
rate = 10
burst = 20
host_concurrency = 8
host_delay = "0s"
allow_private = false
every = "1d"
keep_params = ["utm_source"]

[defaults]
age = "10d"
timeout = "30s"
headers = { "User-Agent" = "spindle" }

[handlers.start]
follow = [
  { css = "nav a.category", callback = "list" },
  { xpath = "//link[@rel='next']", attr = "href", callback = "list" },
]

[handlers.list]
follow = [
  { css = "article h3 a", callback = "detail", priority = 1 },
  { css = "li.next a", callback = "list" },
]

[handlers.detail]
item.title = { css = "h1" }
item.price = { css = "p.price", regex = '[0-9.]+', as = "number" }
item.image = { css = "img.cover", attr = "src", as = "url" }
item.tags = { css = ".tag", all = true }
item.upc = { xpath = "//th[text()='UPC']/following-sibling::td" }
item.url = "$url"
"#;

/// Pieces of TOML and of the project format, so random text is often nearly valid.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just(" = ".to_string()),
        Just("\"".to_string()),
        Just("'''".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[[".to_string()),
        Just(",".to_string()),
        Just(".".to_string()),
        Just("#".to_string()),
        Just("\\u{".to_string()),
        Just("é€😀".to_string()),
        Just("\r\n".to_string()),
        Just("\t".to_string()),
        Just("\u{0}".to_string()),
        prop::sample::select(vec![
            "name",
            "start",
            "rate",
            "burst",
            "every",
            "host_delay",
            "handlers",
            "item",
            "follow",
            "css",
            "xpath",
            "regex",
            "attr",
            "as",
            "all",
            "callback",
            "defaults",
            "age",
            "timeout",
            "headers",
            "priority",
            "fetch",
            "script",
            "keep_params",
            "status",
            "on_finished",
            "max_depth",
            "allow_private",
            "1d",
            "-1",
            "1e400",
            "nan",
            "true",
            "\"[\"",
            "\"(\"",
            "\"//[\"",
            "\"$save.\"",
            "\"$url\"",
            "\"*/5 * * * *\"",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

/// Random text made of tokens.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..60).prop_map(|t| t.concat())
}

/// The valid project with one span replaced by tokens (positions are taken modulo the
/// length and moved back to a character boundary).
fn mutated() -> impl Strategy<Value = String> {
    (any::<usize>(), 0usize..40, token_soup()).prop_map(|(at, len, insert)| {
        let mut start = at % (VALID.len() + 1);
        while !VALID.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + len).min(VALID.len());
        while !VALID.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}{}{}", &VALID[..start], insert, &VALID[end..])
    })
}

/// Parses `text`; an error must point at a line and column inside the text.
fn check_parse(text: &str) -> Result<(), TestCaseError> {
    if let Err(err) = Project::parse(text) {
        let lines: Vec<&str> = text.split('\n').collect();
        prop_assert!(
            err.line >= 1 && err.line <= lines.len(),
            "line {} outside the text's {} lines: {err}",
            err.line,
            lines.len()
        );
        let width = lines[err.line - 1].chars().count();
        prop_assert!(
            err.column >= 1 && err.column <= width + 1,
            "column {} outside line {} of {width} characters: {err}",
            err.column,
            err.line
        );
        prop_assert!(
            !err.message.trim().is_empty(),
            "an error says what is wrong"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_project_parser_never_panics_on_arbitrary_text(text in ".{0,400}") {
        check_parse(&text)?;
    }

    #[test]
    fn the_project_parser_never_panics_on_token_soup(text in token_soup()) {
        check_parse(&text)?;
    }

    #[test]
    fn the_project_parser_never_panics_on_a_mutated_project(text in mutated()) {
        check_parse(&text)?;
    }

    #[test]
    fn line_column_stays_inside_the_text(text in ".{0,200}", offset in 0usize..400) {
        let (line, column) = line_column(&text, offset);
        let lines: Vec<&str> = text.split('\n').collect();
        prop_assert!(line >= 1 && line <= lines.len());
        prop_assert!(column >= 1 && column <= lines[line - 1].chars().count() + 1);
    }
}

/// Pieces of URLs, hostile ones included.
fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "http://", "https://", "HTTP://", "hTtPs://", "ftp://", "foo://", "http:", "//", "",
    ]);
    let host = prop::sample::select(vec![
        "example.com",
        "EXAMPLE.com",
        "xn--bcher-kva.example",
        "bücher.example",
        "127.0.0.1",
        "[::1]",
        "[::ffff:10.0.0.1]",
        "0x7f.1",
        "a..b",
        "user:pw@host.example",
        "host.example:80",
        "host.example:443",
        "host.example:65536",
        "%41.example",
        "",
    ]);
    let segment = prop_oneof![
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just("%7e".to_string()),
        Just("%".to_string()),
        Just("%zz".to_string()),
        Just("%00".to_string()),
        Just(";jsessionid=ABC".to_string()),
        Just("é".to_string()),
        "[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    let param = (
        prop::sample::select(vec![
            "utm_source",
            "UTM_Medium",
            "utm%5Fcampaign",
            "gclid",
            "fbclid",
            "id",
            "q",
            "",
            "a%26b",
            "%",
            "=",
            "sid",
        ]),
        "[a-zA-Z0-9%=&+ é]{0,5}",
    )
        .prop_map(|(k, v)| format!("{k}={v}"));
    (
        scheme,
        host,
        prop::collection::vec(segment, 0..6),
        prop::option::of(prop::collection::vec(param, 0..5)),
        prop::option::of("[ -~]{0,6}"),
    )
        .prop_map(|(scheme, host, path, query, fragment)| {
            let mut s = format!("{scheme}{host}/{}", path.join("/"));
            if let Some(q) = query {
                s.push('?');
                s.push_str(&q.join("&"));
            }
            if let Some(f) = fragment {
                s.push('#');
                s.push_str(&f);
            }
            s
        })
}

/// Checks that normalizing `url` is idempotent and gives a URL that parses back to itself.
fn check_normalize(url: &Url, keep: &[String]) -> Result<(), TestCaseError> {
    let once = normalize(url, keep);
    let twice = normalize(&once, keep);
    prop_assert_eq!(once.as_str(), twice.as_str(), "not idempotent for {}", url);
    let reparsed = Url::parse(once.as_str());
    prop_assert!(reparsed.is_ok(), "{} does not parse: {:?}", once, reparsed);
    if let Ok(reparsed) = reparsed {
        prop_assert_eq!(reparsed.as_str(), once.as_str());
    }
    prop_assert!(once.fragment().is_none());
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn normalization_is_idempotent_on_hostile_urls(text in url_text(), keep_utm in any::<bool>()) {
        let keep = if keep_utm { vec!["utm_source".to_string()] } else { Vec::new() };
        if let Ok(url) = Url::parse(&text) {
            check_normalize(&url, &keep)?;
        }
    }

    #[test]
    fn normalization_is_idempotent_on_arbitrary_text(text in "http://[ -~é€]{0,60}") {
        if let Ok(url) = Url::parse(&text) {
            check_normalize(&url, &[])?;
        }
    }

    #[test]
    fn resolving_any_href_never_panics(href in prop_oneof![url_text(), ".{0,60}"]) {
        let base = Url::parse("https://shop.example/a/b/?page=2").expect("base");
        if let Some(url) = resolve(&base, &href, &[]) {
            prop_assert!(matches!(url.scheme(), "http" | "https"));
            check_normalize(&url, &[])?;
        }
    }
}

/// Regressions found by the properties above, kept as plain tests.
mod regressions {
    use super::*;

    #[test]
    fn an_error_on_the_last_line_without_a_newline_is_inside_the_text() {
        let text = "name = \"p\"\nstart = [";
        let err = Project::parse(text).expect_err("unclosed array");
        assert_eq!(err.line, 2);
        assert!(err.column <= "start = [".chars().count() + 1, "{err}");
    }
}
