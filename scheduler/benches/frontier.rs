//! Frontier benchmark: synthetic URLs through the scheduler's dedupe and enqueue, then a
//! SIGKILL of a scheduler process and the time its successor needs to dispatch again.
//!
//! ```text
//! cargo bench -p spindle-scheduler --bench frontier -- [--urls N] [--dup 0.3] [--batch 2048]
//!     [--database sqlite://PATH | postgres://URL] [--no-restart]
//! ```
//!
//! Every batch is what the scheduler does with a batch of follows ([`admit`]): dedupe within
//! the batch, one lookup against the store, the re-crawl decision, one write. A fraction
//! `--dup` of the URLs repeat an earlier one. Prints decisions per second, peak RSS and RSS
//! per known URL every million decisions. The restart phase starts a scheduler process on the
//! filled store, SIGKILLs it once it dispatches, starts another and times it from spawn to
//! its first dispatched task, and times a new store's first dedupe lookup (which reads the
//! SQLite store's key log).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle_common::bus::{ConsumerSpec, MemoryBus};
use spindle_common::cpu::rss_kib;
use spindle_common::message::{Message, Task};
use spindle_common::store::{ProjectRecord, ProjectStatus, Store};
use spindle_common::subject::{Stage, durable};
use spindle_common::{Bus, StatsBoard, SystemClock};
use spindle_scheduler::SchedulerConfig;
use spindle_scheduler::budget::Budgets;
use spindle_scheduler::dedupe::{Recent, admit};
use spindle_scheduler::turns::Turns;
use tokio_util::sync::CancellationToken;

const PROJECT: &str = "frontier-bench";
const DEFINITION: &str = "name = \"frontier-bench\"\nstart = [\"http://127.0.0.1:9/\"]\nrate = 100000\nburst = 100000\n[handlers.start]\n";

struct Args {
    urls: u64,
    dup: f64,
    batch: usize,
    database: Option<String>,
    restart: bool,
    serve: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        urls: 10_000_000,
        dup: 0.3,
        batch: 2048,
        database: None,
        restart: true,
        serve: None,
    };
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    if !std::env::args().any(|a| a == "--bench" || a == "--serve") {
        a.urls = 20_000;
    }
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--urls" => {
                a.urls = value("--urls")?
                    .parse()
                    .map_err(|e| format!("--urls: {e}"))?
            }
            "--dup" => a.dup = value("--dup")?.parse().map_err(|e| format!("--dup: {e}"))?,
            "--batch" => {
                a.batch = value("--batch")?
                    .parse()
                    .map_err(|e| format!("--batch: {e}"))?
            }
            "--database" => a.database = Some(value("--database")?),
            "--no-restart" => a.restart = false,
            "--serve" => a.serve = Some(value("--serve")?),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    Ok(a)
}

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn task(n: u64) -> Task {
    let url = format!(
        "https://shop{}.example/catalogue/item-{n}/index.html",
        n % 509
    );
    Task {
        priority: (n % 3) as i32,
        depth: 2,
        ..Task::new(PROJECT, &url, "detail")
    }
}

async fn fill(store: &dyn Store, a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (rss_start, _) = rss_kib();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut fresh, mut decided, mut queued) = (0_u64, 0_u64, 0_u64);
    let mut busy = Duration::ZERO;
    let mut recent = Recent::new(SchedulerConfig::default().recent);
    // Places as the scheduler gives them once its first claim has set the service point.
    let mut turns = Turns::new(SchedulerConfig::default().hosts);
    turns.claimed(&[Task {
        order: 1,
        ..Task::new(PROJECT, "http://start.test/", "start")
    }]);
    let mut next_report = 1_000_000;
    let started = Instant::now();
    println!("decisions  known URLs  decisions/s (cumulative)  RSS MiB  peak MiB  RSS/known URL");
    // The defaults: no opt-in budget.
    let mut budgets = Budgets::default();
    while decided < a.urls {
        let n = (a.urls - decided).min(a.batch as u64) as usize;
        let batch: Vec<Task> = (0..n)
            .map(|_| {
                let repeat = fresh > 0 && (rng.next() % 10_000) as f64 / 10_000.0 < a.dup;
                if repeat {
                    task(rng.next() % fresh)
                } else {
                    fresh += 1;
                    task(fresh - 1)
                }
            })
            .collect();
        let t = Instant::now();
        queued += admit(
            store,
            PROJECT,
            batch,
            &mut recent,
            &mut turns,
            &mut budgets,
            None,
            0,
            0,
        )
        .await?
        .queued;
        busy += t.elapsed();
        decided += n as u64;
        if decided >= next_report || decided == a.urls {
            next_report += 1_000_000;
            let (rss, peak) = rss_kib();
            println!(
                "{decided:>9}  {queued:>10}  {:>24.0}  {:>7.0}  {:>8.0}  {:>10.1} B",
                decided as f64 / busy.as_secs_f64(),
                rss as f64 / 1024.0,
                peak as f64 / 1024.0,
                (rss.saturating_sub(rss_start) * 1024) as f64 / queued.max(1) as f64
            );
        }
    }
    let (_, peak) = rss_kib();
    println!(
        "\n{decided} decisions ({queued} queued, {} duplicates dropped) in {:.1} s of dedupe and enqueue ({:.1} s wall): {:.0} decisions/s, peak RSS {:.0} MiB",
        decided - queued,
        busy.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        decided as f64 / busy.as_secs_f64(),
        peak as f64 / 1024.0
    );
    Ok(())
}

