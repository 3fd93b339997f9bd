//! HTTP clients per connection policy, and the choice of a task's proxy.
//!
//! A reqwest client fixes its proxy, certificate validation and connect timeout, so each
//! combination a task can ask for is a [`ClientKey`] with its own client (connection pool).
//! The two default clients (public-only and `allow_private`, no proxy, validating, the
//! configured connect timeout) are built at start and always kept; other combinations are
//! built on first use and kept in a bounded cache.
//!
//! Proxies: `fetch.proxies[retries % len]`, so each retry of a failed task goes through the
//! next proxy of the list. `http://` and `https://` proxies get plain requests in absolute
//! form and `CONNECT` tunnels for https; `socks5://` resolves names here (through the
//! private-address guard) and `socks5h://` lets the proxy resolve them. Credentials come from
//! the proxy URL (`http://user:pass@host:port`). Through an http(s) or socks5h proxy, names
//! are resolved by the proxy: only IP literals in URLs are checked against the
//! private-address rules then.
//!
//! None of the clients follows redirects: the fetch loop does, checking each hop.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use reqwest::{Client, Proxy};
use spindle_common::message::{ErrorKind, FetchOptions, TaskError};
use spindle_common::netrange::PrivateAccess;
use url::Url;

use crate::config::FetcherConfig;
use crate::error::{FetcherError, task_error};
use crate::guard::Resolver;

/// Client combinations kept besides the two defaults.
const MAX_CLIENTS: u64 = 64;

/// What a client is built for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// Which loopback and private addresses it may reach.
    pub access: PrivateAccess,
    /// Validates TLS certificates.
    pub verify_tls: bool,
    /// The proxy URL, if any.
    pub proxy: Option<String>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
}

impl ClientKey {
    /// The key for one attempt of a task with `options` after `retries` failed ones.
    pub fn for_task(
        options: &FetchOptions,
        retries: u32,
        default_connect_timeout: Duration,
    ) -> Result<ClientKey, TaskError> {
        let proxy = pick_proxy(&options.proxies, retries)?;
        Ok(ClientKey {
            access: options.private_access(),
            verify_tls: options.verify_tls.unwrap_or(true),
            proxy,
            connect_timeout: options
                .connect_timeout_ms
                .map_or(default_connect_timeout, Duration::from_millis),
        })
    }
}

/// The proxy of this attempt: `proxies[retries % len]`, validated.
pub fn pick_proxy(proxies: &[String], retries: u32) -> Result<Option<String>, TaskError> {
    if proxies.is_empty() {
        return Ok(None);
    }
    let index = usize::try_from(retries).unwrap_or(0) % proxies.len();
    let Some(raw) = proxies.get(index) else {
        return Ok(None);
    };
    let raw = raw.trim();
    let bad = |why: &str| {
        task_error(
            ErrorKind::Other,
            false,
            format!("invalid proxy `{}`: {why}", redact(raw)),
        )
    };
    let url = Url::parse(raw).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(bad("the scheme must be http, https, socks5 or socks5h"));
    }
    if url.host_str().is_none() {
        return Err(bad("no host"));
    }
    Ok(Some(raw.to_owned()))
}

/// A proxy URL without its password, for messages and logs.
pub fn redact(proxy: &str) -> String {
    match Url::parse(proxy) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => proxy.to_owned(),
    }
}

