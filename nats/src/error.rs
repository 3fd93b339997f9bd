//! What can go wrong inside the NATS bus, before it is folded into [`BusError`].

use spindle_common::bus::BusError;

/// A failure of the NATS bus, with enough words to act on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NatsError {
    /// The namespace is not a valid name token.
    #[error("invalid NATS namespace {0:?}: use 1 to 32 of [A-Za-z0-9_-]")]
    Namespace(String),
    /// The durable name cannot name a JetStream consumer.
    #[error("invalid durable name {0:?}: use [A-Za-z0-9_-]")]
    Durable(String),
    /// The consumer's filters cannot be served by one JetStream consumer.
    #[error("consumer filters {filters:?}: {reason}")]
    Filters {
        /// The filters asked for.
        filters: Vec<String>,
        /// Why they cannot be served.
        reason: &'static str,
    },
    /// No stream stores this subject.
    #[error("subject {0:?} belongs to no Spindle stream")]
    Subject(String),
    /// The server refused a JetStream request; trying again will not help.
    #[error("{what}: {source}")]
    Refused {
        /// What was being done.
        what: String,
        /// The server's answer.
        source: async_nats::jetstream::Error,
    },
    /// The server could not be reached or did not answer in time.
    #[error("{what}: {detail}")]
    Unreachable {
        /// What was being done.
        what: String,
        /// The underlying failure.
        detail: String,
    },
}

impl NatsError {
    /// A transport failure while doing `what`.
    pub(crate) fn unreachable(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Unreachable {
            what: what.into(),
            detail: err.to_string(),
        }
    }
}

impl From<NatsError> for BusError {
    fn from(err: NatsError) -> Self {
        // `BusError` has no "misconfigured" kind: every failure here is reported as a transport
        // failure with its full explanation.
        BusError::Transport(err.to_string())
    }
}
