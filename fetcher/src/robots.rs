//! robots.txt: fetched once per origin and user agent, cached, and asked before each task.
//!
//! Rules kept here (Google's reading of RFC 9309):
//!
//! - 2xx: the file is parsed with `texting_robots` for our agent token (the first word of the
//!   `User-Agent`, e.g. `spindle`), falling back to the `*` group. Kept for `robots_ttl`.
//! - 4xx other than 429 (404 above all), or a redirect chain that does not end: no rules,
//!   everything allowed. Kept for `robots_ttl`.
//! - 5xx and 429: the host is treated as fully disallowed for `robots_error_ttl`, then
//!   robots.txt is asked for again. Tasks fail with [`ErrorKind::Robots`], retryable.
//! - unreachable (DNS, connect, TLS, timeout): the task fails with that error, retryable, and
//!   nothing is cached, so the next attempt (maybe through another proxy) asks again; a host
//!   whose robots.txt cannot be read is never crawled.
//!
//! The cache is bounded (`robots_cache_capacity` entries, least recently used evicted) and
//! shared by every task of this fetcher process; concurrent tasks for one origin wait for a
//! single robots.txt request. Each fetcher process keeps its own cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use spindle_common::message::{ErrorKind, TaskError};
use texting_robots::Robot;
use url::Url;

use crate::error::task_error;

/// Largest robots.txt read; the rest is ignored (Google reads 500 KiB).
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// Redirects followed for robots.txt before treating it as missing.
pub const MAX_ROBOTS_REDIRECTS: u32 = 5;

/// What one origin's robots.txt says for our agent.
#[derive(Debug)]
pub enum Rules {
    /// No usable file (4xx): everything is allowed.
    AllowAll,
    /// The parsed file.
    Parsed(Robot),
    /// The server answered robots.txt with an error: nothing is allowed for a while.
    Unavailable {
        /// The status that answered robots.txt.
        status: u16,
    },
}

/// A cached answer and how long it is kept.
#[derive(Debug)]
pub struct Entry {
    /// The rules.
    pub rules: Rules,
    /// Time to live in the cache.
    pub ttl: Duration,
}

impl Entry {
    /// Whether `url` may be fetched, or the task error that says why not.
    pub fn check(&self, url: &Url) -> Result<(), TaskError> {
        match &self.rules {
            Rules::AllowAll => Ok(()),
            Rules::Parsed(robot) => {
                if robot.allowed(url.as_str()) {
                    Ok(())
                } else {
                    Err(task_error(
                        ErrorKind::Refused,
                        false,
                        "disallowed by robots.txt",
                    ))
                }
            }
            Rules::Unavailable { status } => Err(task_error(
                ErrorKind::Robots,
                true,
                format!(
                    "robots.txt answered HTTP {status}: the host is treated as disallowed for {} s",
                    self.ttl.as_secs()
                ),
            )),
        }
    }

    /// The `Crawl-delay` for our agent, if the file sets one.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match &self.rules {
            Rules::Parsed(robot) => robot
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                .map(|d| Duration::from_secs_f64(f64::from(d))),
            _ => None,
        }
    }
}

/// Turns the answer to a robots.txt request into an entry.
pub fn entry_from_response(
    status: u16,
    body: &[u8],
    agent: &str,
    ttl: Duration,
    error_ttl: Duration,
) -> Entry {
    let rules = match status {
        200..=299 => match Robot::new(agent, body) {
            Ok(robot) => Rules::Parsed(robot),
            // texting_robots is very forgiving; a file it cannot read has no rules we know.
            Err(_) => Rules::AllowAll,
        },
        429 | 500..=599 => {
            return Entry {
                rules: Rules::Unavailable { status },
                ttl: error_ttl,
            };
        }
        // 4xx, and a 3xx left over when the redirect limit was hit.
        _ => Rules::AllowAll,
    };
    Entry { rules, ttl }
}

/// The robots.txt token of a `User-Agent`: its first word, before any `/` or space.
pub fn agent_token(user_agent: &str) -> &str {
    user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .find(|s| !s.is_empty())
        .unwrap_or("*")
}

