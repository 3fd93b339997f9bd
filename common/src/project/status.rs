//! A project's run state, and the rules that go with it, in one place.
//!
//! The status is set by the project file (`status = "running"`), by `spindle project
//! start|stop` and by the web UI; the store keeps it as its upper-case name and the scheduler
//! reads it at every reload. Everything that asks "is this project crawled?" or "may it be
//! started?" asks a method here: the scheduler, the CLI, the web UI's API, and through the
//! API the web UI's pages.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// The run state of a project.
///
/// Written and read as its upper-case name ([`ProjectStatus::as_str`]): in the store, on the
/// wire and in the API. Parsing ([`FromStr`], and deserializing) trims the text and ignores
/// case, so a project file may say `status = "running"` and a request `{"status": "stop"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProjectStatus {
    /// Not started yet: the status of a new project whose file sets none (`TODO`).
    #[default]
    Todo,
    /// Stopped: nothing is sent, the queue waits in the store for the next start (`STOP`).
    Stop,
    /// Its rules were edited in the web UI: held until someone starts it again (`CHECKING`).
    Checking,
    /// Crawled, like [`ProjectStatus::Running`], while its rules are being worked on (`DEBUG`).
    Debug,
    /// Crawled (`RUNNING`).
    Running,
}

impl ProjectStatus {
    /// Every status, in the order the web UI lists them (its status menu, its sort).
    pub const ALL: [ProjectStatus; 5] = [
        ProjectStatus::Todo,
        ProjectStatus::Stop,
        ProjectStatus::Checking,
        ProjectStatus::Debug,
        ProjectStatus::Running,
    ];

    /// The upper-case name, as stored and sent: `"TODO"`, `"STOP"`, `"CHECKING"`, `"DEBUG"`,
    /// `"RUNNING"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Todo => "TODO",
            ProjectStatus::Stop => "STOP",
            ProjectStatus::Checking => "CHECKING",
            ProjectStatus::Debug => "DEBUG",
            ProjectStatus::Running => "RUNNING",
        }
    }

    /// Whether the scheduler dispatches the project's tasks (RUNNING or DEBUG): it submits
    /// the start URLs when they are due, claims queued tasks and sends them to the fetchers.
    /// A project in any other state sends nothing; its queue waits in the store.
    pub const fn dispatches(self) -> bool {
        matches!(self, ProjectStatus::Running | ProjectStatus::Debug)
    }

    /// Whether starting the project (setting it RUNNING: the editor's Start button) changes
    /// anything: true for every state the scheduler does not dispatch.
    pub const fn startable(self) -> bool {
        !self.dispatches()
    }

    /// The status a project takes when its rules are edited in the web UI: a project being
    /// crawled (RUNNING or DEBUG) becomes CHECKING, as in pyspider, so new rules do not run
    /// before someone starts them; any other state stays.
    pub const fn after_edit(self) -> ProjectStatus {
        if self.dispatches() {
            ProjectStatus::Checking
        } else {
            self
        }
    }
}

