//! The NATS JetStream bus against a real nats-server (2.9 with JetStream).
//!
//! Every test works in its own random namespace on the shared server at `SPINDLE_TEST_NATS_URL`
//! (default `nats://127.0.0.1:4222`) and deletes its streams at the end, even when it fails.
//! The reconnect test starts its own server on a free port with a temporary store, kills it and
//! starts it again, so the shared server is never disturbed.
//!
//! Without a reachable server the tests print why and pass, unless `CI=true`, where they fail.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use spindle_common::bus::{Bus, ConsumerSpec, Delivery};
use spindle_common::message::Message;
use spindle_common::subject::{Stage, durable};
use spindle_nats::{NatsBus, NatsOptions};
use spindle_testkit::bus_suite::{BusUnderTest, fetch_spec, fetch_subject, msg, next, parent};
use tokio::time::{Instant, timeout};

const DEFAULT_URL: &str = "nats://127.0.0.1:4222";
const NATS_SERVER: &str = "/usr/sbin/nats-server";

fn url() -> String {
    std::env::var("SPINDLE_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Whether something listens at the host:port of `url`.
fn reachable(url: &str) -> bool {
    let hostport = url.trim_start_matches("nats://");
    let Ok(addr) = hostport.parse::<SocketAddr>() else {
        // A host name: let the client try.
        return true;
    };
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// A bus in a fresh namespace whose streams are deleted when it is dropped.
struct TestBus {
    bus: NatsBus,
    options: NatsOptions,
    _cleanup: Cleanup,
}

impl TestBus {
    async fn open(url: &str) -> Option<TestBus> {
        let attempt = if reachable(url) {
            Ok(())
        } else {
            Err("nothing listens there")
        };
        spindle_testkit::require_service(&format!("NATS at {url}"), attempt)?;
        let namespace = format!("t{}", nuid::next());
        // Armed before connecting, so streams of a half-done set-up are deleted too.
        let cleanup = Cleanup {
            url: url.to_owned(),
            namespace: namespace.clone(),
        };
        let options = NatsOptions {
            namespace: Some(namespace),
            connect_timeout: Some(Duration::from_secs(10)),
            ..NatsOptions::new(url)
        };
        let bus = NatsBus::connect(options.clone())
            .await
            .unwrap_or_else(|e| panic!("NATS at {url} is up but unusable: {e}"));
        Some(TestBus {
            bus,
            options,
            _cleanup: cleanup,
        })
    }

    /// Another connection on the same namespace, as a second process would open.
    async fn second(&self) -> NatsBus {
        NatsBus::connect(self.options.clone())
            .await
            .expect("second connection")
    }
}

#[async_trait]
impl BusUnderTest for TestBus {
    fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus.clone())
    }

    async fn second(&self) -> Arc<dyn Bus> {
        Arc::new(TestBus::second(self).await)
    }
}

spindle_testkit::bus_conformance!(TestBus::open(&url()));

/// Deletes every stream of a namespace when dropped, with a raw client of its own.
struct Cleanup {
    url: String,
    namespace: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let url = self.url.clone();
        let prefixes = [
            format!("{}_", self.namespace),
            format!("OBJ_{}_", self.namespace),
        ];
        // Async work from a synchronous drop: a thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let Ok(client) = async_nats::connect(url.as_str()).await else {
                    eprintln!("test streams not deleted: no connection");
                    return;
                };
                let js = async_nats::jetstream::new(client);
                let names: Vec<String> = js
                    .stream_names()
                    .filter_map(|n| async move { n.ok() })
                    .collect()
                    .await;
                for name in names {
                    if prefixes.iter().any(|p| name.starts_with(p.as_str()))
                        && let Err(e) = js.delete_stream(&name).await
                    {
                        eprintln!("test stream {name} not deleted: {e}");
                    }
                }
            });
        });
        if cleanup.join().is_err() {
            eprintln!("test stream cleanup panicked");
        }
    }
}

/// Reads `n` messages through the scheduler's consumer, acking each: (subject, parent) in
/// the order they came.
async fn read_scheduler_stream(
    bus: &NatsBus,
    n: usize,
    max_in_flight: usize,
) -> Vec<(String, String)> {
    let spec = ConsumerSpec::new(Stage::NewTask.filter(), durable::SCHEDULER)
        .also(Stage::Status.filter())
        .max_in_flight(max_in_flight);
    let mut c = bus.consume(spec).await.expect("consume");
    let mut got = Vec::new();
    for _ in 0..n {
        let d = next(&mut c).await;
        got.push((d.subject.clone(), parent(&d)));
        d.ack().await.expect("ack");
    }
    got
}

