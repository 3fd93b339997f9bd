//! Helpers shared by the fetcher's tests: local axum servers (plain and TLS), task
//! builders, and the Chromium check of browser tests.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod proxy;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::serve::ListenerExt;
use spindle_common::Task;
use spindle_common::message::FetchOptions;
use spindle_fetcher::{Fetcher, FetcherConfig};

/// A server for `router` on 127.0.0.1, an ephemeral port, running until the test ends.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl TestServer {
    /// Starts serving `router`.
    pub async fn start(router: Router) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("test server runs");
        });
        TestServer { addr, connections }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A task for `url` that may reach private addresses (the test server is on loopback).
pub fn task(url: impl Into<String>) -> Task {
    Task {
        taskid: "t".into(),
        fetch: FetchOptions {
            allow_private: true,
            ..FetchOptions::default()
        },
        ..Task::new("test", &url.into(), "start")
    }
}

/// A fetcher with the default configuration.
pub fn fetcher() -> Fetcher {
    Fetcher::new(&FetcherConfig::default()).expect("fetcher builds")
}

/// A fetcher for browser tests, or `None` (with the reason printed) when Chromium is not
/// installed. Under `CI=true` a missing Chromium fails the test instead.
pub fn chromium_fetcher(max_tabs: usize) -> Option<Fetcher> {
    let path = std::path::PathBuf::from(spindle_fetcher::config::DEFAULT_CHROMIUM_PATH);
    let installed = if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "not found at {} (apt-get install -y chromium)",
            path.display()
        ))
    };
    spindle_testkit::require_service("Chromium", installed)?;
    let config = FetcherConfig {
        chromium_path: Some(path),
        max_tabs,
        ..FetcherConfig::default()
    };
    Some(Fetcher::new(&config).expect("fetcher builds"))
}
