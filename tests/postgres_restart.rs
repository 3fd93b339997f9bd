//! A distributed crawl survives a restart of PostgreSQL in the middle of it: the roles'
//! store calls fail while the server is down, the work they were doing is retried (messages
//! are acknowledged only after their effect is stored), and every item arrives once.
//!
//! The test starts a PostgreSQL of its own (Debian's `initdb` and `pg_ctl` under
//! `/usr/lib/postgresql/*/bin`, a temporary folder, a free port) so the machine's server is
//! left alone; without those programs it prints why it skips (and fails under `CI=true`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use spindle::site::SiteSpec;
use support::{by_url, free_port, jsonl, serve, spindle, wait_output, write};

/// A PostgreSQL cluster in a temporary folder, stopped when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// As root, the server runs as the `postgres` user (initdb refuses root).
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn find_bin() -> Result<PathBuf, String> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists() && bin.join("initdb").exists())
            .collect();
        found.sort();
        found
            .pop()
            .ok_or_else(|| "no initdb and pg_ctl under /usr/lib/postgresql/*/bin".to_string())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn start() -> Result<PrivatePostgres, String> {
        let bin = Self::find_bin()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        let data = dir.path().join("pgdata");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:", &dir.path().to_string_lossy()])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("cannot give the temporary folder to the postgres user".into());
            }
        }
        let pg = PrivatePostgres {
            bin,
            data,
            port: free_port(),
            as_postgres,
            _dir: dir,
        };
        let out = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&pg.data)
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        pg.pg_ctl(&["start", "-w"])?;
        Ok(pg)
    }

    fn pg_ctl(&self, action: &[&str]) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        let out = self
            .command("pg_ctl")
            .args(action)
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.data.join("log"))
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {action:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}

/// Whether this process runs as root (from `/proc/self/status`, no unsafe code).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// The scheduler and the result writer start again when the database comes back
// (`roles::until_lasting_error`); before, the scheduler stopped on the lost connection in 4
// runs of 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_completes_across_a_postgres_restart() {
    if !support::require_nats().await {
        return;
    }
    let Some(pg) = support::require_service(
        "a private PostgreSQL (initdb, pg_ctl)",
        tokio::task::spawn_blocking(PrivatePostgres::start)
            .await
            .expect("join"),
    ) else {
        return;
    };
    let served = serve(SiteSpec {
        products: 1_500,
        ..SiteSpec::small()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = served
        .site
        .project_toml("shop", &served.base)
        .replace("rate = 100000", "rate = 300")
        .replace("burst = 100000", "burst = 20");
    let project = write(dir.path(), "shop.toml", &toml);
    let out = dir.path().join("items.jsonl");
    let namespace = format!("pgrestart{}", std::process::id());
    let crawl = spindle()
        .args([
            "crawl",
            project.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ])
        .args([
            "--nats",
            "nats://127.0.0.1:4222",
            "--namespace",
            &namespace,
            "--database",
            &pg.url(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crawl");

    let pages = served.site.spec().pages();
    served
        .wait_for_requests(pages / 3, Duration::from_secs(120))
        .await;
    // A hard stop of the server (no checkpoint, connections cut), two seconds down, then the
    // same cluster back on the same port.
    pg.pg_ctl(&["stop", "-m", "immediate"]).expect("stop");
    let fetched_at_stop = served.hits.total();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.pg_ctl(&["start", "-w"]).expect("restart");
    assert!(fetched_at_stop < pages, "stopped before the end");

    let output = tokio::task::spawn_blocking(move || wait_output(crawl, Duration::from_secs(300)))
        .await
        .expect("join");
    assert!(
        output.status.success(),
        "crawl failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(pg.data().join("log")).unwrap_or_default()
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
    support::delete_nats_namespace(&namespace).await;
}
