//! Shared pieces of the end-to-end tests: a generated site served on 127.0.0.1, and the
//! `spindle` binary.

#![allow(dead_code)] // each test file uses its own part of this module

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use spindle::site::{Hits, Site, SiteSpec};
use tokio_util::sync::CancellationToken;

/// A server the test started; it stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Runs `serve` on a listener bound to 127.0.0.1 (a port of its own) from a runtime on a
/// thread of its own, so it keeps answering whatever the test's own runtime does; `serve`
/// returns when the token it is given is cancelled.
pub fn serve_on_own_thread<F, Fut>(serve: F) -> Server
where
    F: FnOnce(tokio::net::TcpListener, CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let stop = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let st = stop.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            serve(listener, st).await;
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server started");
    Server {
        base: format!("http://{addr}"),
        stop,
    }
}

/// Serves `app` with [`serve_on_own_thread`], until the returned server is dropped.
pub fn serve_router(app: axum::Router) -> Server {
    serve_on_own_thread(move |listener, stop| async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .expect("site serves");
    })
}

/// Crawls the project file `project` with `spindle crawl` in a folder of its own (its data
/// there too), checking it succeeded: its items and its stderr.
pub fn crawl_project(project: &str) -> (Vec<serde_json::Map<String, serde_json::Value>>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "project.toml", project);
    let out = dir.path().join("items.jsonl");
    let output = run(
        &[
            "crawl",
            path.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
            "--data",
            dir.path().join("data").to_str().expect("utf-8"),
        ],
        Duration::from_secs(300),
    );
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "crawl failed:\n{stderr}");
    let items = jsonl(&std::fs::read_to_string(&out).expect("output file"));
    (items, stderr)
}

/// A generated site served by the test on a port of its own.
pub struct ServedSite {
    pub site: Arc<Site>,
    pub hits: Arc<Hits>,
    pub base: String,
    _server: Server,
}

impl ServedSite {
    /// Waits until the site has answered `requests` requests, failing the test after `limit`.
    pub async fn wait_for_requests(&self, requests: u64, limit: Duration) {
        let start = std::time::Instant::now();
        while self.hits.total() < requests {
            assert!(start.elapsed() < limit, "the crawl did not get going");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Serves a site of `spec` (see [`serve_on_own_thread`]).
pub fn serve(spec: SiteSpec) -> ServedSite {
    let site = Arc::new(Site::new(spec));
    let hits = Arc::new(Hits::new());
    let (s, h) = (site.clone(), hits.clone());
    let server = serve_on_own_thread(move |listener, stop| async move {
        spindle::site::serve(s, h, listener, async move { stop.cancelled().await })
            .await
            .expect("serve");
    });
    ServedSite {
        site,
        hits,
        base: server.base.clone(),
        _server: server,
    }
}

/// The `spindle` binary built for these tests.
pub fn spindle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
}

/// Runs `spindle` with `args`, failing the test if it does not end within `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    let child = spindle()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spindle");
    wait_output(child, limit)
}

/// Waits for `child`, killing it and failing the test after `limit`. Its output is read
/// while it runs, so a child writing more than a pipe holds does not block.
pub fn wait_output(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let output = rx.recv().expect("output after kill").expect("output");
            panic!(
                "spindle did not finish within {limit:?}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// Parses JSON Lines.
pub fn jsonl(text: &str) -> Vec<Map<String, Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect()
}

/// The items of `spindle export PROJECT STORE_ARGS...` keyed by URL, asserting the export
/// succeeds and no URL appears twice.
pub fn exported(
    project: &str,
    store_args: &[&str],
) -> std::collections::BTreeMap<String, Map<String, Value>> {
    let args: Vec<&str> = ["export", project]
        .iter()
        .chain(store_args)
        .copied()
        .collect();
    let output = run(&args, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    by_url(jsonl(&String::from_utf8_lossy(&output.stdout)))
}

/// Items keyed by their `url` field, asserting no url appears twice.
pub fn by_url(
    items: Vec<Map<String, Value>>,
) -> std::collections::BTreeMap<String, Map<String, Value>> {
    let mut map = std::collections::BTreeMap::new();
    for item in items {
        let url = item["url"].as_str().expect("url field").to_string();
        assert!(
            map.insert(url.clone(), item).is_none(),
            "item for {url} appears twice"
        );
    }
    map
}

pub use spindle_testkit::{PgTestDb, require_service};

/// Deletes the streams a test left on the shared NATS server under `namespace`.
pub async fn delete_nats_namespace(namespace: &str) {
    let options = spindle_nats::NatsOptions::new("nats://127.0.0.1:4222").namespace(namespace);
    if let Ok(bus) = spindle_nats::NatsBus::connect(options).await {
        let _ = bus.delete_streams().await;
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the machine's NATS server answers; prints a skip reason (or fails under CI=true)
/// when it does not.
pub async fn require_nats() -> bool {
    let attempt = tokio::net::TcpStream::connect("127.0.0.1:4222").await;
    require_service("NATS at 127.0.0.1:4222", attempt).is_some()
}

/// Runs `checks` with the `spindle crawl` arguments that put its roles on the machine's NATS
/// (a namespace of its own, `tag` plus this process id) and on a fresh PostgreSQL database,
/// then removes both; skips with a printed reason without them (fails under `CI=true`).
pub async fn on_nats_and_postgres(tag: &str, checks: impl FnOnce(&[&str]) + Send + 'static) {
    if !require_nats().await {
        return;
    }
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let namespace = format!("{tag}{}", std::process::id());
    let (ns, url) = (namespace.clone(), db.url.clone());
    tokio::task::spawn_blocking(move || {
        checks(&[
            "--nats",
            "nats://127.0.0.1:4222",
            "--namespace",
            &ns,
            "--database",
            &url,
        ]);
    })
    .await
    .expect("checks pass");
    delete_nats_namespace(&namespace).await;
    db.destroy().await;
}

/// Starts `spindle all` on a data folder and a projects folder, its web UI on `bind`.
pub fn start_all(data: &str, projects: &str, bind: &str) -> Child {
    spindle()
        .args([
            "all",
            "--data",
            data,
            "--projects",
            projects,
            "--bind",
            bind,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn spindle all")
}

/// One HTTP/1.1 request to `bind` (`host:port`) with an optional JSON body: the status and
/// the body as text, or `None` if the server does not answer (not started yet, or gone).
pub fn http(bind: &str, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(bind).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {bind}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// [`http`] with the answer read as JSON (`Null` if it is not JSON).
pub fn http_json(
    bind: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let (status, text) = http(bind, method, path, body)?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The web UI's `/api/projects` rows by project name, if it answers.
pub fn web_ui_projects(bind: &str) -> Option<Value> {
    let (_, rows) = http_json(bind, "GET", "/api/projects", None)?;
    let by_name = rows
        .as_array()?
        .iter()
        .filter_map(|row| Some((row["name"].as_str()?.to_string(), row.clone())))
        .collect::<Map<String, Value>>();
    Some(Value::Object(by_name))
}