/// Child mode: a scheduler on `url` that prints one line when it first dispatches.
async fn serve(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = spindle_store::connect(url).await?;
    let bus = MemoryBus::new();
    let mut fetch = bus
        .consume(ConsumerSpec::new(Stage::Fetch.filter(), durable::FETCHER))
        .await?;
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn(spindle_scheduler::run(
        SchedulerConfig::default(),
        Arc::new(bus.clone()),
        store,
        Arc::new(SystemClock),
        Arc::new(StatsBoard::new()),
        shutdown.clone(),
    ));
    while let Some(delivery) = fetch.next().await {
        if let Message::Fetch(_) = delivery?.message.as_ref() {
            println!("dispatching");
            break;
        }
    }
    // Keep running (tasks stay claimed and in flight) until killed.
    scheduler.await??;
    Ok(())
}

/// Starts a scheduler child on `url` and returns it with the time until it dispatched.
fn spawn_until_dispatch(url: &str) -> Result<(std::process::Child, Duration), String> {
    let start = Instant::now();
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["--serve", url])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn scheduler: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        if line.map_err(|e| e.to_string())? == "dispatching" {
            return Ok((child, start.elapsed()));
        }
    }
    Err(format!(
        "scheduler exited before dispatching: {:?}",
        child.wait()
    ))
}

fn restart(url: &str) -> Result<(), String> {
    let (mut first, cold) = spawn_until_dispatch(url)?;
    // Let it claim and send a window, as a busy scheduler would have, then kill it.
    std::thread::sleep(Duration::from_secs(1));
    first.kill().map_err(|e| format!("SIGKILL: {e}"))?;
    first.wait().map_err(|e| e.to_string())?;
    let (mut second, after_kill) = spawn_until_dispatch(url)?;
    second.kill().map_err(|e| e.to_string())?;
    second.wait().map_err(|e| e.to_string())?;
    println!(
        "first start to dispatch: {:.2} s; after SIGKILL, start to dispatch: {:.2} s",
        cold.as_secs_f64(),
        after_kill.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    if let Some(url) = &a.serve {
        return serve(url).await;
    }
    let dir = tempfile::tempdir()?;
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("frontier.db").display()));
    println!(
        "frontier bench: {} URLs, {:.0}% repeats, batches of {}, store {}",
        a.urls,
        a.dup * 100.0,
        a.batch,
        url.split('@').next_back().unwrap_or(&url)
    );
    let store = spindle_store::connect(&url).await?;
    store.delete_project(PROJECT).await?;
    store
        .save_project(&ProjectRecord {
            name: PROJECT.into(),
            definition: DEFINITION.into(),
            status: ProjectStatus::Running,
            rate: 100_000.0,
            burst: 100_000.0,
            group: None,
            updated_ms: 1,
            last_start_ms: 1,
            run_requested_ms: 0,
            origin: None,
        })
        .await?;
    fill(store.as_ref(), &a).await?;
    drop(store);
    if a.restart {
        restart(&url)?;
    }
    // Dispatch needs no key map; the first dedupe after a start reads it (SQLite).
    let started = Instant::now();
    let store = spindle_store::connect(&url).await?;
    store.presence(PROJECT, &["none"]).await?;
    println!(
        "a new store, opened and through its first dedupe lookup: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(store);
    if a.database.is_some() {
        spindle_store::connect(&url)
            .await?
            .delete_project(PROJECT)
            .await?;
    }
    Ok(())
}