/// Every client of a fetcher.
#[derive(Clone)]
pub struct Clients {
    user_agent: String,
    default_connect_timeout: Duration,
    guarded: Client,
    permissive: Client,
    others: Cache<ClientKey, Client>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("others", &self.others.entry_count())
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// Builds the two default clients.
    pub fn new(config: &FetcherConfig) -> Result<Clients, FetcherError> {
        // reqwest is built without a default TLS provider (ring builds much faster than
        // aws-lc-rs); install ring process-wide. An error only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = |access| ClientKey {
            access,
            verify_tls: true,
            proxy: None,
            connect_timeout: config.connect_timeout,
        };
        Ok(Clients {
            user_agent: config.user_agent.clone(),
            default_connect_timeout: config.connect_timeout,
            guarded: build(&config.user_agent, &key(PrivateAccess::Nothing))
                .map_err(FetcherError::Client)?,
            permissive: build(&config.user_agent, &key(PrivateAccess::All))
                .map_err(FetcherError::Client)?,
            others: Cache::new(MAX_CLIENTS),
        })
    }

    /// The connect timeout of tasks that set none.
    pub fn default_connect_timeout(&self) -> Duration {
        self.default_connect_timeout
    }

    /// The client for `key`, built if needed.
    pub fn get(&self, key: &ClientKey) -> Result<Client, TaskError> {
        if key.verify_tls
            && key.proxy.is_none()
            && key.connect_timeout == self.default_connect_timeout
        {
            match key.access {
                PrivateAccess::All => return Ok(self.permissive.clone()),
                PrivateAccess::Nothing => return Ok(self.guarded.clone()),
                // A list of ranges gets a client (and resolver) of its own, cached below.
                PrivateAccess::Only(_) => {}
            }
        }
        self.others
            .try_get_with(key.clone(), || build(&self.user_agent, key))
            .map_err(|err: Arc<reqwest::Error>| {
                task_error(
                    ErrorKind::Other,
                    false,
                    format!("cannot build an HTTP client: {err}"),
                )
            })
    }
}

/// One client for `key`.
fn build(user_agent: &str, key: &ClientKey) -> Result<Client, reqwest::Error> {
    let mut builder = Client::builder()
        .user_agent(user_agent)
        .connect_timeout(key.connect_timeout)
        // Redirects are followed by `fetch`, so each hop passes the guard.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Resolver::new(key.access.clone())))
        .danger_accept_invalid_certs(!key.verify_tls);
    builder = match &key.proxy {
        Some(proxy) => builder.proxy(Proxy::all(proxy.as_str())?),
        // No environment proxy either: it would resolve names out of the guard's reach.
        None => builder.no_proxy(),
    };
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_rotate_with_retries() {
        let proxies = vec![
            "http://a.test:3128".to_owned(),
            "socks5://u:p@b.test:1080".to_owned(),
        ];
        assert_eq!(
            pick_proxy(&proxies, 0).expect("valid").as_deref(),
            Some("http://a.test:3128")
        );
        assert_eq!(
            pick_proxy(&proxies, 1).expect("valid").as_deref(),
            Some("socks5://u:p@b.test:1080")
        );
        assert_eq!(
            pick_proxy(&proxies, 2).expect("valid").as_deref(),
            Some("http://a.test:3128")
        );
        assert_eq!(pick_proxy(&[], 5).expect("none"), None);
    }

    #[test]
    fn bad_proxies_are_refused_without_leaking_passwords() {
        let err = pick_proxy(&["ftp://u:secret@a.test".to_owned()], 0).expect_err("scheme");
        assert_eq!(err.kind, ErrorKind::Other);
        assert!(!err.retryable);
        assert!(!err.message.contains("secret"), "{}", err.message);
        assert!(pick_proxy(&["not a url".to_owned()], 0).is_err());
    }

    #[test]
    fn keys_follow_the_options() {
        let options = FetchOptions {
            verify_tls: Some(false),
            connect_timeout_ms: Some(1500),
            proxies: vec!["http://p.test:1".into()],
            ..FetchOptions::default()
        };
        let key = ClientKey::for_task(&options, 3, Duration::from_secs(10)).expect("key");
        assert!(!key.verify_tls);
        assert_eq!(key.connect_timeout, Duration::from_millis(1500));
        assert_eq!(key.proxy.as_deref(), Some("http://p.test:1"));
        let clients = Clients::new(&FetcherConfig::default()).expect("clients");
        clients.get(&key).expect("client built");
    }
}
