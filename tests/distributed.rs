//! Distributed mode end to end: 1 scheduler, 3 fetchers, 2 processors and 1 result writer as
//! separate `spindle` processes on the real NATS and PostgreSQL, crawling a generated site of
//! over 5,000 pages while one fetcher and one processor are killed with SIGKILL, `spindle
//! status` lists the survivors, and another fetcher is stopped with SIGTERM.

mod support;

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::site::SiteSpec;
use spindle_common::Store;
use support::{PgTestDb, by_url, exported, run, serve, spindle, write};

const NATS: &str = "nats://127.0.0.1:4222";
struct Role {
    name: String,
    child: Child,
}

fn start(
    role: &str,
    tag: u32,
    extra: &[&str],
    namespace: &str,
    db: &str,
    log: &std::path::Path,
) -> Role {
    let name = format!("{role}-{tag}");
    let stderr = std::fs::File::create(log.join(format!("{name}.log"))).expect("log file");
    let child = spindle()
        .arg(role)
        .args(extra)
        .args([
            "--nats",
            NATS,
            "--namespace",
            namespace,
            "--database",
            db,
            "--ack-wait",
            "5s",
        ])
        .env("SPINDLE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn role");
    Role { name, child }
}

fn terminate(role: &mut Role) -> std::process::ExitStatus {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &role.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = role.child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            role.child.kill().ok();
            panic!("{} did not stop on SIGTERM", role.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages a role reports done when it stops (its last log line).
fn done_count(log: &std::path::Path, name: &str) -> u64 {
    let text = std::fs::read_to_string(log.join(format!("{name}.log"))).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("stopped"))
        .find_map(|l| {
            l.split("done=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_processes_crawl_through_crashes_with_every_item_once() {
    if !support::require_nats().await {
        return;
    }
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let served = serve(SiteSpec {
        products: 5_000,
        ..SiteSpec::small()
    });
    let pages = served.site.spec().pages();
    assert!(pages >= 5_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).expect("projects dir");
    let toml = served
        .site
        .project_toml("dist", &served.base)
        .replace("rate = 100000", "rate = 300")
        .replace("burst = 100000", "burst = 50");
    write(&projects, "dist.toml", &toml);
    let namespace = format!("t{}", std::process::id());
    let log = dir.path();
    let p = projects.to_str().expect("utf-8");

    let mut roles = vec![start(
        "scheduler",
        0,
        &["--projects", p],
        &namespace,
        &db.url,
        log,
    )];
    for i in 1..=3 {
        roles.push(start(
            "fetcher",
            i,
            &["--concurrency", "64"],
            &namespace,
            &db.url,
            log,
        ));
    }
    for i in 1..=2 {
        roles.push(start("processor", i, &[], &namespace, &db.url, log));
    }
    roles.push(start("result-writer", 0, &[], &namespace, &db.url, log));

    // Kill a fetcher and a processor a third of the way in.
    let start_time = Instant::now();
    while served.hits.total() < pages / 3 {
        assert!(
            start_time.elapsed() < Duration::from_secs(180),
            "the crawl did not get going"
        );
        for r in roles.iter_mut() {
            assert!(
                r.child.try_wait().expect("wait").is_none(),
                "{} exited early",
                r.name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for victim in ["fetcher-1", "processor-1"] {
        let i = roles.iter().position(|r| r.name == victim).expect("victim");
        let mut r = roles.remove(i);
        r.child.kill().expect("SIGKILL");
        r.child.wait().expect("reaped");
    }

    // `spindle status` lists the live instances (from their heartbeats) and every queue.
    let status = run(
        &["status", "--nats", NATS, "--namespace", &namespace],
        Duration::from_secs(30),
    );
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "status failed: {table}");
    let live_roles = |role: &str| {
        table
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(role))
            .count()
    };
    for (role, live) in [
        ("scheduler", 1),
        ("fetcher", 2),
        ("processor", 1),
        ("result-writer", 1),
    ] {
        assert_eq!(live_roles(role), live, "live {role}s in\n{table}");
    }
    assert!(
        table.contains(env!("CARGO_PKG_VERSION")),
        "versions in\n{table}"
    );
    for queue in ["fetcher", "processor", "result-writer", "scheduler"] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(queue)
                    && l.split_whitespace().count() == 3),
            "queue {queue} in\n{table}"
        );
    }

    // A fetcher stopped with SIGTERM mid-crawl exits 0 at once; the crawl goes on without it.
    assert!(
        served.hits.total() < pages,
        "the crawl is still running when the fetcher is stopped"
    );
    let i = roles
        .iter()
        .position(|r| r.name == "fetcher-2")
        .expect("fetcher-2");
    let mut stopped = roles.remove(i);
    let status = terminate(&mut stopped);
    assert!(status.success(), "fetcher-2 exits 0 on SIGTERM: {status}");

    let store: Arc<dyn Store> = spindle_store::connect(&db.url).await.expect("store");
    let products = served.site.products().len() as u64;
    let finish = Instant::now();
    loop {
        assert!(
            finish.elapsed() < Duration::from_secs(300),
            "the crawl did not finish"
        );
        let counts = store.task_counts("dist").await.expect("counts");
        let items = store.count_results("dist").await.expect("items");
        if counts.queued + counts.claimed == 0 && counts.success > 0 && items == products {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    for r in roles.iter_mut() {
        let status = terminate(r);
        assert!(status.success(), "{} exits 0 on SIGTERM: {status}", r.name);
    }
    let items = exported("dist", &["--database", &db.url]);
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
    assert!(
        served.hits.max_per_url() <= 4,
        "a URL is fetched again only after a crash"
    );

    for name in ["fetcher-2", "fetcher-3"] {
        let done = done_count(log, name);
        assert!(
            done > 0,
            "surviving {name} took a share of the work (done={done})"
        );
    }
    assert!(
        done_count(log, "fetcher-3") > done_count(log, "fetcher-2"),
        "the last fetcher finished the crawl"
    );
    drop(store);
    support::delete_nats_namespace(&namespace).await;
    db.destroy().await;
}
