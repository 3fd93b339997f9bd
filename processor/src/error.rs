//! The processor's error: one enum, split by [`ProcessorError::is_task_failure`] into "this
//! task failed" (reported to the scheduler as the task's outcome) and "this processor is
//! broken" (the bus or store failed; the message is handed back, never lost).

use spindle_common::{BusError, StoreError};

/// What went wrong in the processor.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// A selector or regex of the project does not compile. A parsed [`Project`] has been
    /// checked already, so this means the definition was built some other way.
    ///
    /// [`Project`]: spindle_common::Project
    #[error("project `{project}`: {message}")]
    Rules {
        /// The project.
        project: String,
        /// Which rule and why.
        message: String,
    },
    /// The task names a handler the project does not have.
    #[error("project `{project}` has no handler `{callback}`")]
    UnknownCallback {
        /// The project.
        project: String,
        /// The task's callback.
        callback: String,
    },
    /// Neither the page URL nor the task URL is an absolute URL, so no link can be resolved.
    #[error("page URL `{0}` is not an absolute URL")]
    BadPageUrl(String),
    /// The handler reads JSON, and the body is not JSON.
    #[error("the page is not JSON ({0}); the handler reads it with JSONPath")]
    NotJson(String),
    /// The page's elements nest deeper than [`crate::depth::MAX_DEPTH`]: it is not parsed
    /// (parsing is quadratic in that depth).
    #[error(
        "the page's elements nest deeper than {max} (at least {0} levels): not parsed",
        max = crate::depth::MAX_DEPTH
    )]
    TooDeep(usize),
    /// The handler's script failed: an error, or a limit it ran into.
    #[error("{0}")]
    Script(String),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProcessorError {
    /// Whether this is a failure of one task (its page, or its project's rules) rather than of
    /// the processor's connections: a task failure is reported as the task's outcome, anything
    /// else leaves the message to be delivered again.
    pub fn is_task_failure(&self) -> bool {
        match self {
            ProcessorError::Rules { .. }
            | ProcessorError::UnknownCallback { .. }
            | ProcessorError::BadPageUrl(_)
            | ProcessorError::NotJson(_)
            | ProcessorError::TooDeep(_)
            | ProcessorError::Script(_) => true,
            ProcessorError::Bus(_) | ProcessorError::Store(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_failures_are_told_apart_from_broken_connections() {
        let unknown = ProcessorError::UnknownCallback {
            project: "p".into(),
            callback: "x".into(),
        };
        assert!(unknown.is_task_failure());
        assert_eq!(unknown.to_string(), "project `p` has no handler `x`");
        assert!(ProcessorError::BadPageUrl("/x".into()).is_task_failure());
        assert!(ProcessorError::NotJson("x".into()).is_task_failure());
        assert!(ProcessorError::Script("x".into()).is_task_failure());
        assert!(!ProcessorError::Bus(BusError::Closed).is_task_failure());
    }
}
