//! URL normalization and fingerprints: when two links are the same page.
//!
//! A task's identity is the [`fingerprint`] of its [`normalize`]d URL (with the method and body
//! of a request that is not a plain GET: [`request_fingerprint`]), so every URL that enters
//! the frontier (start URLs, follows) goes through [`normalize`] first. The rules only remove
//! differences that cannot change what a server returns (case of scheme and host, a default
//! port, the fragment, dot-segments, the spelling of percent-escapes) plus the tracking
//! parameters that marketing tools append to links and the session parameters that servers
//! put in links (`sid`, `jsessionid`, `;jsessionid=` path parameters, ...), which would
//! otherwise make one page look like thousands (a session-id trap hands a fresh `sid=` to
//! every link of every page).
//!
//! Invariants:
//! - [`normalize`] is idempotent: normalizing a normalized URL gives it back unchanged.
//! - [`fingerprint`] is stable across processes, builds and machines (xxh3-128 with no seed),
//!   so it may be persisted; never replace it with a seeded hash.

use url::Url;

/// Query parameters removed by exact (ASCII case-insensitive) name.
const TRACKING_PARAMS: &[&str] = &[
    "gclid", "fbclid", "msclkid", "dclid", "yclid", "mc_cid", "mc_eid", "igshid", "_hsenc", "_hsmi",
];

/// Query parameters removed by name prefix (ASCII case-insensitive).
const TRACKING_PREFIXES: &[&str] = &["utm_"];

/// Session parameters removed by exact (ASCII case-insensitive) name: a server that keeps its
/// session in the URL gives each visitor (and a crawler without cookies, each request) fresh
/// values, so every page reached again looks new.
const SESSION_PARAMS: &[&str] = &["sid", "sessionid", "jsessionid", "phpsessid"];

/// Session parameters removed by name prefix (ASCII case-insensitive): IIS's classic ASP
/// names its cookie-less session `ASPSESSIONID` followed by random letters.
const SESSION_PREFIXES: &[&str] = &["aspsessionid"];

/// Path parameters removed from every path segment (ASCII case-insensitive): Java servlet
/// containers write the session into the path as `/cart;jsessionid=0A1B?x=1`.
const SESSION_PATH_PARAMS: &[&str] = &["jsessionid"];

/// Normalizes an absolute URL: scheme+host lower-cased, default port dropped, fragment dropped,
/// dot-segments resolved, percent-encoding normalized (hex upper-cased; escapes of unreserved
/// chars A-Za-z0-9-._~ decoded), tracking parameters removed (utm_* prefix, gclid, fbclid,
/// msclkid, dclid, yclid, mc_cid, mc_eid, igshid, _hsenc, _hsmi) and session parameters
/// removed (query parameters `sid`, `sessionid`, `jsessionid`, `phpsessid`, `aspsessionid*`;
/// path parameters `;jsessionid=...`) unless named in `keep_params`; remaining query order
/// kept; an empty query `?` removed.
///
/// A URL with none of these parameters normalizes as it did before session parameters were
/// removed, so its task id is unchanged.
///
/// Parameter names are compared after escape normalization and ignoring ASCII case, so
/// `UTM_Source` and `utm%5Fsource` are tracking parameters too.
pub fn normalize(url: &Url, keep_params: &[String]) -> Url {
    let mut out = url.clone();
    out.set_fragment(None);

    // The url crate already lower-cases scheme and host and drops default ports for the
    // special schemes (http, https, ...); a non-special scheme keeps its host as written, so
    // lower-case it here. Failure is impossible for a host we just read back, and if the
    // crate ever refused, keeping the original host is the safe fallback.
    if !out.is_special()
        && let Some(host) = out.host_str()
        && host.bytes().any(|b| b.is_ascii_uppercase())
    {
        let lower = host.to_ascii_lowercase();
        let _ = out.set_host(Some(&lower));
    }

    // Setting the path runs the URL path parser again, which resolves any dot-segment that
    // decoding `%2E` may have produced.
    let path = strip_session_path_params(&normalize_escapes(out.path()), keep_params);
    if path != out.path() {
        out.set_path(&path);
    }

    let query = out.query().map(|q| normalize_query(q, keep_params));
    match query {
        Some(q) if q.is_empty() => out.set_query(None),
        Some(q) if out.query() != Some(q.as_str()) => out.set_query(Some(&q)),
        _ => {}
    }
    out
}

