//! The SQLite file's disk fills up mid-crawl (embedded mode): the crawl stops with a clear
//! error instead of hanging or losing what it stored, and a second crawl on the same data
//! folder, once there is space again, ends with every item exactly once.
//!
//! The disk is a small tmpfs mounted by the test, which needs root; without it the test
//! prints why it skips (and fails under `CI=true`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use spindle::site::SiteSpec;
use support::{by_url, exported, run, serve, write};

/// A tmpfs mounted on a folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("mount -o remount");
        assert!(status.success(), "remount to {size}");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_stops_the_crawl_cleanly_and_a_second_run_completes_it() {
    let Some(disk) = support::require_service("a tmpfs to fill", Tmpfs::mount("1m")) else {
        return;
    };
    let served = serve(SiteSpec {
        products: 3_000,
        ..SiteSpec::small()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write(
        dir.path(),
        "shop.toml",
        &served.site.project_toml("shop", &served.base),
    );
    let data = disk.path().join("data");
    let (project, data_s) = (
        project.to_str().expect("utf-8").to_string(),
        data.to_str().expect("utf-8").to_string(),
    );
    let first_out = dir.path().join("first.jsonl");
    let first = run(
        &[
            "crawl",
            &project,
            "--data",
            &data_s,
            "-o",
            first_out.to_str().expect("utf-8"),
        ],
        Duration::from_secs(300),
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        !first.status.success(),
        "the crawl cannot finish on a 1 MiB disk:\n{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("full"),
        "the error says the disk is full:\n{stderr}"
    );

    let fetched_first = served.hits.total();
    eprintln!("first run: {fetched_first} fetches, then:\n{stderr}");
    assert!(
        fetched_first > 100,
        "the disk filled mid-crawl, not at start ({fetched_first} fetches)"
    );

    disk.resize("256m");
    let out = dir.path().join("items.jsonl");
    let second = run(
        &[
            "crawl",
            &project,
            "--data",
            &data_s,
            "-o",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_secs(300),
    );
    assert!(
        second.status.success(),
        "the crawl resumes once there is space:\n{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let items = exported("shop", &["--data", &data_s]);
    assert_eq!(
        items,
        by_url(served.site.expected_items(&served.base)),
        "every item exactly once after the resumed crawl"
    );
}
