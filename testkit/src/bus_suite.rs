//! The bus contract as tests: one body per behaviour of [`Bus`], run against every backend.
//!
//! A backend's test file implements [`BusUnderTest`] and invokes [`bus_conformance!`] with an
//! expression that opens one (or `None` to skip); each case below becomes a `#[tokio::test]`
//! of that file. What only one backend does (JetStream bundles, compression, server restarts;
//! closing the in-process bus) stays in that backend's own tests.
//!
//! Subjects and durables are Spindle's own (the fetch stage), so the cases run unchanged on a
//! bus that only accepts the subjects of its streams.
//!
//! [`bus_conformance!`]: crate::bus_conformance

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use spindle_common::bus::{Bus, Consumer, ConsumerSpec, ConsumerStats, Delivery};
use spindle_common::message::{Message, NewTasks, WIRE_VERSION};
use spindle_common::subject::{Stage, durable};
use tokio::time::{Instant, timeout};

/// A bus backend opened for one test, empty.
#[async_trait]
pub trait BusUnderTest: Send + Sync {
    /// The bus.
    fn bus(&self) -> Arc<dyn Bus>;
    /// Another connection to the same bus, as a second process would open; an in-process
    /// bus, which has no other connection, returns itself.
    async fn second(&self) -> Arc<dyn Bus>;
}

/// Turns every case of [`crate::bus_suite`] into a `#[tokio::test]` of the invoking file.
///
/// `$open` is an expression evaluated in each test, a future of `Option<impl BusUnderTest>`;
/// `None` skips the test (after printing why, see [`crate::require_service`]).
#[macro_export]
macro_rules! bus_conformance {
    ($open:expr) => {
        $crate::bus_conformance!(@cases $open;
            round_trip,
            two_handles_of_one_durable_split_the_work,
            unacked_messages_are_redelivered_after_ack_wait,
            nack_with_delay_redelivers_after_the_delay,
            max_in_flight_bounds_unacked_deliveries,
            a_stopped_handle_leaves_later_messages_to_the_others,
            stats_count_pending_and_in_flight,
            next_is_cancel_safe,
            a_batch_keeps_its_order,
            listeners_get_matching_events_sent_after_they_listen,
        );
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(under_test) = $open.await else {
                    return;
                };
                $crate::bus_suite::$case(&under_test).await;
            }
        )*
    };
}

/// A message telling itself apart by `parent`.
pub fn msg(parent: &str) -> Message {
    Message::NewTasks(NewTasks {
        v: WIRE_VERSION,
        project: "p".into(),
        parent: parent.into(),
        tasks: vec![],
    })
}

