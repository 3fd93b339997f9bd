//! Bundles: small messages published close together on one subject travel as one JetStream
//! message, with one stored message, one publish ack and one consumer ack.
//!
//! Much of nats-server's cost is per message (the rest is per byte, see [`codec`]): at a few
//! thousand pages a second, storing, delivering and acknowledging every task, page and
//! outcome one by one took more CPU than all of Spindle's roles together. A bundle cuts the
//! per-message part by the number of parts it holds.
//!
//! # Publishing
//!
//! [`Bundler`] is a task that takes what every publisher of a bus queues. After the first
//! message it waits up to [`NatsOptions::bundle_linger`] for more (a processor publishes one
//! page's output at a time: without the wait its bundles held under two parts), taking at
//! most [`DRAIN`] messages. It groups them by stream (stable, so each subject keeps its order)
//! and cuts runs of one subject into bundles of at most [`MAX_PARTS`] parts and [`MAX_BYTES`]
//! bytes. A run of one goes out as an ordinary message. Every bundle is written to the
//! connection in order from this one task; its publish ack is awaited on its own task, and if
//! it fails the bundle is published again with the same message id (so the stream stores it
//! once) and the publishers told the outcome.
//!
//! # Wire form
//!
//! Header [`BUNDLE`] holds the number of parts; the payload is, for each part, its length as a
//! little-endian `u32` followed by its JSON, the whole lz4-compressed when large enough (see
//! [`codec`]).
//!
//! # Consuming
//!
//! Each part becomes its own delivery. The bundle is acked when its last part is acked; if any
//! part was nacked, the whole bundle is nacked once every part is settled, with the longest
//! delay asked for, and every part is delivered again: handlers are idempotent, as the bus's
//! contract already requires.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::Subject;
use async_nats::jetstream::AckKind;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;

#[cfg(doc)]
use crate::NatsOptions;
use crate::{Prepared, Shared, codec};
use spindle_common::bus::BusError;

/// Header of a bundle: how many parts it holds.
pub(crate) const BUNDLE: &str = "Spindle-Bundle";
/// Parts of one bundle, at most: a consumer's in-flight bound is counted in parts, and a
/// bundle larger than that bound would hold back the parts behind it.
const MAX_PARTS: usize = 64;
/// Bytes of one bundle's payload, at most (well below the server's default 1 MiB).
const MAX_BYTES: usize = 256 * 1024;
/// Queued messages the bundler takes at once.
const DRAIN: usize = 256;

/// Where a publisher waits to hear that its message is stored.
type Answer = oneshot::Sender<Result<(), BusError>>;

/// One message waiting to be bundled.
struct Queued {
    stream: &'static str,
    subject: String,
    json: Vec<u8>,
    done: Answer,
}

/// The publishing side: hands queued messages to the bundling task.
pub(crate) struct Bundler {
    queue: mpsc::UnboundedSender<Queued>,
}

impl Bundler {
    /// Starts the bundling task of the bus `shared`. The task ends when the bundler is dropped.
    pub(crate) fn start(shared: Weak<Shared>, linger: Duration) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(shared, linger, rx));
        Self { queue }
    }

    /// Queues `json` for `subject` (on the wire) in `stream`; the receiver answers once it is
    /// stored. The queue holds at most what the publishers awaiting it have handed over.
    pub(crate) fn queue(
        &self,
        stream: &'static str,
        subject: String,
        json: Vec<u8>,
    ) -> oneshot::Receiver<Result<(), BusError>> {
        let (done, answer) = oneshot::channel();
        let queued = Queued {
            stream,
            subject,
            json,
            done,
        };
        if let Err(mpsc::error::SendError(queued)) = self.queue.send(queued) {
            let _ = queued.done.send(Err(BusError::Closed));
        }
        answer
    }
}

/// The bundling task: takes a batch, cuts it into bundles and writes them, until every
/// [`Bundler`] handle is gone.
async fn run(shared: Weak<Shared>, linger: Duration, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        if linger.is_zero() {
            // Publishers woken together queue their messages within one turn.
            tokio::task::yield_now().await;
        }
        let until = Instant::now() + linger;
        while batch.len() < DRAIN {
            match rx.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(queued)) => batch.push(queued),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        let Some(shared) = shared.upgrade() else {
            for queued in batch {
                let _ = queued.done.send(Err(BusError::Closed));
            }
            continue;
        };
        batch.sort_by_key(|q| q.stream);
        for run in runs(batch, MAX_BYTES.min(shared.plain_limit())) {
            send(&shared, run).await;
        }
    }
}