/// Resolves `href` against `base`, then normalizes; None if it is not an http(s) URL or does
/// not parse (also None for javascript:, mailto:, data: etc.). Trims surrounding whitespace of
/// href.
pub fn resolve(base: &Url, href: &str, keep_params: &[String]) -> Option<Url> {
    let joined = base.join(href.trim()).ok()?;
    if !matches!(joined.scheme(), "http" | "https") || joined.host_str().is_none() {
        return None;
    }
    Some(normalize(&joined, keep_params))
}

/// 128-bit fingerprint (xxh3-128) of a normalized URL string, as 32 lower-case hex chars.
pub fn fingerprint(normalized_url: &str) -> String {
    format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(normalized_url.as_bytes())
    )
}

/// Task id of a request: the [`fingerprint`] of its normalized URL for a plain GET (the ids
/// of every task before request identity existed, so stored tasks keep theirs), else the
/// fingerprint of its method, URL and body, as Scrapy's request fingerprint: two POSTs of
/// different forms to one URL are two tasks, the same POST twice is one.
///
/// The method is `fetch.method` (upper-cased), or POST when the request has a form or
/// multipart body (as the fetcher sends it). The body is the raw `body`, the form's fields
/// URL-encoded in name order, and the multipart parts, so equal requests have equal ids
/// whichever way their fields were written.
pub fn request_fingerprint(url: &str, fetch: &crate::message::FetchOptions) -> String {
    request_fingerprint_with_headers(url, fetch, &[])
}

/// [`request_fingerprint`] with the values of the request headers named in `identity_headers`
/// (any case; those the request does not send are left out) as part of the identity, for
/// servers that answer one URL differently by header (`Accept-Language`, an API's page
/// header). A request that sends none of them has the id [`request_fingerprint`] gives it.
pub fn request_fingerprint_with_headers(
    url: &str,
    fetch: &crate::message::FetchOptions,
    identity_headers: &[String],
) -> String {
    let mut headers: Vec<(String, &str)> = identity_headers
        .iter()
        .filter_map(|name| {
            fetch
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (name.to_ascii_lowercase(), v.as_str()))
        })
        .collect();
    headers.sort();
    headers.dedup_by(|a, b| a.0 == b.0);
    let has_form = fetch.form.is_some() || !fetch.multipart.is_empty();
    let method = match &fetch.method {
        Some(m) => m.to_ascii_uppercase(),
        None if has_form => "POST".to_string(),
        None => "GET".to_string(),
    };
    if method == "GET" && !has_form && fetch.body.is_none() && headers.is_empty() {
        return fingerprint(url);
    }
    let mut identity = format!("{method} {url}\n");
    for (name, value) in headers {
        identity.push_str("header:");
        identity.push_str(&name);
        identity.push(':');
        identity.push_str(value);
        identity.push('\n');
    }
    if let Some(body) = &fetch.body {
        identity.push_str("body:");
        identity.push_str(body);
        identity.push('\n');
    }
    if let Some(form) = &fetch.form {
        identity.push_str("form:");
        identity.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        identity.push('\n');
    }
    for part in &fetch.multipart {
        // JSON keeps the parts' boundaries unambiguous whatever their text holds.
        let part = serde_json::json!([part.name, part.value, part.filename, part.content_type]);
        identity.push_str("part:");
        identity.push_str(&part.to_string());
        identity.push('\n');
    }
    fingerprint(&identity)
}

