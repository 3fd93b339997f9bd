//! A site of many hosts, for the politeness bench: `hosts` loopback addresses (127.0.x.y on
//! one port), each with a robots.txt, an index linking its products and one other host, and
//! its product pages; every answer comes after `delay`. With `host_concurrency = 2`, a crawler
//! can have at most `2 × hosts` requests in flight, so the ideal rate is `2 × hosts / delay`.
//!
//! The server counts, per host, the most requests it had in flight at once, and for all hosts
//! the first request's start and the last response's end; `GET /__stats` (on any host, not
//! delayed, not counted) answers them as JSON. It listens on every address of the machine (one
//! port serves every 127.0.x.y) and refuses connections that do not come from loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

/// The shape of the many-host site.
#[derive(Debug, Clone, Copy)]
pub struct HostsSpec {
    /// Number of hosts, at most 64,770 (127.0.1.1 to 127.0.255.254).
    pub hosts: u32,
    /// Product pages per host.
    pub products: u32,
    /// Time before each answer.
    pub delay: Duration,
}

impl HostsSpec {
    /// The address of host `i`: 127.0.x.y with x from 1 and y from 1 to 254.
    pub fn host(i: u32) -> String {
        format!("127.0.{}.{}", 1 + i / 254, 1 + i % 254)
    }

    /// Requests a complete crawl makes: per host its robots.txt, its index and its products.
    pub fn requests(&self) -> u64 {
        u64::from(self.hosts) * (2 + u64::from(self.products))
    }

    /// A project crawling every host from its index, `host_concurrency` requests per host.
    pub fn project_toml(&self, name: &str, port: u16, host_concurrency: u32) -> String {
        let start: Vec<String> = (0..self.hosts)
            .map(|i| format!("\"http://{}:{port}/\"", Self::host(i)))
            .collect();
        format!(
            r#"# Crawls the many-host bench site: {hosts} hosts of {products} products.
name = "{name}"
start = [{start}]
rate = 100000
burst = 100000
host_concurrency = {host_concurrency}
allow_private = true

[defaults]
timeout = "60s"

[handlers.start]
follow = [
  {{ css = "a.product", callback = "product" }},
  {{ css = "a.host", callback = "start" }},
]

[handlers.product]
item.title = {{ css = "h1" }}
item.url = "$url"
"#,
            hosts = self.hosts,
            products = self.products,
            start = start.join(", "),
        )
    }
}

/// What the server saw.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
pub struct HostsStats {
    /// Requests answered (robots.txt included).
    pub requests: u64,
    /// The most requests any one host had in flight at once.
    pub max_per_host: u32,
    /// The most requests in flight at once, all hosts together.
    pub max_in_flight: u32,
    /// From the first request's start to the last response's end, in seconds.
    pub span_s: f64,
}

/// The server's counters.
#[derive(Default)]
struct Counters {
    in_flight: HashMap<String, u32>,
    total_in_flight: u32,
    stats: HostsStats,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// The many-host site, ready to serve.
#[derive(Clone)]
pub struct HostsSite {
    spec: HostsSpec,
    port: u16,
    counters: Arc<Mutex<Counters>>,
}

impl HostsSite {
    /// The site of `spec`, whose links point at `port`.
    pub fn new(spec: HostsSpec, port: u16) -> Self {
        Self {
            spec,
            port,
            counters: Arc::default(),
        }
    }