/// The URL of the robots.txt that governs `url`.
pub fn robots_url(url: &Url) -> Url {
    let mut robots = url.clone();
    robots.set_path("/robots.txt");
    robots.set_query(None);
    robots.set_fragment(None);
    // Credentials in the page URL are not sent to robots.txt.
    let _ = robots.set_username("");
    let _ = robots.set_password(None);
    robots
}

/// Each entry lives as long as its own TTL says.
struct PerEntryTtl;

impl Expiry<String, Arc<Entry>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The bounded, per-process cache of robots.txt answers.
#[derive(Clone)]
pub struct RobotsCache {
    entries: Cache<String, Arc<Entry>>,
}

impl std::fmt::Debug for RobotsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotsCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl RobotsCache {
    /// A cache of at most `capacity` origins.
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// The entry for `url`'s origin and `agent`, from the cache or from `fetch`.
    ///
    /// Concurrent callers for one key share one `fetch`. An error of `fetch` (robots.txt
    /// unreachable) is returned to every waiting caller and not cached.
    pub async fn entry<F>(&self, url: &Url, agent: &str, fetch: F) -> Result<Arc<Entry>, TaskError>
    where
        F: Future<Output = Result<Entry, TaskError>>,
    {
        let key = format!("{}|{}", url.origin().ascii_serialization(), agent);
        self.entries
            .try_get_with(key, async { fetch.await.map(Arc::new) })
            .await
            .map_err(|err: Arc<TaskError>| TaskError::clone(&err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(100);
    const ERR_TTL: Duration = Duration::from_secs(5);

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn rules_follow_the_status() {
        let txt = b"User-agent: *\nDisallow: /private\nCrawl-delay: 1.5\n\nUser-agent: spindle\nDisallow: /no-spindle\n";
        let entry = entry_from_response(200, txt, "spindle", TTL, ERR_TTL);
        assert!(entry.check(&url("http://a.test/private")).is_ok());
        let err = entry
            .check(&url("http://a.test/no-spindle/x"))
            .expect_err("our group disallows it");
        assert_eq!(err.kind, ErrorKind::Refused);
        assert_eq!(err.message, "disallowed by robots.txt");
        assert!(!err.retryable);
        assert_eq!(entry.crawl_delay(), None, "our group sets no delay");

        let other = entry_from_response(200, txt, "otherbot", TTL, ERR_TTL);
        assert!(other.check(&url("http://a.test/private")).is_err());
        assert_eq!(other.crawl_delay(), Some(Duration::from_millis(1500)));
        assert_eq!(other.ttl, TTL);

        for status in [404, 403, 410, 301] {
            let entry = entry_from_response(status, b"Disallow: /", "spindle", TTL, ERR_TTL);
            assert!(entry.check(&url("http://a.test/")).is_ok(), "{status}");
            assert_eq!(entry.ttl, TTL);
        }
        for status in [500, 503, 429] {
            let entry = entry_from_response(status, b"", "spindle", TTL, ERR_TTL);
            let err = entry.check(&url("http://a.test/")).expect_err("disallowed");
            assert_eq!(err.kind, ErrorKind::Robots, "{status}");
            assert!(err.retryable);
            assert_eq!(entry.ttl, ERR_TTL);
        }
    }

    #[test]
    fn agent_tokens_and_robots_urls() {
        assert_eq!(agent_token("spindle/0.1.0"), "spindle");
        assert_eq!(agent_token("MyBot (+http://x)"), "MyBot");
        assert_eq!(agent_token(""), "*");
        assert_eq!(
            robots_url(&url("https://u:p@a.test:8443/x/y?q=1#f")).as_str(),
            "https://a.test:8443/robots.txt"
        );
    }

    #[tokio::test]
    async fn one_fetch_per_origin_and_errors_are_not_cached() {
        let cache = RobotsCache::new(100);
        let page = url("http://a.test/page");
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..3 {
            let entry = cache
                .entry(&page, "spindle", async {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(entry_from_response(404, b"", "spindle", TTL, ERR_TTL))
                })
                .await
                .expect("entry");
            assert!(entry.check(&page).is_ok());
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

        let other = url("http://b.test/");
        for _ in 0..2 {
            let err = cache
                .entry(&other, "spindle", async {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Err(task_error(ErrorKind::Connect, true, "refused"))
                })
                .await
                .expect_err("unreachable");
            assert_eq!(err.kind, ErrorKind::Connect);
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