/// Cuts a batch into bundles: consecutive messages on one subject, at most [`MAX_PARTS`] of
/// them and `max_bytes` of payload (a larger message goes alone).
fn runs(batch: Vec<Queued>, max_bytes: usize) -> Vec<Vec<Queued>> {
    let mut runs: Vec<Vec<Queued>> = Vec::new();
    let mut bytes = 0;
    for queued in batch {
        let size = queued.json.len() + 4;
        if let Some(run) = runs.last_mut()
            && run[0].subject == queued.subject
            && run.len() < MAX_PARTS
            && bytes + size <= max_bytes
        {
            bytes += size;
            run.push(queued);
            continue;
        }
        bytes = size;
        runs.push(vec![queued]);
    }
    runs
}

/// Writes one bundle to the connection and answers its publishers once it is stored.
async fn send(shared: &Arc<Shared>, run: Vec<Queued>) {
    let (subject, jsons, answers) = split(run);
    let mut headers = HeaderMap::new();
    let payload = if jsons.len() == 1 {
        Bytes::from(jsons.into_iter().next().unwrap_or_default())
    } else {
        headers.insert(BUNDLE, jsons.len().to_string().as_str());
        pack(&jsons)
    };
    let payload = codec::lz4_packed(&mut headers, payload);
    let prepared = Prepared::new(subject, headers, payload);
    let sent = shared.send(&prepared).await;
    let shared = shared.clone();
    tokio::spawn(async move {
        let stored = match sent {
            Ok(ack) => match ack.await {
                Ok(_) => Ok(()),
                Err(e) => {
                    debug!(error = %e, subject = %prepared.subject, "bundle not confirmed; publishing it again");
                    shared.publish_raw(&prepared).await
                }
            },
            Err(e) => {
                debug!(error = %e, subject = %prepared.subject, "bundle not sent; publishing it again");
                shared.publish_raw(&prepared).await
            }
        };
        for answer in answers {
            let _ = answer.send(stored.clone());
        }
    });
}

/// A run's subject, its parts' JSON and their publishers' answers.
fn split(run: Vec<Queued>) -> (String, Vec<Vec<u8>>, Vec<Answer>) {
    let mut subject = String::new();
    let mut jsons = Vec::with_capacity(run.len());
    let mut answers = Vec::with_capacity(run.len());
    for queued in run {
        subject = queued.subject;
        jsons.push(queued.json);
        answers.push(queued.done);
    }
    (subject, jsons, answers)
}

/// The payload of a bundle of `parts`.
fn pack(parts: &[Vec<u8>]) -> Bytes {
    let mut payload = BytesMut::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        payload.put_u32_le(u32::try_from(part.len()).unwrap_or(u32::MAX));
        payload.put_slice(part);
    }
    payload.freeze()
}

/// The parts of a bundle's payload, sharing its bytes; an error if it is cut or its count
/// disagrees with the header's.
pub(crate) fn unpack(payload: &Bytes, count: usize) -> Result<Vec<Bytes>, String> {
    let mut parts = Vec::with_capacity(count.min(MAX_PARTS * 4));
    let mut at = 0;
    while at < payload.len() {
        let Some(len) = payload.get(at..at + 4) else {
            return Err(format!(
                "bundle cut in the length of part {}",
                parts.len() + 1
            ));
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let start = at + 4;
        if start + len > payload.len() {
            return Err(format!("bundle cut in part {}", parts.len() + 1));
        }
        parts.push(payload.slice(start..start + len));
        at = start + len;
    }
    if parts.len() != count {
        return Err(format!(
            "bundle holds {} parts, its header says {count}",
            parts.len()
        ));
    }
    Ok(parts)
}

/// How many parts a delivered message holds per its headers: `None` for an ordinary message.
pub(crate) fn parts_of(headers: Option<&HeaderMap>) -> Option<Result<usize, String>> {
    let value = headers?.get(BUNDLE)?;
    Some(
        value
            .as_str()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("bad {BUNDLE} header {:?}", value.as_str())),
    )
}

/// One delivered bundle, settled once all its parts are.
pub(crate) struct Bundle {
    shared: Arc<Shared>,
    reply: Subject,
    /// Parts not yet settled.
    open: AtomicUsize,
    /// The longest delay a part was nacked with, if any was.
    nacked: Mutex<Option<Duration>>,
    /// When the server's ack timer last started: at delivery, or at a progress ack.
    timer_started: Mutex<Instant>,
}

