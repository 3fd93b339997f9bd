//! `--projects DIR`: project files kept in a folder, loaded into the store and watched.
//!
//! Every `*.toml` file is read at start and re-read when its modification time changes. A
//! valid file is saved (a project it loads starts RUNNING unless it sets `status`); an
//! invalid one is reported with its line and column and the stored version is kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
                let mut record = project_record(&project, clock.now_ms());
                if let Some(old) = store.project(&project.name).await? {
                    if old.definition == record.definition {
                        continue;
                    }
                    record.last_start_ms = old.last_start_ms;
                }
                store.save_project(&record).await?;
                tracing::info!(project = %project.name, file = %path.display(), "project loaded");
            }
            Err(e) => tracing::error!("{e} (project not loaded)"),
        }
    }
    Ok(())
}

/// Scans the folder every [`SCAN_EVERY`] until `shutdown`.
pub async fn watch(
    dir: PathBuf,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut seen = HashMap::new();
    loop {
        if let Err(e) = scan(&dir, &*store, &*clock, &mut seen).await {
            tracing::error!(error = %format!("{e:#}"), "scanning projects folder failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(SCAN_EVERY) => {}
        }
    }
}
