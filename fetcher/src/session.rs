//! Cookies: the task's own, and a per-project cookie jar (a session) kept across requests.
//!
//! - Every fetch has a jar. With `fetch.session`, it is the project's jar, shared by every
//!   task of the project in this fetcher process (kept while the project is active, up to
//!   [`MAX_SESSIONS`] projects); without it, a fresh jar for this fetch only, so cookies set
//!   by one redirect hop still reach the next, as in a browser.
//! - `Set-Cookie` of every response (redirect hops included) goes into the jar, with the
//!   cookie rules of the `cookie_store` crate (domain, path, expiry, secure).
//! - The task's `cookies` (and a `Cookie` header it sets) are sent on hops to the task URL's
//!   origin only, over the jar's cookies of the same name; they are not stored in the jar.
//!
//! Sessions live in one fetcher process: with several fetchers each has its own jar per
//! project, as pyspider's fetchers do.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use url::Url;

/// Projects whose sessions are kept at once.
pub const MAX_SESSIONS: u64 = 10_000;

/// A session not used for this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// The per-project cookie jars of this fetcher process.
#[derive(Clone)]
pub struct Sessions {
    jars: Cache<String, Arc<Jar>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("projects", &self.jars.entry_count())
            .finish()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    /// No sessions yet.
    pub fn new() -> Self {
        Self {
            jars: Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .time_to_idle(SESSION_IDLE)
                .build(),
        }
    }

    /// The jar of `project`, created empty on first use.
    pub fn jar(&self, project: &str) -> Arc<Jar> {
        self.jars
            .get_with(project.to_owned(), || Arc::new(Jar::default()))
    }

    /// The jar one fetch uses: the project's with `session`, else a fresh one.
    pub fn for_fetch(&self, project: &str, session: bool) -> Arc<Jar> {
        if session {
            self.jar(project)
        } else {
            Arc::new(Jar::default())
        }
    }
}

/// Remembers the `Set-Cookie` headers of a response from `url`.
pub fn store(jar: &Jar, headers: &HeaderMap, url: &Url) {
    let mut cookies = headers.get_all(SET_COOKIE).iter();
    jar.set_cookies(&mut cookies, url);
}

/// Cookie pairs of a `Cookie` header value (`a=1; b=2`), in order.
pub fn parse_pairs(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// The `Cookie` header for a request to `url`: the jar's cookies for it, then `explicit`
/// ones (which replace jar cookies of the same name). `None` when there is none.
pub fn header_for(
    jar: &Jar,
    url: &Url,
    explicit: &BTreeMap<String, String>,
) -> Option<HeaderValue> {
    let mut pairs: Vec<(String, String)> = jar
        .cookies(url)
        .and_then(|value| value.to_str().ok().map(parse_pairs))
        .unwrap_or_default();
    pairs.retain(|(name, _)| !explicit.contains_key(name));
    pairs.extend(explicit.iter().map(|(k, v)| (k.clone(), v.clone())));
    if pairs.is_empty() {
        return None;
    }
    let value = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn jars_keep_cookies_per_project() {
        let sessions = Sessions::new();
        let site = url("http://a.test/login");
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("sid=42; Path=/"));
        store(&sessions.jar("p1"), &headers, &site);

        let none = BTreeMap::new();
        let value = header_for(&sessions.jar("p1"), &url("http://a.test/account"), &none)
            .expect("cookie sent back");
        assert_eq!(value, "sid=42");
        assert!(header_for(&sessions.jar("p2"), &site, &none).is_none());
        assert!(header_for(&sessions.for_fetch("p1", false), &site, &none).is_none());
        assert!(header_for(&sessions.for_fetch("p1", true), &site, &none).is_some());
        // Another host does not get it.
        assert!(header_for(&sessions.jar("p1"), &url("http://b.test/"), &none).is_none());
    }

    #[test]
    fn explicit_cookies_win_over_the_jar() {
        let jar = Jar::default();
        let site = url("http://a.test/");
        jar.add_cookie_str("sid=old; Path=/", &site);
        jar.add_cookie_str("theme=dark; Path=/", &site);
        let mut explicit = BTreeMap::new();
        explicit.insert("sid".to_owned(), "new".to_owned());
        let value = header_for(&jar, &site, &explicit).expect("cookies");
        let mut pairs = parse_pairs(value.to_str().expect("ascii"));
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("sid".to_owned(), "new".to_owned()),
                ("theme".to_owned(), "dark".to_owned())
            ]
        );
    }
}