impl Bundle {
    /// A bundle of `parts` parts whose acks go to `reply`.
    pub(crate) fn new(shared: Arc<Shared>, reply: Subject, parts: usize, arrived: Instant) -> Self {
        Self {
            shared,
            reply,
            open: AtomicUsize::new(parts),
            nacked: Mutex::new(None),
            timer_started: Mutex::new(arrived),
        }
    }

    /// The bundle's ack subject if a progress ack is due, its timer having run for `after`:
    /// parts queued behind a slow caller must not see the whole bundle redelivered.
    pub(crate) fn progress_due(&self, after: Duration) -> Option<&Subject> {
        let mut started = self
            .timer_started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(*started) <= after {
            return None;
        }
        *started = now;
        Some(&self.reply)
    }

    /// Settles one part: acked (`None`) or nacked with a delay. The last part settles the
    /// bundle: acks it, or naks it with the longest delay if any part was nacked.
    pub(crate) async fn settle(&self, nack: Option<Duration>) -> Result<(), BusError> {
        let last = {
            let mut nacked = self
                .nacked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(delay) = nack {
                *nacked = Some(nacked.map_or(delay, |d| d.max(delay)));
            }
            // Under the lock, so the last part reads every other part's nack.
            (self.open.fetch_sub(1, Ordering::AcqRel) == 1).then_some(*nacked)
        };
        match last {
            None => Ok(()),
            Some(None) => crate::consumer::send_ack(&self.shared, &self.reply, AckKind::Ack)
                .await
                .map(|_| ()),
            Some(Some(delay)) => {
                let kind = if delay.is_zero() {
                    AckKind::Nak(None)
                } else {
                    AckKind::Nak(Some(delay))
                };
                crate::consumer::send_ack(&self.shared, &self.reply, kind)
                    .await
                    .map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_a_cut_bundle_is_refused() {
        let parts = vec![b"{\"a\":1}".to_vec(), Vec::new(), b"[1,2,3]".to_vec()];
        let payload = pack(&parts);
        let back = unpack(&payload, 3).expect("unpacks");
        assert_eq!(back, parts);
        assert!(unpack(&payload, 2).is_err(), "count disagrees");
        let cut = payload.slice(..payload.len() - 1);
        assert!(unpack(&cut, 3).is_err(), "cut in a part");
        let cut = payload.slice(..2);
        assert!(unpack(&cut, 1).is_err(), "cut in a length");
    }

    #[test]
    fn header_gives_the_part_count() {
        assert!(parts_of(None).is_none());
        let mut headers = HeaderMap::new();
        assert!(parts_of(Some(&headers)).is_none());
        headers.insert(BUNDLE, "12");
        assert_eq!(parts_of(Some(&headers)), Some(Ok(12)));
        headers.insert(BUNDLE, "0");
        assert!(matches!(parts_of(Some(&headers)), Some(Err(_))));
    }

    fn queued(stream: &'static str, subject: &str, len: usize) -> Queued {
        Queued {
            stream,
            subject: subject.to_owned(),
            json: vec![b'x'; len],
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn runs_keep_each_subject_in_order_within_the_caps() {
        let mut batch = vec![
            queued("A", "a.1", 10),
            queued("B", "b.1", 10),
            queued("A", "a.1", 11),
            queued("A", "a.2", 12),
            queued("A", "a.2", 13),
        ];
        batch.sort_by_key(|q| q.stream);
        let runs = runs(batch, MAX_BYTES);
        let shape: Vec<Vec<(&str, usize)>> = runs
            .iter()
            .map(|r| {
                r.iter()
                    .map(|q| (q.subject.as_str(), q.json.len()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![("a.1", 10), ("a.1", 11)],
                vec![("a.2", 12), ("a.2", 13)],
                vec![("b.1", 10)],
            ]
        );

        let many: Vec<Queued> = (0..MAX_PARTS + 1).map(|_| queued("A", "a", 1)).collect();
        assert_eq!(
            runs_lens(many),
            vec![MAX_PARTS, 1],
            "at most MAX_PARTS parts"
        );
        let big: Vec<Queued> = (0..3).map(|_| queued("A", "a", MAX_BYTES / 2)).collect();
        assert_eq!(runs_lens(big), vec![1, 1, 1], "at most MAX_BYTES bytes");
    }

    fn runs_lens(batch: Vec<Queued>) -> Vec<usize> {
        runs(batch, MAX_BYTES).iter().map(Vec::len).collect()
    }
}