/// Whether `url`'s host is the same site as one of `hosts` (equal, or a subdomain, ignoring a
/// leading "www.").
///
/// Ports are ignored: a site is a host name. Comparison ignores ASCII case and a trailing dot.
pub fn same_site(url: &Url, hosts: &[String]) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = site_of(host);
    hosts.iter().any(|candidate| {
        let candidate = site_of(candidate);
        if candidate.is_empty() {
            return false;
        }
        // A subdomain ends with ".<candidate>"; a bare suffix ("notbooks.example") does not.
        host == candidate
            || host
                .strip_suffix(candidate.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// The comparable form of a host: lower-case, without a trailing dot or a leading `www.`.
fn site_of(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => host,
    }
}

/// Rewrites the query: escapes normalized, tracking parameters and empty pairs removed, the
/// order of the remaining pairs kept (order can matter to a server).
fn normalize_query(query: &str, keep_params: &[String]) -> String {
    let mut out = String::with_capacity(query.len());
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        let pair = normalize_escapes(pair);
        let name = pair.split('=').next().unwrap_or_default();
        if (is_tracking(name) || is_session(name))
            && !keep_params.iter().any(|k| k.eq_ignore_ascii_case(name))
        {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&pair);
    }
    out
}

/// Whether a (normalized) query parameter name is a known tracking parameter.
fn is_tracking(name: &str) -> bool {
    TRACKING_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
        || TRACKING_PREFIXES.iter().any(|p| {
            name.len() >= p.len()
                && name.is_char_boundary(p.len())
                && name[..p.len()].eq_ignore_ascii_case(p)
        })
}

/// Whether a (normalized) query parameter name is a known session parameter.
fn is_session(name: &str) -> bool {
    SESSION_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
        || SESSION_PREFIXES.iter().any(|p| {
            name.len() >= p.len()
                && name.is_char_boundary(p.len())
                && name[..p.len()].eq_ignore_ascii_case(p)
        })
}

/// Removes session path parameters (`;jsessionid=...` up to the next `;` or `/`) from every
/// segment of `path`, unless their name is in `keep_params`. Other path parameters stay.
fn strip_session_path_params(path: &str, keep_params: &[String]) -> String {
    if !path.contains(';') {
        return path.to_string();
    }
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| {
            let mut parts = segment.split(';');
            let mut out = parts.next().unwrap_or_default().to_string();
            for param in parts {
                let name = param.split('=').next().unwrap_or_default();
                let session = SESSION_PATH_PARAMS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(name));
                if session && !keep_params.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    continue;
                }
                out.push(';');
                out.push_str(param);
            }
            out
        })
        .collect();
    segments.join("/")
}