/// The `parent` of a message made by [`msg`].
pub fn parent(d: &Delivery) -> String {
    match d.message.as_ref() {
        Message::NewTasks(n) => n.parent.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The next delivery, which must come within 10 s.
pub async fn next(c: &mut Box<dyn Consumer>) -> Delivery {
    timeout(Duration::from_secs(10), c.next())
        .await
        .expect("a message within 10 s")
        .expect("open")
        .expect("no error")
}

/// The fetchers' consumer.
pub fn fetch_spec() -> ConsumerSpec {
    ConsumerSpec::new(Stage::Fetch.filter(), durable::FETCHER)
}

/// The fetch subject of project `p`.
pub fn fetch_subject() -> String {
    Stage::Fetch.subject("p")
}

/// A message published before its consumer exists is kept, delivered once with its subject,
/// and gone from the queue once acked; messages of other subjects are not delivered.
pub async fn round_trip(t: &impl BusUnderTest) {
    let bus = t.bus();
    bus.publish(&Stage::NewTask.subject("p"), msg("other"))
        .await
        .expect("publish");
    bus.publish(&fetch_subject(), msg("a"))
        .await
        .expect("publish");
    let mut c = bus.consume(fetch_spec()).await.expect("consume");
    let d = next(&mut c).await;
    assert_eq!(d.subject, "spindle.fetch.p");
    assert_eq!(*d.message, msg("a"));
    assert_eq!(d.redeliveries, 0);
    d.ack().await.expect("ack");
    let stats = bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!(stats.pending + stats.in_flight, 0);
}

/// Handles opened with one durable name, in two processes, share one queue: every message
/// is delivered once, and both handles work.
pub async fn two_handles_of_one_durable_split_the_work(t: &impl BusUnderTest) {
    let bus = t.bus();
    let total = 24;
    for i in 0..total {
        bus.publish(&fetch_subject(), msg(&i.to_string()))
            .await
            .expect("publish");
    }
    let spec = fetch_spec().max_in_flight(4);
    let second = t.second().await;
    let handles = [
        bus.consume(spec.clone()).await.expect("consume"),
        second.consume(spec).await.expect("consume"),
    ];
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for (worker, mut c) in handles.into_iter().enumerate() {
        let seen_tx = seen_tx.clone();
        workers.push(tokio::spawn(async move {
            while let Ok(Some(Ok(d))) = timeout(Duration::from_secs(2), c.next()).await {
                // Slow work, so the other handle gets its turn.
                tokio::time::sleep(Duration::from_millis(30)).await;
                seen_tx.send((worker, parent(&d))).expect("collector alive");
                d.ack().await.expect("ack");
            }
        }));
    }
    drop(seen_tx);
    for w in workers {
        w.await.expect("worker");
    }
    let mut per_worker = [0usize; 2];
    let mut counts: HashMap<String, usize> = HashMap::new();
    while let Some((worker, p)) = seen_rx.recv().await {
        per_worker[worker] += 1;
        *counts.entry(p).or_default() += 1;
    }
    assert_eq!(counts.len(), total, "every message delivered");
    assert!(counts.values().all(|&n| n == 1), "none twice: {counts:?}");
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "both handles worked: {per_worker:?}"
    );
}

/// A delivery neither acked nor nacked (its worker died) comes again after the ack wait.
pub async fn unacked_messages_are_redelivered_after_ack_wait(t: &impl BusUnderTest) {
    let bus = t.bus();
    let spec = fetch_spec().ack_wait(Duration::from_secs(1));
    let mut c = bus.consume(spec).await.expect("consume");
    bus.publish(&fetch_subject(), msg("x"))
        .await
        .expect("publish");
    let first = next(&mut c).await;
    assert_eq!(first.redeliveries, 0);
    let start = Instant::now();
    drop(first);
    let again = next(&mut c).await;
    assert_eq!(parent(&again), "x");
    assert_eq!(again.redeliveries, 1);
    assert!(start.elapsed() >= Duration::from_millis(700));
    again.ack().await.expect("ack");
}

/// A nack with a delay gives the message back, delivered again after the delay, not before.
pub async fn nack_with_delay_redelivers_after_the_delay(t: &impl BusUnderTest) {
    let bus = t.bus();
    let mut c = bus.consume(fetch_spec()).await.expect("consume");
    bus.publish(&fetch_subject(), msg("x"))
        .await
        .expect("publish");
    let start = Instant::now();
    next(&mut c)
        .await
        .nack(Duration::from_secs(1))
        .await
        .expect("nack");
    assert!(
        timeout(Duration::from_millis(500), c.next()).await.is_err(),
        "not before the delay"
    );
    let again = next(&mut c).await;
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(parent(&again), "x");
    assert_eq!(again.redeliveries, 1);
    again.ack().await.expect("ack");
}

/// No more than `max_in_flight` deliveries are unacknowledged at once; an ack frees a slot.
pub async fn max_in_flight_bounds_unacked_deliveries(t: &impl BusUnderTest) {
    let bus = t.bus();
    let mut c = bus
        .consume(fetch_spec().max_in_flight(2))
        .await
        .expect("consume");
    for p in ["1", "2", "3"] {
        bus.publish(&fetch_subject(), msg(p))
            .await
            .expect("publish");
    }
    let a = next(&mut c).await;
    let b = next(&mut c).await;
    assert!(
        timeout(Duration::from_millis(700), c.next()).await.is_err(),
        "the third waits for a free slot"
    );
    a.ack().await.expect("ack");
    let third = next(&mut c).await;
    assert_eq!(parent(&third), "3");
    third.ack().await.expect("ack");
    b.ack().await.expect("ack");
}

/// A handle dropped while it waits (a worker stopping) leaves later messages to live
/// handles at once, not after the ack wait (60 s here).
pub async fn a_stopped_handle_leaves_later_messages_to_the_others(t: &impl BusUnderTest) {
    let bus = t.bus();
    let spec = || {
        fetch_spec()
            .max_in_flight(8)
            .ack_wait(Duration::from_secs(60))
    };
    let mut stopping = bus.consume(spec()).await.expect("consume");
    assert!(
        timeout(Duration::from_millis(500), stopping.next())
            .await
            .is_err(),
        "nothing to receive yet"
    );
    drop(stopping);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut live = t.second().await.consume(spec()).await.expect("consume");
    bus.publish(&fetch_subject(), msg("late"))
        .await
        .expect("publish");
    let late = timeout(Duration::from_secs(20), live.next())
        .await
        .expect("delivered to the live handle well before the ack wait")
        .expect("open")
        .expect("no error");
    assert_eq!(parent(&late), "late");
    late.ack().await.expect("ack");
}

/// Queue figures count waiting and unacknowledged messages, seen alike from every process;
/// an unknown durable has zeroes.
pub async fn stats_count_pending_and_in_flight(t: &impl BusUnderTest) {
    let bus = t.bus();
    assert_eq!(
        bus.stats("nobody").await.expect("stats"),
        ConsumerStats::default(),
        "an unknown durable has zeroes"
    );
    let mut c = bus
        .consume(fetch_spec().max_in_flight(1))
        .await
        .expect("consume");
    for p in ["1", "2", "3"] {
        bus.publish(&fetch_subject(), msg(p))
            .await
            .expect("publish");
    }
    let d = next(&mut c).await;
    let stats = bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!((stats.pending, stats.in_flight), (2, 1));
    let elsewhere = t
        .second()
        .await
        .stats(durable::FETCHER)
        .await
        .expect("stats");
    assert_eq!(elsewhere, stats);
    d.ack().await.expect("ack");
    let stats = bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!((stats.pending, stats.in_flight), (2, 0));
}

/// Dropping [`Consumer::next`]'s future before it completes loses nothing: every message
/// still comes, once, in order.
pub async fn next_is_cancel_safe(t: &impl BusUnderTest) {
    let bus = t.bus();
    let mut c = bus.consume(fetch_spec()).await.expect("consume");
    for _ in 0..20 {
        assert!(timeout(Duration::from_millis(5), c.next()).await.is_err());
    }
    let total = 30;
    let publisher = {
        let bus = t.second().await;
        tokio::spawn(async move {
            for i in 0..total {
                bus.publish(&fetch_subject(), msg(&i.to_string()))
                    .await
                    .expect("publish");
            }
        })
    };
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < total && Instant::now() < deadline {
        // Alternate a poll-once and a very short timeout: both drop the future mid-way.
        let polled = if got.len() % 2 == 0 {
            c.next().now_or_never()
        } else {
            timeout(Duration::from_millis(1), c.next()).await.ok()
        };
        match polled {
            Some(Some(Ok(d))) => {
                assert_eq!(d.redeliveries, 0, "nothing had to be redelivered");
                got.push(parent(&d));
                d.ack().await.expect("ack");
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    publisher.await.expect("publisher");
    let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(got, expected, "all, once, in order");
}

/// A batch published on one subject is delivered in the order given.
pub async fn a_batch_keeps_its_order(t: &impl BusUnderTest) {
    let bus = t.bus();
    let total = 50;
    let batch = (0..total)
        .map(|i| (fetch_subject(), msg(&i.to_string())))
        .collect();
    bus.publish_batch(batch).await.expect("publish batch");
    let mut c = bus.consume(fetch_spec()).await.expect("consume");
    let mut got = Vec::new();
    for _ in 0..total {
        let d = next(&mut c).await;
        got.push(parent(&d));
        d.ack().await.expect("ack");
    }
    let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

/// Events reach listeners whose filter matches and that listened before they were sent.
pub async fn listeners_get_matching_events_sent_after_they_listen(t: &impl BusUnderTest) {
    let bus = t.bus();
    bus.broadcast("spindle.events.x", b"early".to_vec())
        .await
        .expect("send");
    let mut events = bus.listen("spindle.events.>").await.expect("listen");
    bus.broadcast("spindle.other.y", b"no".to_vec())
        .await
        .expect("send");
    bus.broadcast("spindle.events.x", b"yes".to_vec())
        .await
        .expect("send");
    let (subject, payload) = timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("an event");
    assert_eq!(
        (subject.as_str(), payload.as_slice()),
        ("spindle.events.x", &b"yes"[..])
    );
}