/// Stored bytes and messages of a stream, read with a raw client.
async fn stream_state(url: &str, stream: &str) -> (u64, u64) {
    let client = async_nats::connect(url).await.expect("raw client");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("stream exists");
    let info = stream.info().await.expect("stream info");
    (info.state.messages, info.state.bytes)
}

#[tokio::test]
async fn publish_and_consume_round_trip() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    t.bus
        .publish(&fetch_subject(), msg("a"))
        .await
        .expect("publish");
    let mut c = t.bus.consume(fetch_spec()).await.expect("consume");
    let d = next(&mut c).await;
    assert_eq!(d.subject, "spindle.fetch.p", "the namespace never shows");
    assert_eq!(*d.message, msg("a"));
    assert_eq!(d.redeliveries, 0);
    d.ack().await.expect("ack");
    let stats = t.bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!(stats.pending + stats.in_flight, 0);
    let ns = t.options.namespace.clone().expect("namespace");
    let (messages, _) = stream_state(&url(), &format!("{ns}_SPINDLE_FETCH")).await;
    assert_eq!(messages, 0, "an acked message leaves the work queue");
    drop(c);
    t.bus.delete_streams().await.expect("delete streams");
    let client = async_nats::connect(url()).await.expect("raw client");
    let js = async_nats::jetstream::new(client);
    assert!(js.get_stream(format!("{ns}_SPINDLE_FETCH")).await.is_err());
}

#[tokio::test]
async fn publishing_outside_the_streams_is_refused() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    assert!(t.bus.publish("spindle.control", msg("x")).await.is_err());
    assert!(t.bus.publish("spindle.fetch.*", msg("x")).await.is_err());
    match t
        .bus
        .consume(ConsumerSpec::new("spindle.>", "observer"))
        .await
    {
        Ok(_) => panic!("a consumer spanning streams was accepted"),
        Err(err) => assert!(err.to_string().contains("filters"), "{err}"),
    }
}

/// On top of the suite's `max_in_flight_bounds_unacked_deliveries`: the bound is per
/// instance, so another process of the role gets the message the first has no slot for.
#[tokio::test]
async fn another_instance_has_in_flight_slots_of_its_own() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let mut c = t
        .bus
        .consume(fetch_spec().max_in_flight(2))
        .await
        .expect("consume");
    for p in ["1", "2", "3"] {
        t.bus
            .publish(&fetch_subject(), msg(p))
            .await
            .expect("publish");
    }
    let a = next(&mut c).await;
    let b = next(&mut c).await;
    let mut other = t
        .second()
        .await
        .consume(fetch_spec().max_in_flight(2))
        .await
        .expect("consume");
    let third = next(&mut other).await;
    assert_eq!(parent(&third), "3");
    third.ack().await.expect("ack");
    a.ack().await.expect("ack");
    b.ack().await.expect("ack");
}

