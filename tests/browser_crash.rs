//! Chromium killed mid-render under a real `spindle crawl`: the task fails once with a
//! browser error, the scheduler retries it, the retry renders in a new browser and yields the
//! item, and once the crawl has exited no Chromium process of it is left.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use serde_json::Value;
use support::{jsonl, serve_on_own_thread, spindle, wait_output, write};
use tokio_util::sync::CancellationToken;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The page: its first rendering waits for a script that never arrives; later ones render.
#[derive(Default)]
struct Page {
    renders: AtomicUsize,
    hanging: AtomicUsize,
}

async fn page(State(page): State<Arc<Page>>) -> Html<&'static str> {
    if page.renders.fetch_add(1, Ordering::SeqCst) == 0 {
        Html("<html><body><h1>stuck</h1><script src=\"/hang.js\"></script></body></html>")
    } else {
        Html(
            "<html><body><script>document.body.insertAdjacentHTML('beforeend', \
             '<h1>rendered</h1>')</script></body></html>",
        )
    }
}

/// Never answers (until the server stops), so the first rendering never finishes loading.
async fn hang(State((page, stop)): State<(Arc<Page>, CancellationToken)>) -> &'static str {
    page.hanging.fetch_add(1, Ordering::SeqCst);
    stop.cancelled().await;
    ""
}

/// `(pid, ppid, pgrp, command)` of every process.
fn processes() -> Vec<(u32, u32, u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let command = head.split_once('(').map_or("", |(_, c)| c).to_string();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(ppid), Some(pgrp)) = (
            fields.get(1).and_then(|f| f.parse().ok()),
            fields.get(2).and_then(|f| f.parse().ok()),
        ) {
            found.push((pid, ppid, pgrp, command));
        }
    }
    found
}

/// Process groups of the Chromium processes whose parent is `parent`: the browsers it
/// started (each leads a group of its own) and their crash handlers, which Chromium starts in
/// groups of their own and which the fetcher, a subreaper, inherits.
fn chromium_groups(parent: u32, only: &str) -> HashSet<u32> {
    processes()
        .into_iter()
        .filter(|(_, ppid, _, command)| *ppid == parent && command.starts_with(only))
        .map(|(_, _, pgrp, _)| pgrp)
        .collect()
}

#[test]
fn a_browser_killed_mid_render_fails_the_task_once_and_the_retry_succeeds() {
    if support::require_service(
        "Chromium",
        std::fs::metadata(CHROMIUM).map_err(|e| format!("{CHROMIUM}: {e}")),
    )
    .is_none()
    {
        return;
    }
    let state = Arc::new(Page::default());
    let served = state.clone();
    let server = serve_on_own_thread(move |listener, stop| async move {
        let app = Router::new()
            .route("/", get(page).with_state(served.clone()))
            .route("/hang.js", get(hang).with_state((served, stop.clone())))
            .route("/robots.txt", get(|| async { "" }));
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .expect("serve");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write(
        dir.path(),
        "render.toml",
        &format!(
            r#"name = "render"
start = ["{}/"]
allow_private = true

[defaults]
fetch = "js"
timeout = "60s"
retries = 2
retry_delays = ["1s"]

[handlers.start]
item.title = {{ css = "h1" }}
"#,
            server.base
        ),
    );
    let out = dir.path().join("items.jsonl");
    let child = spindle()
        .args(["crawl", project.to_str().expect("utf-8"), "-o"])
        .arg(&out)
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn spindle crawl");
    let crawl = child.id();

    // Once the first rendering waits for its script, kill the whole browser.
    let started = Instant::now();
    let mut groups = HashSet::new();
    while state.hanging.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first rendering never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = chromium_groups(crawl, "chromium");
    assert_eq!(first.len(), 1, "one browser runs: {first:?}");
    groups.extend(chromium_groups(crawl, "chrom"));
    for group in &first {
        let pgrp = nix::unistd::Pid::from_raw(i32::try_from(*group).expect("pid fits"));
        nix::sys::signal::killpg(pgrp, nix::sys::signal::Signal::SIGKILL).expect("kill browser");
    }
    groups.extend(first.iter().copied());
    // Note the replacement browser while the retry renders.
    let watcher = {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // (browsers, every Chromium process group)
        let seen = Arc::new(std::sync::Mutex::new((HashSet::new(), HashSet::new())));
        let (s, g) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let mut seen = g.lock().expect("lock");
                seen.0.extend(chromium_groups(crawl, "chromium"));
                seen.1.extend(chromium_groups(crawl, "chrom"));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        (stop, seen, thread)
    };

    let output = wait_output(child, Duration::from_secs(120));
    watcher.0.store(true, Ordering::SeqCst);
    watcher.2.join().expect("watcher");
    let (browsers, all) = watcher.1.lock().expect("lock").clone();
    groups.extend(all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "crawl failed: {stderr}");

    let items = jsonl(&std::fs::read_to_string(&out).expect("items file"));
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["title"], Value::from("rendered"));
    assert_eq!(
        state.renders.load(Ordering::SeqCst),
        2,
        "rendered twice: the killed attempt and its retry"
    );
    assert!(
        browsers.iter().any(|g| !first.contains(g)),
        "a new browser rendered the retry: {groups:?}"
    );
    assert!(
        stderr.contains("0 errors"),
        "the task did not fail for good: {stderr}"
    );

    // Nothing of any browser of the crawl is left, not even a zombie.
    let left: Vec<_> = processes()
        .into_iter()
        .filter(|(_, _, pgrp, _)| groups.contains(pgrp))
        .collect();
    assert!(
        left.is_empty(),
        "leftover browser processes: {left:?}\n{stderr}"
    );
    let ps = std::process::Command::new("ps")
        .args(["-eo", "pgid,args"])
        .output()
        .expect("ps runs");
    for line in String::from_utf8_lossy(&ps.stdout).lines() {
        let pgid = line.split_whitespace().next().and_then(|g| g.parse().ok());
        assert!(
            !pgid.is_some_and(|g: u32| groups.contains(&g)),
            "ps still shows a browser process: {line}"
        );
    }
    drop(server);
}
