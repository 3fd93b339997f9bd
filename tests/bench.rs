//! `spindle bench` end to end: the command of the README runs, checks every item of its
//! crawl and prints each figure; with NATS and PostgreSQL it also runs the distributed crawl.
//! The figures themselves are never asserted (they depend on the machine).

mod support;

use std::time::Duration;

use support::{PgTestDb, require_nats, run};

const LIMIT: Duration = Duration::from_secs(300);

fn assert_embedded_figures(stdout: &str) {
    for label in [
        "site: 300 products, ",
        "embedded crawl: ",
        "pages/s",
        "s from the project's start to its last item; ",
        "items/s: ",
        "CPU ms per page: fetch ",
        "items stored: 300 (expected 300, every one checked)",
        "peak RSS of the crawler: ",
    ] {
        assert!(stdout.contains(label), "{label:?} missing from\n{stdout}");
    }
}

/// Runs `spindle bench` on a 300-product site with `args`, which must succeed and print the
/// embedded figures; its standard output.
fn bench(args: &[&str]) -> String {
    let mut all = vec!["bench", "--products", "300"];
    all.extend_from_slice(args);
    let out = run(&all, LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_embedded_figures(&stdout);
    stdout
}

#[test]
fn bench_crawls_checks_and_reports() {
    bench(&["--concurrency", "32"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_distributed_with_each_fetcher_count() {
    if !require_nats().await {
        return;
    }
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let url = db.url.clone();
    let stdout = tokio::task::spawn_blocking(move || {
        bench(&[
            "--nats",
            "nats://127.0.0.1:4222",
            "--database",
            &url,
            "--fetchers",
            "1,2",
        ])
    })
    .await;
    db.destroy().await;
    let stdout = stdout.expect("bench passes");
    for fetchers in [1, 2] {
        let line = format!("distributed crawl, {fetchers} fetcher(s): ");
        assert!(stdout.contains(&line), "{line:?} missing from\n{stdout}");
    }
    for (line, count) in [
        ("CPU ms per page by process: scheduler", 2),
        ("s from starting the processes", 2),
        ("% of the embedded rate", 2),
    ] {
        assert_eq!(stdout.matches(line).count(), count, "{line:?} in\n{stdout}");
    }
}
