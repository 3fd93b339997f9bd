//! `spindle all` killed with SIGKILL mid-crawl and started again on the same data folder
//! finishes the crawl with every item exactly once, re-fetching at most what was in flight.

mod support;

use std::time::{Duration, Instant};

use spindle::site::SiteSpec;
use support::{by_url, exported, free_port, serve, start_all, web_ui_projects, write};

#[test]
fn a_killed_crawl_resumes_and_loses_nothing() {
    let served = serve(SiteSpec {
        products: 3_000,
        ..SiteSpec::small()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).expect("projects dir");
    // A modest rate so the crawl is still running when it is killed.
    let toml = served
        .site
        .project_toml("shop", &served.base)
        .replace("rate = 100000", "rate = 600")
        .replace("burst = 100000", "burst = 50")
        .replace("host_concurrency = 512", "host_concurrency = 64");
    write(&projects, "shop.toml", &toml);
    let data = dir.path().join("data");
    let (data_s, projects_s) = (
        data.to_str().expect("utf-8"),
        projects.to_str().expect("utf-8"),
    );
    let bind = format!("127.0.0.1:{}", free_port());
    let pages = served.site.spec().pages();

    let mut first = start_all(data_s, projects_s, &bind);
    let start = Instant::now();
    while served.hits.total() < pages / 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "crawl did not get going"
        );
        assert!(
            first.try_wait().expect("wait").is_none(),
            "spindle all exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let fetched_before = served.hits.total();
    assert!(fetched_before < pages, "killed before the end");

    let mut second = start_all(data_s, projects_s, &bind);
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "restarted crawl did not finish"
        );
        assert!(
            second.try_wait().expect("wait").is_none(),
            "spindle all exited early"
        );
        if web_ui_projects(&bind).is_some_and(|f| f["shop"]["finished"] == true) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The UI's /metrics (Prometheus) has the figures of every in-process role.
    let (code, metrics) = support::http(&bind, "GET", "/metrics", None).expect("/metrics");
    assert_eq!(code, 200, "{metrics}");
    let sample = |name: &str, labels: &[&str]| -> f64 {
        metrics
            .lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let shop = "project=\"shop\"";
    assert_eq!(
        sample("spindle_tasks", &[shop, "status=\"success\""])
            + sample("spindle_tasks", &[shop, "status=\"failed\""]),
        pages as f64,
        "one task per page:\n{metrics}"
    );
    let fetched = sample("spindle_pages_fetched_total", &[shop, "role=\"all\""]);
    assert!(
        fetched > 0.0 && fetched <= (served.hits.total() - fetched_before) as f64,
        "the second process counts the pages it fetched ({fetched}):\n{metrics}"
    );
    assert!(sample("spindle_items_written_total", &[shop]) > 0.0);
    // A clean stop (SIGTERM) exits 0.
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    let status = second.wait().expect("wait");
    assert!(status.success(), "clean stop exits 0: {status}");

    let items = exported("shop", &["--data", data_s]);
    let expected = by_url(served.site.expected_items(&served.base));
    assert_eq!(
        items, expected,
        "every item exactly once, with the right values"
    );

    // robots.txt is fetched once by each of the two processes.
    assert_eq!(served.hits.count("/robots.txt"), 2);
    assert_eq!(served.hits.unique(), pages + 1, "every URL fetched");
    let refetched = served.hits.total() - served.hits.unique() - 1;
    // Only what was claimed when the process died can be fetched again: at most the
    // in-flight bound of a host (64 in this project) plus what was in the fetch queue.
    assert!(
        refetched <= 64,
        "re-fetched {refetched} pages after the restart"
    );
    assert!(served.hits.max_per_url() <= 2);
}
