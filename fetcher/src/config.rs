//! Fetcher settings and the per-task defaults, all in one place.
//!
//! [`FetcherConfig`] is what an instance is started with; the `DEFAULT_*` constants apply to
//! a task whose [`spindle_common::FetchOptions`] leave a field unset.

use std::path::PathBuf;
use std::time::Duration;

/// Total time allowed for one task (every redirect hop and the body) when it sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest body accepted, after decompression, when the task sets no cap.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

/// Redirects followed when the task sets no limit.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// Where Debian (and most Linux distributions) install Chromium.
pub const DEFAULT_CHROMIUM_PATH: &str = "/usr/bin/chromium";

/// Fetches in flight at once in one fetcher, by default: a ceiling, not a target. What is
/// really in flight is what politeness allows (each host's `host_concurrency`, each project's
/// `rate` and window), so it must not be lower than that: a crawl of N hosts at
/// `host_concurrency` C may have N × C requests in flight (1,000 hosts at 2 need 2,000). Each
/// request in flight holds a socket and the response being read.
pub const DEFAULT_CONCURRENCY: usize = 4096;

/// Browser viewport when a rendering task sets none.
pub const DEFAULT_VIEWPORT: (u32, u32) = (1280, 800);

/// How a fetcher instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetcherConfig {
    /// Fetches in flight at once (also the bus's in-flight bound for this instance).
    pub concurrency: usize,
    /// Time allowed to establish a TCP (and TLS) connection, unless a task sets its own.
    pub connect_timeout: Duration,
    /// `User-Agent` sent unless the task sets its own; its first word (before `/`) is also
    /// the name matched against robots.txt groups.
    pub user_agent: String,
    /// Longest URL accepted, in bytes; a longer one is refused without a request.
    pub max_url_len: usize,
    /// How long a fetched robots.txt (or a 4xx answer for it, meaning "allow all") is kept.
    pub robots_ttl: Duration,
    /// How long a host whose robots.txt answered 5xx, or could not be reached, is treated as
    /// disallowed before robots.txt is asked for again.
    pub robots_error_ttl: Duration,
    /// Hosts whose robots.txt is kept in memory at once (least recently used dropped first).
    pub robots_cache_capacity: u64,
    /// Longest robots.txt `Crawl-delay` honoured; a larger one is cut to this.
    pub max_crawl_delay: Duration,
    /// Chromium executable for `mode = js` tasks; `None` turns rendering off.
    pub chromium_path: Option<PathBuf>,
    /// Browser tabs rendering at once (the bound of the tab pool).
    pub max_tabs: usize,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("spindle/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_url_len: 8 * 1024,
            robots_ttl: Duration::from_secs(24 * 60 * 60),
            robots_error_ttl: Duration::from_secs(10 * 60),
            robots_cache_capacity: 10_000,
            max_crawl_delay: Duration::from_secs(30),
            chromium_path: Some(PathBuf::from(DEFAULT_CHROMIUM_PATH)),
            max_tabs: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_user_agent_names_the_version() {
        let config = FetcherConfig::default();
        assert_eq!(
            config.user_agent,
            format!("spindle/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(config.concurrency, 4096);
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.max_url_len, 8192);
        assert_eq!(config.max_tabs, 4);
        assert_eq!(
            config.chromium_path.as_deref(),
            Some(std::path::Path::new("/usr/bin/chromium"))
        );
    }
}