#[tokio::test]
async fn the_scheduler_reads_follows_and_outcomes_in_publish_order() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let mut expected = Vec::new();
    for i in 0..10 {
        let stage = if i % 3 == 2 {
            Stage::Status
        } else {
            Stage::NewTask
        };
        let subject = stage.subject(&format!("p{}", i % 2));
        t.bus
            .publish(&subject, msg(&i.to_string()))
            .await
            .expect("publish");
        expected.push((subject, i.to_string()));
    }
    let got = read_scheduler_stream(&t.bus, expected.len(), 64).await;
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_batch_travels_in_bundles_and_keeps_its_order() {
    // On this single-threaded test runtime the bundler runs only once the whole batch is
    // queued, so what it stores is deterministic: one bundle per run of one subject.
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let runs = [
        (Stage::NewTask.subject("p0"), 30),
        (Stage::Status.subject("p0"), 20),
        (Stage::NewTask.subject("p1"), 30),
    ];
    let mut batch = Vec::new();
    for (subject, n) in &runs {
        for _ in 0..*n {
            let i = batch.len().to_string();
            batch.push((subject.clone(), msg(&i)));
        }
    }
    let expected: Vec<(String, String)> = batch
        .iter()
        .map(|(s, m)| match m {
            Message::NewTasks(n) => (s.clone(), n.parent.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    t.bus.publish_batch(batch).await.expect("publish batch");
    let ns = t.options.namespace.clone().expect("namespace");
    let (stored, _) = stream_state(&url(), &format!("{ns}_SPINDLE_SCHEDULER")).await;
    assert_eq!(stored, 3, "80 messages stored as one bundle per run");

    let got = read_scheduler_stream(&t.bus, expected.len(), 16).await;
    assert_eq!(got, expected, "every part, in publish order");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (stored, _) = stream_state(&url(), &format!("{ns}_SPINDLE_SCHEDULER")).await;
    assert_eq!(
        stored, 0,
        "a bundle leaves the work queue once all its parts are acked"
    );
}

#[tokio::test]
async fn publishers_a_moment_apart_share_a_bundle() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let bus = NatsBus::connect(NatsOptions {
        bundle_linger: Duration::from_millis(300),
        ..t.options.clone()
    })
    .await
    .expect("connect");
    let late = {
        let bus = bus.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            bus.publish(&fetch_subject(), msg("b")).await
        })
    };
    bus.publish(&fetch_subject(), msg("a"))
        .await
        .expect("publish");
    late.await.expect("joined").expect("publish");
    let ns = t.options.namespace.clone().expect("namespace");
    let (stored, _) = stream_state(&url(), &format!("{ns}_SPINDLE_FETCH")).await;
    assert_eq!(
        stored, 1,
        "the second publish joined the first one's bundle"
    );
    let mut c = t.bus.consume(fetch_spec()).await.expect("consume");
    for expected in ["a", "b"] {
        let d = next(&mut c).await;
        assert_eq!(parent(&d), expected);
        d.ack().await.expect("ack");
    }
}

#[tokio::test]
async fn a_nacked_part_gives_its_whole_bundle_back() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let batch = (0..5)
        .map(|i| (fetch_subject(), msg(&i.to_string())))
        .collect();
    t.bus.publish_batch(batch).await.expect("publish batch");
    let mut c = t.bus.consume(fetch_spec()).await.expect("consume");
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(next(&mut c).await);
    }
    assert!(first.iter().all(|d| d.redeliveries == 0));
    let nacked = first.remove(2);
    Delivery::ack_all(first).await.expect("ack four");
    nacked.nack(Duration::ZERO).await.expect("nack one");
    // Handlers are idempotent: the bundle comes back whole, acked parts included.
    let mut again = Vec::new();
    for _ in 0..5 {
        let d = next(&mut c).await;
        assert_eq!(d.redeliveries, 1);
        again.push(parent(&d));
        d.ack().await.expect("ack");
    }
    assert_eq!(again, ["0", "1", "2", "3", "4"]);
    assert!(
        timeout(Duration::from_millis(500), c.next()).await.is_err(),
        "acked for good"
    );
}

#[tokio::test]
async fn dropping_a_handle_gives_back_the_parts_it_never_handed_out() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let spec = || fetch_spec().ack_wait(Duration::from_secs(60));
    let batch = (0..10)
        .map(|i| (fetch_subject(), msg(&i.to_string())))
        .collect();
    t.bus.publish_batch(batch).await.expect("publish batch");
    let mut stopping = t.bus.consume(spec()).await.expect("consume");
    for _ in 0..3 {
        next(&mut stopping).await.ack().await.expect("ack");
    }
    drop(stopping);
    let mut live = t.second().await.consume(spec()).await.expect("consume");
    let mut got = Vec::new();
    for _ in 0..10 {
        let d = timeout(Duration::from_secs(20), live.next())
            .await
            .expect("given back well before the 60 s ack wait")
            .expect("open")
            .expect("no error");
        got.push(parent(&d));
        d.ack().await.expect("ack");
    }
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