    /// The router; serve it with connect info (`into_make_service_with_connect_info`).
    pub fn router(self) -> axum::Router {
        axum::Router::new().fallback(answer).with_state(self)
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn started(&self, host: &str) {
        let mut c = self.counters();
        let now = Instant::now();
        c.first.get_or_insert(now);
        let n = c.in_flight.entry(host.to_string()).or_default();
        *n += 1;
        let n = *n;
        c.total_in_flight += 1;
        c.stats.max_per_host = c.stats.max_per_host.max(n);
        c.stats.max_in_flight = c.stats.max_in_flight.max(c.total_in_flight);
    }

    fn ended(&self, host: &str) {
        let mut c = self.counters();
        if let Some(n) = c.in_flight.get_mut(host) {
            *n -= 1;
            if *n == 0 {
                c.in_flight.remove(host);
            }
        }
        c.total_in_flight -= 1;
        c.stats.requests += 1;
        c.last = Some(Instant::now());
    }

    /// What the server saw so far.
    pub fn stats(&self) -> HostsStats {
        let c = self.counters();
        let mut stats = c.stats.clone();
        if let (Some(first), Some(last)) = (c.first, c.last) {
            stats.span_s = (last - first).as_secs_f64();
        }
        stats
    }

    /// The page at `path` of host number `host`, or `None` for a 404.
    fn page(&self, host: u32, path: &str) -> Option<(&'static str, String)> {
        let spec = &self.spec;
        if path == "/robots.txt" {
            return Some(("text/plain", "User-agent: *\nAllow: /\n".to_string()));
        }
        if path == "/" {
            let other = HostsSpec::host((host + 1) % spec.hosts);
            let mut body = format!(
                "<html><body><h1>Host {host}</h1><a class=\"host\" href=\"http://{other}:{}/\">next host</a><ul>",
                self.port
            );
            for p in 0..spec.products {
                body.push_str(&format!(
                    "<li><a class=\"product\" href=\"/p/{p}\">Product {p}</a></li>"
                ));
            }
            body.push_str("</ul></body></html>");
            return Some(("text/html", body));
        }
        let product: u32 = path.strip_prefix("/p/")?.parse().ok()?;
        (product < spec.products).then(|| {
            (
                "text/html",
                format!("<html><body><h1>Host {host} product {product}</h1></body></html>"),
            )
        })
    }

    /// The number of the host a request names (its `Host` header, port left out).
    fn host_number(&self, headers: &HeaderMap) -> Option<u32> {
        let host = headers.get(header::HOST)?.to_str().ok()?;
        let ip = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let mut parts = ip.strip_prefix("127.0.")?.split('.');
        let x: u32 = parts.next()?.parse().ok()?;
        let y: u32 = parts.next()?.parse().ok()?;
        let i = (x.checked_sub(1)?) * 254 + y.checked_sub(1)?;
        (i < self.spec.hosts && (1..=254).contains(&y)).then_some(i)
    }
}

async fn answer(
    State(site): State<HostsSite>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !peer.ip().is_loopback() {
        return StatusCode::FORBIDDEN.into_response();
    }
    if uri.path() == "/__stats" {
        return axum::Json(site.stats()).into_response();
    }
    let Some(host) = site.host_number(&headers) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let name = HostsSpec::host(host);
    site.started(&name);
    tokio::time::sleep(site.spec.delay).await;
    let page = site.page(host, uri.path());
    site.ended(&name);
    match page {
        Some(("text/html", body)) => Html(body).into_response(),
        Some((kind, body)) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_numbers_and_addresses_agree() {
        let site = HostsSite::new(
            HostsSpec {
                hosts: 1_000,
                products: 3,
                delay: Duration::ZERO,
            },
            8080,
        );
        for i in [0, 1, 253, 254, 999] {
            let mut headers = HeaderMap::new();
            let host = format!("{}:8080", HostsSpec::host(i));
            headers.insert(header::HOST, host.parse().expect("header"));
            assert_eq!(site.host_number(&headers), Some(i), "{host}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.9.9:8080".parse().expect("header"));
        assert_eq!(site.host_number(&headers), None, "beyond the last host");
        let (_, index) = site.page(999, "/").expect("index");
        assert!(
            index.contains("http://127.0.1.1:8080/"),
            "the last host links the first"
        );
        assert!(site.page(0, "/p/3").is_none());
        assert!(spindle_common::Project::parse(&site.spec.project_toml("h", 8080, 2)).is_ok());
    }
}