impl fmt::Display for ProjectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A text that names no [`ProjectStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid status \"{value}\"{}; expected one of {}",
    paused_note(.value),
    Expected
)]
pub struct InvalidStatus {
    /// The text as given.
    pub value: String,
}

/// What an [`InvalidStatus`] adds for PAUSED, which the dashboard shows but no one sets.
fn paused_note(value: &str) -> &'static str {
    if value.trim().eq_ignore_ascii_case("PAUSED") {
        " (PAUSED is set by the scheduler after failures in a row and ends by itself)"
    } else {
        ""
    }
}

/// The names of [`ProjectStatus::ALL`], comma-separated.
struct Expected;

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, status) in ProjectStatus::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(status.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ProjectStatus {
    type Err = InvalidStatus;

    /// The status named by `text`, trimmed, in any case.
    fn from_str(text: &str) -> Result<Self, InvalidStatus> {
        let name = text.trim();
        ProjectStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| InvalidStatus {
                value: text.to_string(),
            })
    }
}

impl Serialize for ProjectStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProjectStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProjectStatus;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a status: one of {Expected}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProjectStatus, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_in_any_case() {
        for status in ProjectStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
            let lower = format!("  {}\t", status.as_str().to_ascii_lowercase());
            assert_eq!(lower.parse(), Ok(status), "{lower:?}");
        }
        assert_eq!("Stop".parse(), Ok(ProjectStatus::Stop));
        assert_eq!(ProjectStatus::default(), ProjectStatus::Todo);
        assert_eq!(format!("{:<8}|", ProjectStatus::Stop), "STOP    |");
    }

    #[test]
    fn all_lists_every_status_once_in_menu_order() {
        let names: Vec<&str> = ProjectStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["TODO", "STOP", "CHECKING", "DEBUG", "RUNNING"]);
    }

    #[test]
    fn a_bad_name_is_refused_with_the_expected_ones() {
        let err = "FAST".parse::<ProjectStatus>().expect_err("unknown");
        assert_eq!(err.value, "FAST");
        assert_eq!(
            err.to_string(),
            "invalid status \"FAST\"; expected one of TODO, STOP, CHECKING, DEBUG, RUNNING"
        );
        for empty in ["", "  "] {
            assert!(empty.parse::<ProjectStatus>().is_err(), "{empty:?}");
        }
    }

    #[test]
    fn paused_is_explained() {
        let err = " paused"
            .parse::<ProjectStatus>()
            .expect_err("not settable");
        assert_eq!(
            err.to_string(),
            "invalid status \" paused\" (PAUSED is set by the scheduler after failures in a row \
             and ends by itself); expected one of TODO, STOP, CHECKING, DEBUG, RUNNING"
        );
    }

    #[test]
    fn only_running_and_debug_are_dispatched() {
        let dispatched: Vec<ProjectStatus> = ProjectStatus::ALL
            .into_iter()
            .filter(|s| s.dispatches())
            .collect();
        assert_eq!(dispatched, [ProjectStatus::Debug, ProjectStatus::Running]);
        for status in ProjectStatus::ALL {
            assert_eq!(status.startable(), !status.dispatches(), "{status}");
        }
    }

    #[test]
    fn an_edit_holds_a_crawled_project_for_checking() {
        let after: Vec<&str> = ProjectStatus::ALL
            .iter()
            .map(|s| s.after_edit().as_str())
            .collect();
        assert_eq!(after, ["TODO", "STOP", "CHECKING", "CHECKING", "CHECKING"]);
    }

    #[test]
    fn serde_uses_the_upper_case_name_and_reads_any_case() {
        assert_eq!(
            serde_json::to_string(&ProjectStatus::Debug).expect("encode"),
            "\"DEBUG\""
        );
        assert_eq!(
            serde_json::from_str::<ProjectStatus>("\"debug\"").expect("decode"),
            ProjectStatus::Debug
        );
        let err = serde_json::from_str::<ProjectStatus>("\"GO\"").expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("invalid status \"GO\"; expected one of TODO, STOP"),
            "{err}"
        );
        let err = serde_json::from_str::<ProjectStatus>("3").expect_err("not a string");
        assert!(err.to_string().contains("a status: one of TODO"), "{err}");
    }

    #[test]
    fn a_project_file_reads_it_case_insensitively() {
        #[derive(serde::Deserialize)]
        struct Doc {
            status: ProjectStatus,
        }
        let doc: Doc = toml::from_str("status = \"running\"").expect("valid");
        assert_eq!(doc.status, ProjectStatus::Running);
        let err = toml::from_str::<Doc>("status = \"paused\"")
            .err()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        assert!(
            err.contains("expected one of TODO, STOP, CHECKING, DEBUG, RUNNING"),
            "{err}"
        );
    }
}
