//! Subject, stream and consumer names: the only place they are spelled out.
//!
//! A subject is `spindle.<stage>.<project>`; each stage is one stream whose consumers filter
//! on `spindle.<stage>.>`. Project names are restricted (see [`crate::project`]) to characters
//! that are valid in a subject token.

/// Prefix of every Spindle subject.
pub const PREFIX: &str = "spindle";

/// A stage of the crawl loop: one stream each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// scheduler → fetchers: tasks to download.
    Fetch,
    /// fetcher → processors: a task with its fetched page.
    Process,
    /// processor → scheduler: follow tasks.
    NewTask,
    /// fetcher / result writer → scheduler: task outcomes.
    Status,
    /// processor → result writer: items.
    Result,
}

impl Stage {
    /// Every stage, in loop order.
    pub const ALL: [Stage; 5] = [
        Stage::Fetch,
        Stage::Process,
        Stage::NewTask,
        Stage::Status,
        Stage::Result,
    ];

    /// The subject token of this stage.
    pub fn token(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Process => "process",
            Stage::NewTask => "newtask",
            Stage::Status => "status",
            Stage::Result => "result",
        }
    }

    /// The subject a message of this stage for `project` is published on.
    pub fn subject(self, project: &str) -> String {
        format!("{PREFIX}.{}.{project}", self.token())
    }

    /// The filter that matches this stage's subjects of every project.
    pub fn filter(self) -> String {
        format!("{PREFIX}.{}.>", self.token())
    }

    /// The JetStream stream name of this stage. Follows and outcomes share one stream so the
    /// scheduler reads them in publish order: a task's follows always before its outcome.
    pub fn stream(self) -> &'static str {
        match self {
            Stage::Fetch => "SPINDLE_FETCH",
            Stage::Process => "SPINDLE_PROCESS",
            Stage::NewTask | Stage::Status => "SPINDLE_SCHEDULER",
            Stage::Result => "SPINDLE_RESULT",
        }
    }

    /// The stage a subject belongs to, if it is a Spindle stage subject.
    pub fn of_subject(subject: &str) -> Option<Stage> {
        let mut parts = subject.splitn(3, '.');
        if parts.next()? != PREFIX {
            return None;
        }
        let token = parts.next()?;
        Stage::ALL.into_iter().find(|s| s.token() == token)
    }
}

/// Durable consumer names, one per role; every instance of a role shares it.
pub mod durable {
    /// Fetchers pulling from the fetch stream.
    pub const FETCHER: &str = "fetcher";
    /// Processors pulling from the process stream.
    pub const PROCESSOR: &str = "processor";
    /// The scheduler pulling follows and outcomes (one consumer, so they stay in order).
    pub const SCHEDULER: &str = "scheduler";
    /// Result writers pulling items.
    pub const RESULT_WRITER: &str = "result-writer";
}

/// JetStream object store bucket holding message bodies too large for one NATS message even
/// when compressed (the message then carries a reference to its body).
pub const BODIES_BUCKET: &str = "SPINDLE_BODIES";

/// Control requests from the web UI and CLI to the scheduler.
pub const CONTROL: &str = "spindle.control";
/// Debug steps run by one fetcher.
pub const DEBUG_FETCH: &str = "spindle.debug.fetch";
/// Debug steps run by one processor.
pub const DEBUG_PROCESS: &str = "spindle.debug.process";
/// Counters and heartbeats of every instance.
pub const EVENTS: &str = "spindle.events";

/// Whether `subject` is matched by `filter` (NATS wildcards: `*` one token, `>` the rest).
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_to_their_stage() {
        for stage in Stage::ALL {
            let subject = stage.subject("books");
            assert_eq!(Stage::of_subject(&subject), Some(stage));
            assert!(matches(&stage.filter(), &subject));
        }
        assert_eq!(Stage::of_subject("other.fetch.x"), None);
    }

    #[test]
    fn wildcards_follow_nats_rules() {
        assert!(matches("spindle.fetch.*", "spindle.fetch.books"));
        assert!(!matches("spindle.fetch.*", "spindle.fetch.books.x"));
        assert!(matches("spindle.fetch.>", "spindle.fetch.books.x"));
        assert!(!matches("spindle.fetch.>", "spindle.fetch"));
        assert!(!matches("spindle.process.>", "spindle.fetch.books"));
    }
}
