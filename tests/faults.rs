//! Single points of the distributed loop killed mid-crawl: the scheduler and the result writer
//! are each stopped with SIGKILL while a crawl runs on NATS and PostgreSQL, started again,
//! and the crawl still ends with every item exactly once and every page fetched.
//!
//! The roles are separate `spindle` processes (one scheduler, two fetchers, one processor,
//! one result writer) on the machine's NATS server (a namespace of the test's own) and a
//! fresh PostgreSQL database; without them the tests print why they skip (and fail under
//! `CI=true`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::site::SiteSpec;
use spindle_common::Store;
use support::{PgTestDb, ServedSite, by_url, exported, serve, spindle, write};

const NATS: &str = "nats://127.0.0.1:4222";

/// One role process and the arguments it was started with, so it can be started again.
struct Role {
    name: String,
    args: Vec<String>,
    child: Child,
    starts: u32,
}

/// What every role of one crawl shares.
struct Cluster {
    namespace: String,
    db: String,
    log: PathBuf,
    roles: Vec<Role>,
}

impl Cluster {
    fn spawn(&self, name: &str, args: &[String], starts: u32) -> Child {
        let file = self.log.join(format!("{name}.{starts}.log"));
        let stderr = std::fs::File::create(file).expect("log file");
        spindle()
            .args(args)
            .args([
                "--nats",
                NATS,
                "--namespace",
                &self.namespace,
                "--database",
                &self.db,
                "--ack-wait",
                "5s",
            ])
            .env("SPINDLE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn role")
    }

    fn start(&mut self, name: &str, args: &[&str]) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = self.spawn(name, &args, 0);
        self.roles.push(Role {
            name: name.to_string(),
            args,
            child,
            starts: 0,
        });
    }

    fn role(&mut self, name: &str) -> &mut Role {
        self.roles
            .iter_mut()
            .find(|r| r.name == name)
            .expect("a role of that name")
    }

    /// SIGKILL of `name`, reaped, then the same role started again with the same arguments.
    fn kill_and_restart(&mut self, name: &str) {
        let role = self.role(name);
        role.child.kill().expect("SIGKILL");
        role.child.wait().expect("reaped");
        let (args, starts) = (role.args.clone(), role.starts + 1);
        let child = self.spawn(name, &args, starts);
        let role = self.role(name);
        role.child = child;
        role.starts = starts;
    }

    /// Fails the test if a role exited on its own.
    fn assert_alive(&mut self) {
        for r in self.roles.iter_mut() {
            if let Some(status) = r.child.try_wait().expect("wait") {
                let log = self.log.join(format!("{}.{}.log", r.name, r.starts));
                panic!(
                    "{} exited on its own ({status}):\n{}",
                    r.name,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }

    /// SIGTERM to every role; each must exit 0.
    fn stop(&mut self) {
        for r in self.roles.iter_mut() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &r.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = r.child.try_wait().expect("wait") {
                    break status;
                }
                if Instant::now() > deadline {
                    r.child.kill().ok();
                    panic!("{} did not stop on SIGTERM", r.name);
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            assert!(status.success(), "{} exits 0 on SIGTERM: {status}", r.name);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for r in self.roles.iter_mut() {
            r.child.kill().ok();
            r.child.wait().ok();
        }
    }
}

/// The project at a modest rate, so the crawl is still running when a role is killed.
fn project_folder(served: &ServedSite, dir: &Path, name: &str) -> PathBuf {
    let projects = dir.join("projects");
    std::fs::create_dir(&projects).expect("projects dir");
    let toml = served
        .site
        .project_toml(name, &served.base)
        .replace("rate = 100000", "rate = 400")
        .replace("burst = 100000", "burst = 50");
    write(&projects, &format!("{name}.toml"), &toml);
    projects
}

/// Starts a whole crawl, waits for `kill_point` to say the crawl is far enough, SIGKILLs and
/// restarts `victim`, and checks the end: every item exactly once, every page fetched.
async fn kill_mid_crawl(tag: &str, victim: &str, kill_point: KillPoint) {
    if !support::require_nats().await {
        return;
    }
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let served = serve(SiteSpec {
        products: 3_000,
        ..SiteSpec::small()
    });
    let pages = served.site.spec().pages();
    let products = served.site.products().len() as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let projects = project_folder(&served, dir.path(), tag);
    let p = projects.to_str().expect("utf-8").to_string();
    let mut cluster = Cluster {
        namespace: format!("{tag}{}", std::process::id()),
        db: db.url.clone(),
        log: dir.path().to_path_buf(),
        roles: Vec::new(),
    };
    cluster.start("scheduler", &["scheduler", "--projects", &p]);
    cluster.start("fetcher-1", &["fetcher", "--concurrency", "32"]);
    cluster.start("fetcher-2", &["fetcher", "--concurrency", "32"]);
    cluster.start("processor", &["processor"]);
    cluster.start("result-writer", &["result-writer"]);

    let store: Arc<dyn Store> = spindle_store::connect(&db.url).await.expect("store");
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the crawl did not get going"
        );
        cluster.assert_alive();
        let reached = match kill_point {
            KillPoint::Fetched => served.hits.total() >= pages / 3,
            KillPoint::Stored => store.count_results(tag).await.unwrap_or(0) >= products / 3,
        };
        if reached {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill_and_restart(victim);
    let items_at_kill = store.count_results(tag).await.expect("items");
    assert!(
        items_at_kill < products,
        "{victim} was killed before the end ({items_at_kill} of {products} items)"
    );

    let finish = Instant::now();
    loop {
        assert!(
            finish.elapsed() < Duration::from_secs(300),
            "the crawl did not finish after {victim} was restarted"
        );
        cluster.assert_alive();
        let counts = store.task_counts(tag).await.expect("counts");
        let items = store.count_results(tag).await.expect("items");
        if counts.queued + counts.claimed == 0 && counts.success > 0 && items >= products {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cluster.stop();

    let items = exported(tag, &["--database", &db.url]);
    assert_eq!(
        items,
        by_url(served.site.expected_items(&served.base)),
        "every item exactly once, with the right values"
    );
    assert_eq!(
        served.hits.unique(),
        pages + 1,
        "every page and robots.txt fetched"
    );
    drop(store);
    drop(cluster);
    support::delete_nats_namespace(&format!("{tag}{}", std::process::id())).await;
    db.destroy().await;
}

/// When the victim is killed.
#[derive(Clone, Copy)]
enum KillPoint {
    /// A third of the site's pages fetched.
    Fetched,
    /// A third of the items stored.
    Stored,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_killed_and_restarted_loses_and_duplicates_nothing() {
    kill_mid_crawl("kilsched", "scheduler", KillPoint::Fetched).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_writer_killed_and_restarted_loses_and_duplicates_nothing() {
    kill_mid_crawl("kilwriter", "result-writer", KillPoint::Stored).await;
}
