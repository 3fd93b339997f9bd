//! A crawl on NATS JetStream survives a restart of the NATS server in the middle of it: the
//! bus reconnects, publishes retry, pulls are sent again, and every item arrives once.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spindle::site::SiteSpec;
use support::{PgTestDb, by_url, free_port, jsonl, serve, spindle, wait_output, write};

/// A private nats-server with JetStream on `port`, storing in `dir`.
fn nats_server(port: u16, dir: &std::path::Path) -> std::io::Result<Child> {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(std::io::Error::other("nats-server did not start"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_completes_across_a_nats_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("nats");
    let port = free_port();
    let Some(mut nats) =
        support::require_service("the nats-server program", nats_server(port, &store_dir))
    else {
        return;
    };
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let served = serve(SiteSpec {
        products: 1_500,
        ..SiteSpec::small()
    });
    let toml = served
        .site
        .project_toml("shop", &served.base)
        .replace("rate = 100000", "rate = 300")
        .replace("burst = 100000", "burst = 20");
    let project = write(dir.path(), "shop.toml", &toml);
    let out = dir.path().join("items.jsonl");
    let nats_url = format!("nats://127.0.0.1:{port}");
    let crawl = spindle()
        .args([
            "crawl",
            project.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ])
        .args(["--nats", &nats_url, "--database", &db.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crawl");

    let pages = served.site.spec().pages();
    served
        .wait_for_requests(pages / 3, Duration::from_secs(120))
        .await;
    // A hard stop of the server, then the same server back on the same port and store.
    nats.kill().expect("kill nats");
    nats.wait().expect("reaped");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut nats = nats_server(port, &store_dir).expect("nats restarted");

    let output = tokio::task::spawn_blocking(move || wait_output(crawl, Duration::from_secs(300)))
        .await
        .expect("join");
    nats.kill().ok();
    nats.wait().ok();
    assert!(
        output.status.success(),
        "crawl failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let items = by_url(jsonl(&std::fs::read_to_string(&out).expect("items")));
    assert_eq!(
        items,
        by_url(served.site.expected_items(&served.base)),
        "every item exactly once"
    );
    assert_eq!(
        served.hits.unique(),
        pages + 1,
        "every page and robots.txt fetched"
    );
    db.destroy().await;
}