/// A deterministic pseudo-random text that gzip cannot shrink much.
fn noise(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

#[tokio::test]
async fn large_bodies_travel_compressed_or_through_the_object_store() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let ns = t.options.namespace.clone().expect("namespace");
    let bucket_stream = format!("OBJ_{ns}_SPINDLE_BODIES");
    assert!(t.bus.max_payload() >= 1024 * 1024);

    // 5 MB of HTML-like text: compresses below the max payload.
    let html = "<li><a href=\"/catalogue/page-1.html\">A Light in the Attic</a></li>\n"
        .repeat(5 * 1024 * 1024 / 66);
    let compressible = msg(&html);
    // 20 MB of noise: too big even compressed, goes to the object store.
    let incompressible = msg(&noise(20 * 1024 * 1024, 7));

    let mut c = t.bus.consume(fetch_spec()).await.expect("consume");
    t.bus
        .publish(&fetch_subject(), compressible.clone())
        .await
        .expect("publish 5 MB");
    let (objects, _) = stream_state(&url(), &bucket_stream).await;
    assert_eq!(objects, 0, "a compressible body stays in its message");
    let d = next(&mut c).await;
    assert!(*d.message == compressible, "5 MB body intact");
    d.ack().await.expect("ack");

    t.bus
        .publish(&fetch_subject(), incompressible.clone())
        .await
        .expect("publish 20 MB");
    let (_, stored) = stream_state(&url(), &bucket_stream).await;
    assert!(stored > 10 * 1024 * 1024, "the body is in the bucket");
    let d = timeout(Duration::from_secs(30), c.next())
        .await
        .expect("within 30 s")
        .expect("open")
        .expect("no error");
    assert!(*d.message == incompressible, "20 MB body intact");
    d.ack().await.expect("ack");
    let (_, left) = stream_state(&url(), &bucket_stream).await;
    assert!(
        left < 64 * 1024,
        "body deleted once acked ({left} bytes left)"
    );
}

#[tokio::test]
async fn pages_travel_lz4_compressed_and_come_back_whole() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    // Ten page-sized messages, bundled together, and one alone on another stream.
    let page = |i: usize| {
        msg(&format!(
            "{i}{}",
            "<li><a href=\"/item/1\">Item</a></li>\n".repeat(250)
        ))
    };
    let batch: Vec<(String, Message)> = (0..10)
        .map(|i| (Stage::NewTask.subject("p"), page(i)))
        .collect();
    let raw: usize = batch
        .iter()
        .map(|(_, m)| m.to_bytes().expect("json").len())
        .sum();
    t.bus.publish_batch(batch.clone()).await.expect("publish");
    t.bus
        .publish(&fetch_subject(), page(10))
        .await
        .expect("publish one");
    let ns = t.options.namespace.clone().expect("namespace");
    let (stored, bytes) = stream_state(&url(), &format!("{ns}_SPINDLE_SCHEDULER")).await;
    assert_eq!(stored, 1, "one bundle");
    assert!(
        (bytes as usize) < raw / 4,
        "{bytes} bytes stored for {raw} bytes of JSON"
    );
    let (_, one) = stream_state(&url(), &format!("{ns}_SPINDLE_FETCH")).await;
    assert!(
        (one as usize) < raw / 10 / 4,
        "a single page is compressed too ({one} bytes)"
    );

    let got = read_scheduler_stream(&t.bus, 10, 16).await;
    let want: Vec<(String, String)> = batch
        .iter()
        .map(|(s, m)| match m {
            Message::NewTasks(n) => (s.clone(), n.parent.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got, want, "every part whole, in order");
    let mut c = t.bus.consume(fetch_spec()).await.expect("consume");
    let d = next(&mut c).await;
    assert!(*d.message == page(10), "the single page whole");
    d.ack().await.expect("ack");
}

#[tokio::test]
async fn a_compressed_body_claiming_too_much_is_terminated() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    // Claims 4 GiB uncompressed: refused before anything is allocated for it.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Spindle-Encoding", "lz4");
    a_bad_message_is_terminated(&t, headers, vec![0xff, 0xff, 0xff, 0xff, 0x10, 0x41]).await;
}

#[tokio::test]
async fn undecodable_messages_are_terminated_not_redelivered() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let headers = async_nats::HeaderMap::new();
    a_bad_message_is_terminated(&t, headers, b"not json".to_vec()).await;
}

