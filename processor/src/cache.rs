//! Compiled rules per project, kept until the project changes in the store.
//!
//! Every job asks the store for its project's record (one indexed read) and compares the
//! record's `updated_ms` with the one its cached [`Rules`] were compiled from; only a changed
//! (or first-seen) definition is parsed and compiled again. Reading the record on every job
//! is what lets an edit made in the web UI reach every processor, in any process, without a
//! notification channel. A project deleted from the store is dropped from the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spindle_common::store::ProjectStore;
use spindle_common::{Project, StoreError};

use crate::rules::Rules;

/// What the store says about a job's project.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Rules ready to run.
    Ready(Arc<Rules>),
    /// The store has no such project.
    Unknown,
    /// The stored definition does not parse or compile: why.
    Invalid(String),
}

/// Compiled rules by project name, with the `updated_ms` they were compiled from.
pub(crate) struct RulesCache {
    store: Arc<dyn ProjectStore>,
    recheck: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

/// Compiled rules, the `updated_ms` they were compiled from, and when that was last checked.
type Entry = (i64, Instant, Arc<Rules>);

impl RulesCache {
    /// An empty cache over `store`; rules checked less than `recheck` ago are used as they are.
    pub(crate) fn new(store: Arc<dyn ProjectStore>, recheck: Duration) -> Self {
        Self {
            store,
            recheck,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The current rules of `project`. A store failure is returned as is: it says nothing
    /// about the task, so the caller hands the message back instead of failing the task.
    pub(crate) async fn get(&self, project: &str) -> Result<Lookup, StoreError> {
        if let Some((_, checked, rules)) = self.entries().get(project)
            && checked.elapsed() < self.recheck
        {
            return Ok(Lookup::Ready(Arc::clone(rules)));
        }
        let Some(record) = self.store.project(project).await? else {
            self.entries().remove(project);
            return Ok(Lookup::Unknown);
        };
        if let Some((updated_ms, checked, rules)) = self.entries().get_mut(project)
            && *updated_ms == record.updated_ms
        {
            *checked = Instant::now();
            return Ok(Lookup::Ready(Arc::clone(rules)));
        }
        // Compiled outside the lock; two jobs racing on a fresh definition both compile it,
        // which costs a little CPU once and never blocks the other projects.
        let compiled = Project::parse(&record.definition)
            .map_err(|e| format!("stored project definition is invalid: {e}"))
            .and_then(|p| Rules::compile(Arc::new(p)).map_err(|e| e.to_string()));
        match compiled {
            Ok(rules) => {
                let rules = Arc::new(rules);
                self.entries().insert(
                    project.to_string(),
                    (record.updated_ms, Instant::now(), Arc::clone(&rules)),
                );
                Ok(Lookup::Ready(rules))
            }
            Err(message) => Ok(Lookup::Invalid(message)),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Every mutation is a single insert or remove, so a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use spindle_common::store::ProjectStore;
    use spindle_common::store::{ProjectRecord, ProjectStatus};
    use spindle_store::SqliteStore;

    use super::*;

    fn record(definition: &str, updated_ms: i64) -> ProjectRecord {
        ProjectRecord {
            name: "p".into(),
            definition: definition.into(),
            status: ProjectStatus::Running,
            rate: 1.0,
            burst: 1.0,
            group: None,
            updated_ms,
            last_start_ms: 0,
            run_requested_ms: 0,
            origin: None,
        }
    }

    const V1: &str = "name = \"p\"\n[handlers.a]\nitem.x = \"1\"\n";
    const V2: &str = "name = \"p\"\n[handlers.b]\nitem.x = \"2\"\n";

    async fn cache() -> (tempfile::TempDir, Arc<SqliteStore>, RulesCache) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("db.sqlite"))
                .await
                .expect("store opens"),
        );
        let cache = RulesCache::new(store.clone(), Duration::ZERO);
        (dir, store, cache)
    }

    fn ready(lookup: Lookup) -> Arc<Rules> {
        match lookup {
            Lookup::Ready(rules) => rules,
            other => panic!("expected rules, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn rules_are_reused_until_the_project_changes() {
        let (_dir, store, cache) = cache().await;
        store.save_project(&record(V1, 1)).await.expect("save");
        let first = ready(cache.get("p").await.expect("store"));
        assert!(first.handler("a").is_some());
        let again = ready(cache.get("p").await.expect("store"));
        assert!(
            Arc::ptr_eq(&first, &again),
            "same definition: compiled once"
        );

        store.save_project(&record(V2, 2)).await.expect("save");
        let changed = ready(cache.get("p").await.expect("store"));
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(changed.handler("b").is_some() && changed.handler("a").is_none());
    }

    #[tokio::test]
    async fn unknown_and_invalid_projects_are_told_apart() {
        let (_dir, store, cache) = cache().await;
        assert!(matches!(
            cache.get("p").await.expect("store"),
            Lookup::Unknown
        ));
        store
            .save_project(&record("name = \"p\"\nrate = 0\n", 1))
            .await
            .expect("save");
        match cache.get("p").await.expect("store") {
            Lookup::Invalid(message) => {
                assert!(message.contains("line 2, column 8"), "{message}");
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }
}
