//! Tests of [`super::parse`]: defaults, positions and messages of refused files.

use std::time::Duration;

use super::*;
use crate::project::LinkSource;

/// Parses `text`, expecting an error; returns (line, column, message).
fn refused(text: &str) -> (usize, usize, String) {
    let e = Project::parse(text).expect_err("the file should be refused");
    (e.line, e.column, e.message)
}

#[test]
fn a_minimal_file_gets_every_default() {
    let p = Project::parse("name = \"x\"").expect("valid");
    assert_eq!(p.rate, 5.0);
    assert_eq!(p.burst, 5.0);
    assert_eq!(p.host_concurrency, 8);
    assert_eq!(p.host_delay, Duration::ZERO);
    assert!(!p.allow_private);
    assert_eq!((p.every, p.status, p.group.as_deref()), (None, None, None));
    assert_eq!(p.defaults, Defaults::default());
    assert_eq!(p.defaults.timeout, Duration::from_secs(30));
    assert_eq!(p.defaults.retries, 3);
    assert_eq!(p.defaults.max_body, 10 * 1024 * 1024);
    assert_eq!(p.defaults.max_redirects, 10);
    assert!(p.start.is_empty() && p.handlers.is_empty() && p.keep_params.is_empty());
}

#[test]
fn burst_defaults_to_the_rate_but_at_least_one() {
    let p = Project::parse("name = \"x\"\nrate = 0.5").expect("valid");
    assert_eq!(p.burst, 1.0);
    let p = Project::parse("name = \"x\"\nrate = 12").expect("valid");
    assert_eq!(p.burst, 12.0);
}

#[test]
fn extension_keys_are_read() {
    let p = Project::parse(
        r#"
name = "x"
status = "running"
group = "g1"
keep_params = ["utm_source"]
start = ["HTTP://Example.COM/a/../b?utm_source=1&gclid=2#f", "http://example.com/b?utm_source=1"]
[defaults]
retries = 5
max_body = "1MiB"
max_redirects = 2
[handlers.start]
follow = [{ css = "img", attr = "data-src", callback = "start" }]
"#,
    )
    .expect("valid");
    assert_eq!(p.status, Some(ProjectStatus::Running));
    assert_eq!(p.group.as_deref(), Some("g1"));
    assert_eq!(p.keep_params, vec!["utm_source"]);
    // Normalized with the kept parameter, and the duplicate folded.
    assert_eq!(p.start, vec!["http://example.com/b?utm_source=1"]);
    assert_eq!(p.defaults.retries, 5);
    assert_eq!(p.defaults.max_body, 1024 * 1024);
    assert_eq!(p.defaults.max_redirects, 2);
    assert_eq!(
        p.handlers["start"].follow[0].links,
        LinkSource::Css {
            css: "img".into(),
            attr: "data-src".into()
        }
    );
}

#[test]
fn an_unknown_status_is_refused_at_the_value() {
    let (line, column, message) = refused("name = \"x\"\nstatus = \"paused\"\n");
    assert_eq!((line, column), (2, 10));
    assert_eq!(
        message,
        "invalid status \"paused\" (PAUSED is set by the scheduler after failures in a row and \
         ends by itself); expected one of TODO, STOP, CHECKING, DEBUG, RUNNING"
    );
    let (_, _, message) = refused("name = \"x\"\nstatus = 3\n");
    assert!(message.contains("a status: one of TODO"), "{message}");
}

#[test]
fn retry_delays_are_read_and_an_empty_list_is_refused() {
    let p = Project::parse("name = \"x\"\n[defaults]\nretry_delays = [\"10s\", \"5m\"]\n")
        .expect("valid");
    assert_eq!(
        p.defaults.retry_delays,
        Some(vec![Duration::from_secs(10), Duration::from_secs(300)])
    );
    assert_eq!(
        Project::parse("name = \"x\"")
            .expect("valid")
            .defaults
            .retry_delays,
        None
    );
    let (line, column, message) = refused("name = \"x\"\n[defaults]\nretry_delays = []\n");
    assert_eq!((line, column), (3, 16));
    assert!(message.contains("at least one delay"), "{message}");
    let (line, _, message) = refused("name = \"x\"\n[defaults]\nretry_delays = [\"0s\"]\n");
    assert_eq!(line, 3);
    assert!(message.contains("expected"), "{message}");
}

#[test]
fn syntax_errors_have_a_position() {
    let (line, column, message) = refused("name = \"x\"\nrate = = 3\n");
    assert_eq!((line, column), (2, 8));
    assert!(message.contains("expected"), "{message}");
    let (line, _, message) = refused("name = \"x\"\n[handlers.start\n");
    assert_eq!(line, 2);
    assert!(message.contains("expected"), "{message}");
}

