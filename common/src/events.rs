//! Events: what every instance tells the web UI and `spindle status`, by plain publish.
//!
//! Unlike the stage subjects these are not durable: a heartbeat missed is replaced by the
//! next one, so they travel on [`crate::Bus::broadcast`] (core NATS publish, or a broadcast
//! channel in process) and a listener sees only what is sent while it listens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::ProjectStats;

/// Prefix of heartbeat subjects: `spindle.events.heartbeat.<role>.<id>`.
pub const HEARTBEAT: &str = "spindle.events.heartbeat";
/// Subject of the scheduler's per-project figures.
pub const PROJECT_STATS: &str = "spindle.events.stats";
/// Filter matching every event.
pub const ALL: &str = "spindle.events.>";

/// How often instances send a heartbeat; one older than three periods is gone.
pub const HEARTBEAT_EVERY_MS: i64 = 2_000;

/// A sign of life of one instance of a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Unique id of the instance (host name and process id).
    pub id: String,
    /// Its role: scheduler, fetcher, processor, result-writer, web-ui.
    pub role: String,
    /// Spindle version.
    pub version: String,
    /// Messages it holds unacknowledged.
    pub in_flight: u64,
    /// Messages it acknowledged since it started.
    pub done: u64,
    /// Messages acknowledged per second over the last period.
    pub per_second: f64,
    /// When it started (Unix ms).
    pub started_ms: i64,
    /// When this heartbeat was sent (Unix ms).
    pub at_ms: i64,
}

impl Heartbeat {
    /// The subject this heartbeat is sent on.
    pub fn subject(&self) -> String {
        format!("{HEARTBEAT}.{}.{}", self.role, subject_token(&self.id))
    }
}

/// The scheduler's figures of every project.
pub type ProjectStatsEvent = BTreeMap<String, ProjectStats>;

/// `s` with characters that are not valid in a subject token replaced.
pub fn subject_token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A process-unique instance id: host name and process id.
pub fn instance_id(role: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".to_string());
    format!("{role}-{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_subjects_are_valid_tokens() {
        let hb = Heartbeat {
            id: "fetcher-my.host-12".into(),
            role: "fetcher".into(),
            version: "0".into(),
            in_flight: 0,
            done: 0,
            per_second: 0.0,
            started_ms: 0,
            at_ms: 0,
        };
        assert_eq!(
            hb.subject(),
            "spindle.events.heartbeat.fetcher.fetcher-my_host-12"
        );
        assert!(crate::subject::matches(ALL, &hb.subject()));
    }
}