/// Publishes `payload` with `headers` on the fetch stream with a raw client, then a good
/// message: the good one is delivered, the bad one is terminated and never comes back.
async fn a_bad_message_is_terminated(
    t: &TestBus,
    headers: async_nats::HeaderMap,
    payload: Vec<u8>,
) {
    let ns = t.options.namespace.clone().expect("namespace");
    let client = async_nats::connect(url()).await.expect("raw client");
    let js = async_nats::jetstream::new(client);
    js.publish_with_headers(format!("{ns}.spindle.fetch.p"), headers, payload.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    t.bus
        .publish(&fetch_subject(), msg("good"))
        .await
        .expect("publish");
    let mut c = t
        .bus
        .consume(fetch_spec().ack_wait(Duration::from_secs(1)))
        .await
        .expect("consume");
    let d = next(&mut c).await;
    assert_eq!(parent(&d), "good");
    d.ack().await.expect("ack");
    assert!(
        timeout(Duration::from_secs(2), c.next()).await.is_err(),
        "the bad message does not come back"
    );
    let stats = t.bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!(stats.pending + stats.in_flight, 0);
}

/// A nats-server of this test's own, on a free port with a temporary store.
struct OwnServer {
    child: Child,
    port: u16,
}

impl OwnServer {
    fn start(port: u16, store: &Path) -> std::io::Result<OwnServer> {
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(OwnServer { child, port })
    }

    async fn wait_ready(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "own nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server as a crash would (SIGKILL).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server the way an orderly restart does (SIGTERM), waiting for it to exit.
    fn stop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn the_bus_survives_a_server_restart() {
    restart(false).await;
}

#[tokio::test]
async fn the_bus_survives_a_server_crash() {
    restart(true).await;
}

/// Stops (or kills, if `crash`) a server of the test's own under a waiting consumer and a
/// publish, starts it again, and checks every message arrives: exactly once after an orderly
/// restart; at least once after a crash, where the server may have lost its record of a
/// delivery or an ack that was not yet on disk.
async fn restart(crash: bool) {
    let installed = if Path::new(NATS_SERVER).exists() {
        Ok(())
    } else {
        Err("not installed (apt-get install -y nats-server)")
    };
    if spindle_testkit::require_service(NATS_SERVER, installed).is_none() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let store = tempfile::tempdir().expect("temp dir");
    let mut server = OwnServer::start(port, store.path()).expect("start nats-server");
    server.wait_ready().await;
    let url = format!("nats://127.0.0.1:{port}");
    let options = NatsOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        publish_timeout: Duration::from_secs(30),
        ..NatsOptions::new(&url)
    };
    let bus = NatsBus::connect(options).await.expect("connect");
    let mut c = bus
        .consume(fetch_spec().max_in_flight(8))
        .await
        .expect("consume");

    bus.publish(&fetch_subject(), msg("before"))
        .await
        .expect("publish");
    let d = next(&mut c).await;
    assert_eq!(parent(&d), "before");
    d.ack().await.expect("ack");
    bus.publish(&fetch_subject(), msg("queued"))
        .await
        .expect("publish");

    // A consumer waiting through the outage, and a publish made while the server is down.
    if crash {
        server.kill();
    } else {
        server.stop();
    }
    let expected = ["after", "during", "queued"];
    let waiting = tokio::spawn(async move {
        let mut got = Vec::new();
        while !expected.iter().all(|e| got.iter().any(|g| g == e)) {
            match timeout(Duration::from_secs(40), c.next()).await {
                Ok(Some(Ok(d))) => {
                    got.push(parent(&d));
                    d.ack().await.expect("ack");
                }
                other => panic!("no delivery after the restart: {other:?}"),
            }
        }
        (c, got)
    });
    let publishing = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish(&fetch_subject(), msg("during")).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _server = OwnServer::start(port, store.path()).expect("restart nats-server");
    publishing
        .await
        .expect("publisher")
        .expect("a publish during the outage succeeds once the server is back");
    bus.publish(&fetch_subject(), msg("after"))
        .await
        .expect("publish");

    let (mut c, mut got) = waiting.await.expect("consumer");
    got.sort();
    if crash {
        // Redeliveries (even of "before", acked before the crash) are within the contract.
        got.dedup();
        got.retain(|g| g != "before");
    } else {
        assert!(
            timeout(Duration::from_secs(1), c.next()).await.is_err(),
            "nothing twice"
        );
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_steady_flow_never_stalls() {
    let Some(t) = TestBus::open(&url()).await else {
        return;
    };
    let total = 2000;
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
    let mut c = t
        .bus
        .consume(fetch_spec().max_in_flight(64))
        .await
        .expect("consume");
    // Acks run concurrently and finish out of order, as a fetcher's do.
    let mut acks = tokio::task::JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    let start = Instant::now();
    while seen.len() < total {
        let d = next(&mut c).await;
        assert!(seen.insert(parent(&d)), "delivered twice");
        let pause = Duration::from_millis(parent(&d).parse::<u64>().unwrap_or(0) % 3);
        acks.spawn(async move {
            tokio::time::sleep(pause).await;
            d.ack().await.expect("ack");
        });
    }
    while let Some(done) = acks.join_next().await {
        done.expect("ack task");
    }
    publisher.await.expect("publisher");
    eprintln!("{total} messages through in {:?}", start.elapsed());
    let stats = t.bus.stats(durable::FETCHER).await.expect("stats");
    assert_eq!(stats.pending + stats.in_flight, 0);
}