#[test]
fn unknown_keys_are_refused_at_the_key() {
    let (line, column, message) = refused("name = \"x\"\nrates = 3\n");
    assert_eq!((line, column), (2, 1));
    assert!(message.contains("unknown field `rates`"), "{message}");
    assert!(message.contains("`rate`"), "{message}");

    let (line, column, message) = refused("name = \"x\"\n[defaults]\n  agee = \"1d\"\n");
    assert_eq!((line, column), (3, 3));
    assert!(message.contains("unknown field `agee`"), "{message}");

    let (line, column, message) = refused("name = \"x\"\n[handlers.a]\nfolow = []\n");
    assert_eq!((line, column), (3, 1));
    assert!(message.contains("unknown field `folow`"), "{message}");

    let (line, column, message) = refused(
        "name = \"x\"\n[handlers.a]\nfollow = [{ css = \"a\", callback = \"a\", prio = 1 }]\n",
    );
    assert_eq!((line, column), (3, 40));
    assert!(message.contains("unknown field `prio`"), "{message}");
}

#[test]
fn wrong_types_are_refused_at_the_value() {
    let (line, column, message) = refused("name = \"x\"\nrate = \"fast\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(message.contains("invalid type"), "{message}");
    assert!(message.contains("expected a number"), "{message}");

    let (line, column, message) = refused("name = \"x\"\nhost_concurrency = -1\n");
    assert_eq!((line, column), (2, 20));
    assert!(
        message.contains("expected a whole number from 0"),
        "{message}"
    );

    let (line, column, message) = refused("name = \"x\"\nallow_private = \"yes\"\n");
    assert_eq!((line, column), (2, 17));
    assert!(message.contains("a boolean"), "{message}");

    let (_, _, message) = refused("rate = 3\n");
    assert!(message.contains("missing field `name`"), "{message}");
}

#[test]
fn allow_private_takes_a_boolean_or_a_list_of_hosts_and_ranges() {
    let p = Project::parse("name = \"x\"\nallow_private = true\n").expect("valid");
    assert!(p.allow_private && p.allow_private_ranges.is_empty());
    assert!(p.fetch_defaults().private_access().is_all());
    let p = Project::parse(
        "name = \"x\"\nallow_private = [\"127.0.0.1/32\", \"10.9.8.7/8\", \"Intranet.Local\"]\n",
    )
    .expect("valid");
    assert!(!p.allow_private);
    assert_eq!(
        p.allow_private_ranges,
        ["127.0.0.1/32", "10.0.0.0/8", "intranet.local"]
    );
    let access = p
        .fetch_for(&crate::FetchOptions::default())
        .private_access();
    assert!(access.allows(None, "127.0.0.1".parse().expect("ip")));
    assert!(!access.allows(None, "169.254.169.254".parse().expect("ip")));

    let (line, column, message) =
        refused("name = \"x\"\nallow_private = [\"127.0.0.1/32\", \"10.0.0.0/40\"]\n");
    assert_eq!((line, column), (2, 34));
    assert!(
        message.contains("\"10.0.0.0/40\": expected a prefix length from 0 to 32"),
        "{message}"
    );
    let (line, column, message) = refused("name = \"x\"\nallow_private = [1]\n");
    assert_eq!((line, column), (2, 18));
    assert!(message.contains("expected a string"), "{message}");
}

#[test]
fn bad_durations_are_refused_at_the_value() {
    let (line, column, message) = refused("name = \"x\"\nevery = \"daily\"\n");
    assert_eq!((line, column), (2, 9));
    assert!(message.contains("invalid schedule \"daily\""), "{message}");

    let (line, column, message) = refused("name = \"x\"\n[defaults]\ntimeout = \"0s\"\n");
    assert_eq!((line, column), (3, 11));
    assert!(message.contains("longer than zero"), "{message}");
}

#[test]
fn invalid_selectors_and_regexes_are_refused_at_the_value() {
    let text = "name = \"x\"\n[handlers.a]\nfollow = [{ css = \"a[\", callback = \"a\" }]\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (3, 19));
    assert!(message.contains("invalid CSS selector \"a[\""), "{message}");

    let text = "name = \"x\"\n[handlers.a]\nitem.p = { css = \"p\", regex = '(\\d+' }\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (3, 31));
    assert!(message.contains("invalid regex"), "{message}");
    assert!(message.contains("unclosed group"), "{message}");
}

#[test]
fn a_callback_must_name_a_handler() {
    let text = "name = \"x\"\n[handlers.start]\nfollow = [{ css = \"a\", callback = \"detial\" }]\n[handlers.detail]\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (3, 35));
    assert!(
        message.contains("callback \"detial\" names no handler"),
        "{message}"
    );
    assert!(message.contains("\"start\", \"detail\""), "{message}");
}

#[test]
fn start_urls_need_a_start_handler() {
    let text = "name = \"x\"\nstart = [\"http://a.example/\"]\n[handlers.list]\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (2, 9));
    assert!(message.contains("no [handlers.start]"), "{message}");
    // An empty list needs no handler.
    assert!(Project::parse("name = \"x\"\nstart = []\n").is_ok());
}

#[test]
fn start_urls_must_be_absolute_http() {
    let text = "name = \"x\"\nstart = [\"http://a.example/\", \"/relative\"]\n[handlers.start]\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (2, 31));
    assert!(
        message.contains("invalid start URL \"/relative\""),
        "{message}"
    );
    assert!(message.contains("absolute http(s) URL"), "{message}");

    let text = "name = \"x\"\nstart = [\"ftp://a.example/\"]\n[handlers.start]\n";
    let (_, column, message) = refused(text);
    assert_eq!(column, 10);
    assert!(message.contains("invalid start URL"), "{message}");
}

#[test]
fn sitemaps_are_normalized_and_deduplicated() {
    let text = r#"
name = "x"
keep_params = ["utm_source"]
sitemaps = ["HTTPS://Shop.example/sitemap.xml#top", "https://shop.example/sitemap.xml",
            "https://shop.example/news.xml?utm_source=a&utm_medium=b"]
[handlers.start]
"#;
    let p = Project::parse(text).expect("valid");
    assert_eq!(
        p.sitemaps,
        vec![
            "https://shop.example/sitemap.xml",
            "https://shop.example/news.xml?utm_source=a",
        ]
    );
    assert!(p.start.is_empty());
    assert!(
        Project::parse("name = \"x\"")
            .expect("valid")
            .sitemaps
            .is_empty()
    );
}

#[test]
fn sitemaps_need_a_start_handler_and_absolute_http_urls() {
    let text = "name = \"x\"\nsitemaps = [\"http://a.example/s.xml\"]\n[handlers.list]\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (2, 12));
    assert!(
        message.contains("sitemaps list are fetched with handler \"start\"")
            && message.contains("no [handlers.start]"),
        "{message}"
    );
    assert!(Project::parse("name = \"x\"\nsitemaps = []\n").is_ok());

    for (value, column) in [
        ("\"/sitemap.xml\"", 39),
        ("\"ftp://a.example/s.xml\"", 39),
        ("\"https://\"", 39),
    ] {
        let text = format!(
            "name = \"x\"\nsitemaps = [\"http://a.example/s.xml\", {value}]\n[handlers.start]\n"
        );
        let (line, col, message) = refused(&text);
        assert_eq!((line, col), (2, column), "{value}: {message}");
        assert!(message.contains("invalid sitemap URL"), "{message}");
        assert!(message.contains("absolute http(s) URL"), "{message}");
    }

    let (line, column, message) = refused("name = \"x\"\nsitemaps = \"http://a.example/\"\n");
    assert_eq!((line, column), (2, 12));
    assert!(message.contains("expected a sequence"), "{message}");
}

#[test]
fn bad_value_kinds_and_page_values_are_refused() {
    let text = "name = \"x\"\n[handlers.a]\nitem.p = { css = \"p\", as = \"money\" }\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (3, 28));
    assert!(message.contains("unknown variant `money`"), "{message}");
    assert!(message.contains("`integer`"), "{message}");

    let text = "name = \"x\"\n[handlers.a]\nitem.u = \"$link\"\n";
    let (line, column, message) = refused(text);
    assert_eq!((line, column), (3, 10));
    assert!(
        message.contains("unknown page value \"$link\""),
        "{message}"
    );
}

#[test]
fn bad_names_are_refused() {
    let (line, column, message) = refused("name = \"my books\"\n");
    assert_eq!((line, column), (1, 8));
    assert!(message.contains("invalid project name"), "{message}");
}

#[test]
fn out_of_range_numbers_are_refused() {
    let (line, column, message) = refused("name = \"x\"\nrate = 0\n");
    assert_eq!((line, column), (2, 8));
    assert!(message.contains("rate above 0"), "{message}");
    let (_, _, message) = refused("name = \"x\"\nrate = -2.5\n");
    assert!(message.contains("found -2.5"), "{message}");
    let (_, _, message) = refused("name = \"x\"\nrate = nan\n");
    assert!(message.contains("rate above 0"), "{message}");
    let (line, column, message) = refused("name = \"x\"\nburst = 0.5\n");
    assert_eq!((line, column), (2, 9));
    assert!(message.contains("burst of at least 1"), "{message}");
    let (line, column, message) = refused("name = \"x\"\nhost_concurrency = 0\n");
    assert_eq!((line, column), (2, 20));
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn errors_display_line_and_column() {
    let e = Project::parse("name = \"x\"\nrate = 0\n").expect_err("refused");
    assert!(e.to_string().starts_with("line 2, column 8: "), "{e}");
}

#[test]
fn budgets_are_opt_in_and_at_least_one() {
    let p = Project::parse("name = \"x\"").expect("valid");
    assert_eq!((p.max_pages_per_host, p.max_query_variants), (None, None));
    let p = Project::parse("name = \"x\"\nmax_pages_per_host = 5000\nmax_query_variants = 100\n")
        .expect("valid");
    assert_eq!(
        (p.max_pages_per_host, p.max_query_variants),
        (Some(5000), Some(100))
    );
    let (line, column, message) = refused("name = \"x\"\nmax_query_variants = 0\n");
    assert_eq!((line, column), (2, 22));
    assert!(
        message.contains("max_query_variants of at least 1, found 0"),
        "{message}"
    );
    let (_, _, message) = refused("name = \"x\"\nmax_pages_per_host = -1\n");
    assert!(message.contains("a whole number"), "{message}");
}