/// Normalizes percent-escapes: decodes those of unreserved characters (RFC 3986 section 2.3),
/// upper-cases the hex digits of the rest, and leaves everything else (including a `%` that
/// does not start a valid escape) as it is.
fn normalize_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Copy runs between escapes as whole `&str` slices so multi-byte characters stay intact.
    let mut run_start = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push_str(&s[run_start..i]);
            let byte = hi << 4 | lo;
            if is_unreserved(byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(hi)]));
                out.push(char::from(HEX_UPPER[usize::from(lo)]));
            }
            i += 3;
            run_start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[run_start..]);
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize(&Url::parse(s).expect("test URL parses"), &[]).to_string()
    }

    #[test]
    fn the_reference_example_normalizes() {
        assert_eq!(
            norm("http://EXAMPLE.com:80/a/./b/../c?utm_source=x&b=2&a=1#frag"),
            "http://example.com/a/c?b=2&a=1"
        );
    }

    #[test]
    fn scheme_and_host_are_lower_cased() {
        assert_eq!(
            norm("HTTPS://Www.Example.COM/Path"),
            "https://www.example.com/Path"
        );
        // Non-special schemes are not lower-cased by the url crate itself.
        assert_eq!(norm("foo://EXAMPLE.com/x"), "foo://example.com/x");
    }

    #[test]
    fn default_ports_are_dropped_and_others_kept() {
        assert_eq!(norm("https://example.com:443/"), "https://example.com/");
        assert_eq!(norm("http://example.com:8080/"), "http://example.com:8080/");
    }

    #[test]
    fn fragments_are_dropped() {
        assert_eq!(norm("http://example.com/a#top"), "http://example.com/a");
        assert_eq!(
            norm("http://example.com/a?x=1#"),
            "http://example.com/a?x=1"
        );
    }

    #[test]
    fn dot_segments_are_resolved() {
        assert_eq!(
            norm("http://example.com/a/b/../../c/./d"),
            "http://example.com/c/d"
        );
        assert_eq!(
            norm("http://example.com/a/%2E%2E/b"),
            "http://example.com/b"
        );
    }

    #[test]
    fn escapes_of_unreserved_characters_are_decoded() {
        assert_eq!(
            norm("http://example.com/%7euser"),
            "http://example.com/~user"
        );
        assert_eq!(
            norm("http://example.com/%41%62%2D%5F?q=%7E"),
            "http://example.com/Ab-_?q=~"
        );
    }

    #[test]
    fn escapes_of_reserved_characters_stay_and_are_upper_cased() {
        assert_eq!(norm("http://example.com/a%2fb"), "http://example.com/a%2Fb");
        assert_eq!(
            norm("http://example.com/?q=a%2fb%3d"),
            "http://example.com/?q=a%2Fb%3D"
        );
        // A lone `%` is not an escape and is left alone.
        assert_eq!(normalize_escapes("100%"), "100%");
        assert_eq!(normalize_escapes("%zz%4"), "%zz%4");
        assert_eq!(normalize_escapes("é%7e"), "é~");
    }

    #[test]
    fn tracking_parameters_are_removed() {
        assert_eq!(
            norm(
                "http://example.com/?utm_medium=a&gclid=1&fbclid=2&msclkid=3&dclid=4&yclid=5\
                 &mc_cid=6&mc_eid=7&igshid=8&_hsenc=9&_hsmi=10&id=7&UTM_Campaign=z&utm%5Fterm=q"
            ),
            "http://example.com/?id=7"
        );
        // Only names are matched, not values or lookalikes.
        assert_eq!(
            norm("http://example.com/?x=utm_source&utmost=1"),
            "http://example.com/?x=utm_source&utmost=1"
        );
    }

    #[test]
    fn session_parameters_are_removed() {
        assert_eq!(
            norm(
                "http://example.com/p?sid=a1&id=7&SessionID=b2&JSESSIONID=c3&phpsessid=d4\
                 &ASPSESSIONIDQQGGQGPG=e5&page=2"
            ),
            "http://example.com/p?id=7&page=2"
        );
        assert_eq!(
            norm("http://example.com/cart;jsessionid=0A1B2C/item;JSessionId=9?x=1"),
            "http://example.com/cart/item?x=1"
        );
        assert_eq!(
            norm("http://example.com/a;v=1;jsessionid=Z;w=2"),
            "http://example.com/a;v=1;w=2"
        );
        // Lookalikes stay: only whole names (or the ASP prefix) are session parameters.
        assert_eq!(
            norm("http://example.com/?side=1&sids=2&x=sid&session=3;jsessionid"),
            "http://example.com/?side=1&sids=2&x=sid&session=3;jsessionid"
        );
        assert_eq!(
            norm("http://example.com/a;jsessionidx=1"),
            "http://example.com/a;jsessionidx=1"
        );
        // The same page reached with two sessions is one task.
        assert_eq!(
            fingerprint(&norm("http://example.com/p?sid=1&id=2")),
            fingerprint(&norm("http://example.com/p?id=2&sid=99"))
        );
    }

    #[test]
    fn kept_session_parameters_survive() {
        let keep = ["SID".to_string(), "jsessionid".to_string()];
        let url =
            Url::parse("http://example.com/a;jsessionid=Z?sid=1&phpsessid=2").expect("parses");
        assert_eq!(
            normalize(&url, &keep).as_str(),
            "http://example.com/a;jsessionid=Z?sid=1"
        );
    }

    #[test]
    fn ids_of_urls_without_session_parameters_are_unchanged() {
        // Pinned before session parameters were removed: stored task ids must not move.
        for (url, id) in [
            ("http://example.com/", fingerprint("http://example.com/")),
            (
                "http://example.com/a;v=1/b?x=1&side=2",
                fingerprint("http://example.com/a;v=1/b?x=1&side=2"),
            ),
        ] {
            assert_eq!(fingerprint(&norm(url)), id, "{url}");
        }
        assert_eq!(
            fingerprint(&norm("http://example.com/")),
            format!(
                "{:032x}",
                xxhash_rust::xxh3::xxh3_128(b"http://example.com/")
            )
        );
    }

    #[test]
    fn kept_parameters_survive() {
        let url = Url::parse("http://example.com/?utm_source=x&gclid=y&a=1").expect("parses");
        let kept = normalize(&url, &["utm_source".to_string()]);
        assert_eq!(kept.as_str(), "http://example.com/?utm_source=x&a=1");
    }

    #[test]
    fn query_order_is_kept_and_an_empty_query_removed() {
        assert_eq!(
            norm("http://example.com/?b=2&a=1"),
            "http://example.com/?b=2&a=1"
        );
        assert_eq!(norm("http://example.com/p?"), "http://example.com/p");
        assert_eq!(
            norm("http://example.com/p?utm_source=x"),
            "http://example.com/p"
        );
        assert_eq!(
            norm("http://example.com/p?&&a=1&"),
            "http://example.com/p?a=1"
        );
    }

    #[test]
    fn normalization_is_idempotent() {
        for s in [
            "http://EXAMPLE.com:80/a/./b/../c?utm_source=x&b=2&a=1#frag",
            "http://example.com/a%2fb/%7e?q=%e2%82%ac&r=a+b",
            "https://example.com/%2e%2E/x?",
            "http://example.com/日本?q=ü",
            "http://example.com/a;jsessionid=1;x=2/b;JSESSIONID=3?sid=4&aspsessionidab=5&y=6",
        ] {
            let once = normalize(&Url::parse(s).expect("parses"), &[]);
            let twice = normalize(&once, &[]);
            assert_eq!(once, twice, "{s}");
        }
    }

    #[test]
    fn resolve_joins_relative_links_and_normalizes() {
        let base = Url::parse("http://example.com/dir/page.html").expect("parses");
        let r = |href: &str| resolve(&base, href, &[]).map(|u| u.to_string());
        assert_eq!(
            r("next.html"),
            Some("http://example.com/dir/next.html".into())
        );
        assert_eq!(
            r("  ../up?utm_source=x#f \n"),
            Some("http://example.com/up".into())
        );
        assert_eq!(r("//other.org/x"), Some("http://other.org/x".into()));
        assert_eq!(
            r("https://Other.org:443"),
            Some("https://other.org/".into())
        );
        assert_eq!(r("#top"), Some("http://example.com/dir/page.html".into()));
    }

    #[test]
    fn resolve_refuses_non_http_links() {
        let base = Url::parse("http://example.com/").expect("parses");
        for href in [
            "javascript:void(0)",
            "mailto:a@example.com",
            "data:text/plain,hi",
            "ftp://example.com/f",
            "tel:+123",
            "http://[::1",
        ] {
            assert_eq!(resolve(&base, href, &[]), None, "{href}");
        }
    }

    #[test]
    fn a_get_keeps_its_url_id_and_other_requests_add_method_and_body() {
        use crate::message::FetchOptions;
        use std::collections::BTreeMap;
        let url = "http://a.example/search";
        let get = FetchOptions::default();
        assert_eq!(request_fingerprint(url, &get), fingerprint(url));
        let explicit_get = FetchOptions {
            method: Some("get".into()),
            ..FetchOptions::default()
        };
        assert_eq!(request_fingerprint(url, &explicit_get), fingerprint(url));
        let form = |q: &str| FetchOptions {
            form: Some(BTreeMap::from([
                ("q".to_string(), q.to_string()),
                ("page".to_string(), "1".to_string()),
            ])),
            ..FetchOptions::default()
        };
        let rust = request_fingerprint(url, &form("rust"));
        assert_ne!(rust, fingerprint(url), "a POST is not the GET of its URL");
        assert_eq!(
            rust,
            request_fingerprint(url, &form("rust")),
            "same POST, same id"
        );
        assert_ne!(
            rust,
            request_fingerprint(url, &form("go")),
            "other form, other task"
        );
        let explicit_post = FetchOptions {
            method: Some("POST".into()),
            ..form("rust")
        };
        assert_eq!(request_fingerprint(url, &explicit_post), rust);
        let put = FetchOptions {
            method: Some("PUT".into()),
            ..form("rust")
        };
        assert_ne!(request_fingerprint(url, &put), rust, "the method counts");
        let body = |b: &str| FetchOptions {
            method: Some("POST".into()),
            body: Some(b.into()),
            ..FetchOptions::default()
        };
        assert_ne!(
            request_fingerprint(url, &body("{\"a\":1}")),
            request_fingerprint(url, &body("{\"a\":2}"))
        );
        let delete = FetchOptions {
            method: Some("DELETE".into()),
            ..FetchOptions::default()
        };
        assert_ne!(request_fingerprint(url, &delete), fingerprint(url));
        // Pinned: task ids are persisted.
        assert_eq!(
            request_fingerprint(url, &form("rust")),
            fingerprint("POST http://a.example/search\nform:page=1&q=rust\n")
        );
    }

    #[test]
    fn identity_headers_make_requests_differ_only_when_sent() {
        use crate::message::FetchOptions;
        let url = "http://a.example/api";
        let with = |lang: &str| FetchOptions {
            headers: [("Accept-Language".to_string(), lang.to_string())].into(),
            ..FetchOptions::default()
        };
        let names = ["accept-language".to_string()];
        let fr = request_fingerprint_with_headers(url, &with("fr"), &names);
        assert_ne!(
            fr,
            request_fingerprint_with_headers(url, &with("de"), &names)
        );
        assert_eq!(
            fr,
            request_fingerprint_with_headers(url, &with("fr"), &names)
        );
        assert_ne!(fr, fingerprint(url));
        // Not named, or not sent: the URL's id, as before.
        assert_eq!(request_fingerprint(url, &with("fr")), fingerprint(url));
        assert_eq!(
            request_fingerprint_with_headers(url, &FetchOptions::default(), &names),
            fingerprint(url)
        );
        assert_eq!(
            fr,
            fingerprint("GET http://a.example/api\nheader:accept-language:fr\n")
        );
    }

    #[test]
    fn fingerprints_are_32_hex_chars_and_stable() {
        let f = fingerprint("http://example.com/");
        assert_eq!(f.len(), 32);
        assert!(
            f.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(f, fingerprint("http://example.com/"));
        assert_ne!(f, fingerprint("http://example.com/a"));
        // Pinned: a fingerprint is persisted, so it must never change between builds.
        assert_eq!(
            fingerprint(""),
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b""))
        );
        assert_eq!(fingerprint(""), "99aa06d3014798d86001c324468d497f");
    }

    #[test]
    fn same_site_accepts_equal_hosts_and_subdomains() {
        let hosts = vec!["www.books.example".to_string()];
        let site = |s: &str| same_site(&Url::parse(s).expect("parses"), &hosts);
        assert!(site("http://books.example/"));
        assert!(site("http://www.books.example:8080/"));
        assert!(site("https://shop.books.example/"));
        assert!(site("https://a.b.books.example/"));
        assert!(!site("http://notbooks.example/"));
        assert!(!site("http://books.example.evil.org/"));
        assert!(!site("http://example/"));
        assert!(!same_site(
            &Url::parse("http://books.example/").expect("parses"),
            &[]
        ));
    }

    #[test]
    fn same_site_compares_ip_hosts_exactly() {
        let hosts = vec!["127.0.0.1".to_string()];
        assert!(same_site(
            &Url::parse("http://127.0.0.1:9000/").expect("parses"),
            &hosts
        ));
        assert!(!same_site(
            &Url::parse("http://127.0.0.2/").expect("parses"),
            &hosts
        ));
    }
}
