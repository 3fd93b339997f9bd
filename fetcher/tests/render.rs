//! Rendering in headless Chromium: content made by scripts, `wait_for`, network idle,
//! script results, viewport, image blocking, screenshots, the bound on tabs, and a browser
//! killed mid-render (the task fails retryably, the next succeeds, no Chromium process is
//! left behind).
//!
//! Each test skips with a printed reason when Chromium is not installed, unless `CI=true`.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use base64::Engine;
use common::{TestServer, chromium_fetcher, task};
use serde_json::json;
use spindle_common::Task;
use spindle_common::message::{ErrorKind, FetchMode, JsOptions};
use spindle_fetcher::{Fetcher, FetcherConfig};
use tokio::sync::mpsc;

/// A page whose content is written by a script 300 ms after load; the words never appear
/// in the HTML source as they are in the DOM.
const LATE_PAGE: &str = r#"<!doctype html><html><head><title>Late</title></head><body>
<div id="app"></div>
<script>
setTimeout(function () {
  var p = document.createElement('p');
  p.className = 'la' + 'te';
  p.textContent = 'ren' + 'dered by script';
  document.getElementById('app').appendChild(p);
}, 300);
</script></body></html>"#;

/// A page that loads its data with fetch() after load.
const IDLE_PAGE: &str = r#"<!doctype html><html><body><ul id="list"></ul>
<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    fetch('/data').then(r => r.text()).then(t => {
      var li = document.createElement('li'); li.textContent = t;
      document.getElementById('list').appendChild(li);
    });
  }, 100);
});
</script></body></html>"#;

const IMAGE_PAGE: &str =
    r#"<!doctype html><html><body><img src="/pixel.png"><p>pictured</p></body></html>"#;

/// A 1×1 transparent PNG.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn app(image_hits: Arc<AtomicUsize>, stall_started: mpsc::UnboundedSender<()>) -> Router {
    Router::new()
        .route("/late", get(|| async { Html(LATE_PAGE) }))
        .route("/idle", get(|| async { Html(IDLE_PAGE) }))
        .route(
            "/data",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "loaded later"
            }),
        )
        .route("/image", get(|| async { Html(IMAGE_PAGE) }))
        .route(
            "/pixel.png",
            get(move || {
                image_hits.fetch_add(1, Ordering::SeqCst);
                async { ([(header::CONTENT_TYPE, "image/png")], PIXEL) }
            }),
        )
        .route(
            "/stalling",
            get(|| async {
                Html(r#"<html><body><p>waiting</p><script src="/stall.js"></script></body></html>"#)
            }),
        )
        .route(
            "/stall.js",
            get(move || {
                let _ = stall_started.send(());
                async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "/* never */"
                }
            }),
        )
}

struct Site {
    server: TestServer,
    image_hits: Arc<AtomicUsize>,
    stall_started: mpsc::UnboundedReceiver<()>,
}

async fn site() -> Site {
    let image_hits = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    Site {
        server: TestServer::start(app(image_hits.clone(), tx)).await,
        image_hits,
        stall_started: rx,
    }
}

fn js_task(url: String, js: JsOptions) -> Task {
    let mut t = task(url);
    t.fetch.mode = FetchMode::Js;
    t.fetch.js = Some(js);
    t.fetch.timeout_ms = Some(30_000);
    t
}

