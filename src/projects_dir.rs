//! `--projects DIR`: project files kept in a folder, loaded into the store and watched.
//!
//! Every `*.toml` file is read at start and re-read when its modification time changes. A
//! valid file is saved (a project it loads starts RUNNING unless it sets `status`); an
//! invalid one is reported with its line and column and the stored version is kept.
//!
//! Editing a file keeps the status, rate, burst and group the project has in the store (set
//! with `spindle project stop|start` or on the web UI's dashboard), unless the edit changes the
//! file's own key ([`ProjectRecord::edited`]): a stopped project is not restarted by a fix to
//! one of its selectors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use spindle_common::store::ProjectRecord;
use spindle_common::{Clock, Project, Store};
use tokio_util::sync::CancellationToken;

use crate::embedded::project_record;

/// How often the folder is looked at.
pub const SCAN_EVERY: Duration = Duration::from_secs(2);

/// Loads the folder's project files once; returns the file → modification time seen.
pub async fn scan(
    dir: &Path,
    store: &dyn Store,
    clock: &dyn Clock,
    seen: &mut HashMap<PathBuf, SystemTime>,
) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read projects folder {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if seen.get(&path) == Some(&modified) {
            continue;
        }
        seen.insert(path.clone(), modified);
        match Project::load(&path) {
            Ok(project) => {
                let origin = Some(origin_of(&path));
                let record = match store.project(&project.name).await? {
                    Some(old) if old.definition == project.source && old.origin == origin => {
                        continue;
                    }
                    // Keys the edit did not change keep what was set live (see
                    // `ProjectRecord::edited`).
                    Some(old) => ProjectRecord {
                        origin,
                        ..old.edited(&project, clock.now_ms())
                    },
                    None => ProjectRecord {
                        origin,
                        ..project_record(&project, clock.now_ms())
                    },
                };
                store.save_project(&record).await?;
                tracing::info!(project = %project.name, file = %path.display(), "project loaded");
            }
            Err(e) => tracing::error!("{e} (project not loaded)"),
        }
    }
    Ok(())
}

/// How a project's `origin` in the store names the file it was loaded from: its canonical path (symbolic links and `..` resolved), as shown,
/// so each file has one name whatever folder path it was found through.
pub fn origin_of(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Loads the folder's project files, then watches the folder from a task that scans it
/// every [`SCAN_EVERY`] until `shutdown`. Call it before the scheduler starts: its first load
/// then finds the folder's projects, instead of its next reload, up to 2 s later.
pub async fn load_and_watch(
    dir: PathBuf,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut seen = HashMap::new();
    scan_logged(&dir, &*store, &*clock, &mut seen).await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(SCAN_EVERY) => {}
            }
            scan_logged(&dir, &*store, &*clock, &mut seen).await;
        }
    })
}

/// [`scan`], its error logged: a folder that cannot be read now may be readable at the next
/// scan.
async fn scan_logged(
    dir: &Path,
    store: &dyn Store,
    clock: &dyn Clock,
    seen: &mut HashMap<PathBuf, SystemTime>,
) {
    if let Err(e) = scan(dir, store, clock, seen).await {
        tracing::error!(error = %format!("{e:#}"), "scanning projects folder failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_common::clock::ManualClock;
    use spindle_common::store::ProjectStatus;

    const FILE: &str = "name = \"p\"\nstart = [\"http://127.0.0.1:1/\"]\n\n[handlers.start]\n";

    /// Writes `text` as the folder's project file with a new modification time, then scans.
    async fn save_and_scan(
        dir: &Path,
        text: &str,
        store: &dyn Store,
        seen: &mut HashMap<PathBuf, SystemTime>,
    ) -> ProjectStatus {
        let path = dir.join("p.toml");
        std::fs::write(&path, text).expect("write project file");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        // A modification time of its own, so the scan sees an edit even within one second.
        let version = seen.get(&path).map_or(1, |t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() + 1)
        });
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(version))
            .expect("touch");
        scan(dir, store, &ManualClock::new(1_000), seen)
            .await
            .expect("scan");
        store
            .project("p")
            .await
            .expect("read")
            .expect("saved")
            .status
    }

    /// A SQLite store and an empty projects folder, both in a temporary folder (dropped with
    /// the returned guard).
    async fn store_and_folder() -> (tempfile::TempDir, Arc<dyn Store>, PathBuf) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("spindle.db").display());
        let store = spindle_store::connect(&url).await.expect("store");
        let files = dir.path().join("projects");
        std::fs::create_dir(&files).expect("folder");
        (dir, store, files)
    }

    #[tokio::test]
    async fn an_edit_keeps_the_stored_status_unless_it_changes_the_files_own() {
        let (_dir, store, files) = store_and_folder().await;
        let mut seen = HashMap::new();

        assert_eq!(
            save_and_scan(&files, FILE, &*store, &mut seen).await,
            ProjectStatus::Running
        );
        store
            .set_status("p", ProjectStatus::Stop, 2_000)
            .await
            .expect("stop");
        let edited = format!("{FILE}# a comment\n");
        assert_eq!(
            save_and_scan(&files, &edited, &*store, &mut seen).await,
            ProjectStatus::Stop,
            "an edit without a status change keeps the project stopped"
        );
        let own = edited.replace(
            "[handlers.start]",
            "status = \"RUNNING\"\n\n[handlers.start]",
        );
        assert_eq!(
            save_and_scan(&files, &own, &*store, &mut seen).await,
            ProjectStatus::Running,
            "changing the file's status key applies it"
        );
    }

    #[tokio::test]
    async fn a_project_remembers_the_file_it_came_from() {
        let (_dir, store, files) = store_and_folder().await;
        let mut seen = HashMap::new();
        save_and_scan(&files, FILE, &*store, &mut seen).await;
        let stored = store.project("p").await.expect("read").expect("saved");
        let canonical = std::fs::canonicalize(files.join("p.toml")).expect("canonical");
        assert_eq!(stored.origin, Some(canonical.display().to_string()));

        // A project stored without its origin (before origins were kept) gets it at the
        // next scan, though its file did not change.
        store
            .save_project(&spindle_common::store::ProjectRecord {
                origin: None,
                ..stored.clone()
            })
            .await
            .expect("save");
        seen.clear();
        scan(&files, &*store, &ManualClock::new(2_000), &mut seen)
            .await
            .expect("scan");
        let again = store.project("p").await.expect("read").expect("saved");
        assert_eq!(again.origin, stored.origin);
    }

    #[tokio::test]
    async fn projects_are_stored_before_watching_starts() {
        let (_dir, store, files) = store_and_folder().await;
        std::fs::write(files.join("p.toml"), FILE).expect("write project file");
        let stop = CancellationToken::new();
        let watcher = load_and_watch(
            files,
            store.clone(),
            Arc::new(ManualClock::new(1_000)),
            stop.clone(),
        )
        .await;
        // No wait: the scheduler starts right after this call and loads what is stored.
        let stored = store.project("p").await.expect("read");
        stop.cancel();
        watcher.await.expect("watcher ends");
        assert!(stored.is_some(), "the folder's project is stored at once");
    }
}
