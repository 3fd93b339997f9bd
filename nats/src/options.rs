//! How to reach NATS and how to shape the streams: every default in one place.

use std::time::Duration;

/// Settings of a [`crate::NatsBus`]. Start from [`NatsOptions::default`] and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsOptions {
    /// Server URL, e.g. `nats://127.0.0.1:4222` (several may be given, comma separated).
    pub url: String,
    /// Isolates deployments (and tests) sharing one server: `[A-Za-z0-9_-]`, at most 32
    /// characters. It prefixes subjects on the wire (`<ns>.spindle.fetch.p`), stream, bucket
    /// and durable names (`<ns>_SPINDLE_FETCH`); callers never see it.
    pub namespace: Option<String>,
    /// Connection name shown by the server's monitoring.
    pub client_name: Option<String>,
    /// How long [`crate::NatsBus::connect`] keeps trying to reach the server and set up the
    /// streams before giving up; `None` waits forever. The client itself reconnects forever.
    pub connect_timeout: Option<Duration>,
    /// Longest pause between two reconnect attempts (the backoff doubles up to it).
    pub reconnect_delay_max: Duration,
    /// Wait for one JetStream API answer or publish acknowledgement.
    pub request_timeout: Duration,
    /// How long one publish keeps retrying (server restarting, stream full) before it fails.
    /// Retries carry the same message id, so the stream stores the message once.
    pub publish_timeout: Duration,
    /// Byte limit of each stream and of the bodies bucket; `-1` (default): none of their own.
    /// A full stream refuses publishes (retried until `publish_timeout`) rather than dropping
    /// old messages. The server reserves a stream's limit in its JetStream storage up front,
    /// so the default sets none and lets the server's `max_file_store` (by default 75% of the
    /// free disk) bound all streams together, with the same refusal when it is reached.
    pub stream_max_bytes: i64,
    /// Age after which a message nobody consumed is deleted. A week without any consumer of a
    /// role is an abandoned deployment; the bound keeps such a stream from filling the disk.
    /// Zero: no limit.
    pub stream_max_age: Duration,
    /// Window in which a republished message id is recognised and stored only once.
    pub duplicate_window: Duration,
    /// Life of one pull request on the server. An idle handle sends one request per period;
    /// it also bounds how long a request lost without notice (e.g. in a restart) can stall it.
    pub pull_expires: Duration,
    /// Whether `ack` and `nack` wait for the server to confirm them (one round trip each).
    /// Confirmed acks make `stats` exact right after acking and let large bodies be deleted
    /// as soon as their message is done; without confirmation an ack is one fire-and-forget
    /// message, and a lost one only causes a redelivery.
    pub confirm_acks: bool,
    /// Wait for an ack confirmation before falling back to an unconfirmed ack.
    pub ack_timeout: Duration,
    /// How long the first small message published after a quiet moment waits for others to
    /// share its bundle (see the `bundle` module). Each stored message costs the server about
    /// 13 µs before its bytes count, so a millisecond or two of delay buys several times the
    /// rate when publishers trickle (a processor publishes one page's output at a time). Zero:
    /// only what is queued at once is bundled.
    pub bundle_linger: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            namespace: None,
            client_name: None,
            connect_timeout: Some(Duration::from_secs(60)),
            reconnect_delay_max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(60),
            stream_max_bytes: -1,
            stream_max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            pull_expires: Duration::from_secs(15),
            confirm_acks: true,
            ack_timeout: Duration::from_secs(5),
            bundle_linger: Duration::from_millis(2),
        }
    }
}

impl NatsOptions {
    /// Default options for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}