#[tokio::test]
async fn script_made_content_exists_only_when_rendered() {
    let Some(fetcher) = chromium_fetcher(2) else {
        return;
    };
    let site = site().await;
    let plain = fetcher
        .fetch(&task(site.server.url("/late")))
        .await
        .expect("plain fetch");
    assert!(!plain.text.contains("rendered by script"), "{}", plain.text);

    let js = JsOptions {
        wait_for: Some("p.late".into()),
        ..JsOptions::default()
    };
    let page = fetcher
        .fetch(&js_task(site.server.url("/late"), js))
        .await
        .expect("rendered");
    assert!(
        page.text
            .contains(r#"<p class="late">rendered by script</p>"#),
        "{}",
        page.text
    );
    assert!(page.text.starts_with("<html>"), "{}", page.text);
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html");
    assert_eq!(page.url, site.server.url("/late"));

    // A selector that never matches fails the task within the wait.
    let js = JsOptions {
        wait_for: Some("p.never".into()),
        wait_ms: Some(500),
        ..JsOptions::default()
    };
    let started = Instant::now();
    let err = fetcher
        .fetch(&js_task(site.server.url("/late"), js))
        .await
        .expect_err("never matches");
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    assert!(err.message.contains("p.never"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(10));

    // The browser is still fine after that.
    let page = fetcher
        .fetch(&js_task(site.server.url("/late"), JsOptions::default()))
        .await
        .expect("rendered again");
    assert!(page.text.contains("id=\"app\""));
    fetcher.shutdown().await;
}

#[tokio::test]
async fn scripts_viewport_screenshots_network_idle_and_blocked_images() {
    let Some(fetcher) = chromium_fetcher(2) else {
        return;
    };
    let site = site().await;

    let js = JsOptions {
        script: Some(
            "new Promise(r => setTimeout(() => r({title: document.title, size: [innerWidth, innerHeight]}), 50))"
                .into(),
        ),
        viewport: Some((800, 600)),
        screenshot: true,
        ..JsOptions::default()
    };
    let page = fetcher
        .fetch(&js_task(site.server.url("/late"), js))
        .await
        .expect("rendered");
    assert_eq!(
        page.script_result,
        Some(json!({"title": "Late", "size": [800, 600]}))
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(page.screenshot_png_base64.expect("a screenshot"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 100);

    let js = JsOptions {
        script: Some("throw new Error('boom')".into()),
        ..JsOptions::default()
    };
    let err = fetcher
        .fetch(&js_task(site.server.url("/late"), js))
        .await
        .expect_err("script throws");
    assert_eq!(err.kind, ErrorKind::Other);
    assert!(err.message.contains("boom"), "{}", err.message);
    assert!(!err.retryable);

    let js = JsOptions {
        network_idle: true,
        ..JsOptions::default()
    };
    let page = fetcher
        .fetch(&js_task(site.server.url("/idle"), js))
        .await
        .expect("rendered");
    assert!(page.text.contains("<li>loaded later</li>"), "{}", page.text);

    let js = JsOptions {
        block_images: true,
        ..JsOptions::default()
    };
    let page = fetcher
        .fetch(&js_task(site.server.url("/image"), js))
        .await
        .expect("rendered");
    assert!(page.text.contains("pictured"));
    assert_eq!(site.image_hits.load(Ordering::SeqCst), 0, "image blocked");
    fetcher
        .fetch(&js_task(site.server.url("/image"), JsOptions::default()))
        .await
        .expect("rendered");
    assert_eq!(site.image_hits.load(Ordering::SeqCst), 1, "image loaded");
    fetcher.shutdown().await;
}

#[tokio::test]
async fn without_chromium_js_tasks_fail_clearly_and_http_goes_on() {
    let config = FetcherConfig {
        chromium_path: Some("/nonexistent/chromium".into()),
        ..FetcherConfig::default()
    };
    let fetcher = Fetcher::new(&config).expect("fetcher builds");
    let site = site().await;
    for _ in 0..2 {
        let err = fetcher
            .fetch(&js_task(site.server.url("/late"), JsOptions::default()))
            .await
            .expect_err("no browser");
        assert_eq!(err.kind, ErrorKind::Other);
        assert!(!err.retryable);
        assert!(
            err.message
                .contains("Chromium not found at /nonexistent/chromium"),
            "{}",
            err.message
        );
    }
    let page = fetcher
        .fetch(&task(site.server.url("/late")))
        .await
        .expect("plain HTTP still works");
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn the_guard_and_robots_apply_to_rendered_pages() {
    let Some(fetcher) = chromium_fetcher(1) else {
        return;
    };
    let site = site().await;
    let mut t = js_task(site.server.url("/late"), JsOptions::default());
    t.fetch.allow_private = false;
    let err = fetcher.fetch(&t).await.expect_err("loopback refused");
    assert_eq!(err.kind, ErrorKind::Refused);
    // A name that resolves to loopback too, even with robots.txt off.
    let port = site.server.addr.port();
    let mut t = js_task(
        format!("http://localhost:{port}/late"),
        JsOptions::default(),
    );
    t.fetch.allow_private = false;
    t.fetch.robots = Some(false);
    let err = fetcher.fetch(&t).await.expect_err("localhost refused");
    assert_eq!(err.kind, ErrorKind::Refused, "{}", err.message);
    assert_eq!(fetcher.browser_pid(), None, "no browser was needed");

    // robots.txt is asked for the page URL of a rendered task too.
    let robots = TestServer::start(Router::new().route(
        "/robots.txt",
        get(|| async { "User-agent: *\nDisallow: /late\n" }),
    ))
    .await;
    let t = js_task(robots.url("/late"), JsOptions::default());
    let err = fetcher.fetch(&t).await.expect_err("disallowed");
    assert_eq!(err.message, "disallowed by robots.txt");
    assert_eq!(fetcher.browser_pid(), None, "no browser was needed");
}

/// Process ids of every process (zombies included) whose process group is in `groups`.
fn processes_in_groups(groups: &HashSet<u32>) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp …
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if let Some(pgrp) = fields.get(2).and_then(|g| g.parse::<u32>().ok())
            && groups.contains(&pgrp)
        {
            found.push(format!("{pid} {stat}"));
        }
    }
    found
}

#[tokio::test]
async fn a_browser_killed_mid_render_is_restarted_and_reaped() {
    let Some(fetcher) = chromium_fetcher(2) else {
        return;
    };
    let fetcher = Arc::new(fetcher);
    let mut site = site().await;

    // Start the browser and check it renders.
    fetcher
        .fetch(&js_task(site.server.url("/late"), JsOptions::default()))
        .await
        .expect("first render");
    let first_pid = fetcher.browser_pid().expect("a browser runs");

    // A render that hangs on a script, then the whole browser is killed under it.
    let stalled = {
        let (fetcher, url) = (fetcher.clone(), site.server.url("/stalling"));
        tokio::spawn(async move { fetcher.fetch(&js_task(url, JsOptions::default())).await })
    };
    tokio::time::timeout(Duration::from_secs(20), site.stall_started.recv())
        .await
        .expect("the render reached the stalling script");
    let killed_at = Instant::now();
    let group = nix::unistd::Pid::from_raw(i32::try_from(first_pid).expect("pid fits"));
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).expect("kill the browser");
    let err = stalled
        .await
        .expect("no panic")
        .expect_err("the render fails");
    assert_eq!(err.kind, ErrorKind::Browser, "{}", err.message);
    assert!(err.retryable);
    assert!(
        killed_at.elapsed() < Duration::from_secs(10),
        "noticed in {:?}",
        killed_at.elapsed()
    );

    // The next attempt gets a new browser and succeeds.
    let page = fetcher
        .fetch(&js_task(
            site.server.url("/late"),
            JsOptions {
                wait_for: Some("p.late".into()),
                ..JsOptions::default()
            },
        ))
        .await
        .expect("rendered after the restart");
    assert!(page.text.contains("rendered by script"));
    let second_pid = fetcher.browser_pid().expect("a browser runs");
    assert_ne!(first_pid, second_pid);

    fetcher.shutdown().await;
    assert_eq!(fetcher.browser_pid(), None);
    let groups = HashSet::from([first_pid, second_pid]);
    let left = processes_in_groups(&groups);
    assert!(left.is_empty(), "leftover browser processes: {left:#?}");
    let ps = std::process::Command::new("ps")
        .args(["-eo", "pid,pgid,stat,args"])
        .output()
        .expect("ps runs");
    let ps = String::from_utf8_lossy(&ps.stdout);
    for line in ps.lines() {
        let mut cols = line.split_whitespace();
        let (_pid, pgid) = (cols.next(), cols.next().and_then(|g| g.parse::<u32>().ok()));
        assert!(
            !pgid.is_some_and(|g| groups.contains(&g)),
            "ps still shows a browser process: {line}"
        );
    }
}

#[tokio::test]
async fn a_hung_browser_is_found_out_killed_and_replaced() {
    let Some(fetcher) = chromium_fetcher(2) else {
        return;
    };
    let site = site().await;
    fetcher
        .fetch(&js_task(site.server.url("/late"), JsOptions::default()))
        .await
        .expect("first render");
    let hung_pid = fetcher.browser_pid().expect("a browser runs");
    let group = nix::unistd::Pid::from_raw(i32::try_from(hung_pid).expect("pid fits"));

    // Freeze every browser process: it neither answers nor exits.
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGSTOP).expect("stop the browser");
    let mut t = js_task(site.server.url("/late"), JsOptions::default());
    t.fetch.timeout_ms = Some(2_000);
    let err = fetcher
        .fetch(&t)
        .await
        .expect_err("the render cannot finish");
    assert!(err.retryable, "{err:?}");

    // The failed render's health check gives up on the frozen browser and kills it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fetcher.browser_pid() == Some(hung_pid) {
        assert!(
            Instant::now() < deadline,
            "the hung browser was not replaced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = fetcher
        .fetch(&js_task(site.server.url("/late"), JsOptions::default()))
        .await
        .expect("rendered by a new browser");
    assert!(page.text.contains("id=\"app\""));
    let new_pid = fetcher.browser_pid().expect("a browser runs");
    assert_ne!(new_pid, hung_pid);
    fetcher.shutdown().await;
    let left = processes_in_groups(&HashSet::from([hung_pid, new_pid]));
    assert!(left.is_empty(), "leftover browser processes: {left:#?}");
}

#[tokio::test]
async fn no_more_renders_run_at_once_than_the_tab_pool_holds() {
    let Some(fetcher) = chromium_fetcher(2) else {
        return;
    };
    // The page's server counts the renders loading it at once.
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (now.clone(), most.clone());
    let server = TestServer::start(Router::new().route(
        "/slow/{id}",
        get(move || {
            let (now, most) = (n.clone(), m.clone());
            async move {
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(at_once, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Html("<p>slow</p>")
            }
        }),
    ))
    .await;
    let fetcher = Arc::new(fetcher);
    let renders: Vec<_> = (0..6)
        .map(|id| {
            let (fetcher, url) = (fetcher.clone(), server.url(&format!("/slow/{id}")));
            tokio::spawn(async move { fetcher.fetch(&js_task(url, JsOptions::default())).await })
        })
        .collect();
    for render in renders {
        let page = render.await.expect("no panic").expect("rendered");
        assert!(page.text.contains("<p>slow</p>"));
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "two tabs: never more than two pages loading, and both used"
    );
    fetcher.shutdown().await;
}
