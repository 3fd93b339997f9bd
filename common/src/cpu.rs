//! CPU time by crawl stage, and the process's memory, for the benchmarks.
//!
//! In the embedded mode every stage shares one process and one runtime, so process CPU time
//! says nothing about which stage costs what. When metering is on, each stage's futures
//! ([`metered`]) and blocking sections ([`measure`]) add the CPU time of their thread while
//! they run (`CLOCK_THREAD_CPUTIME_ID` around each poll); SQLite's own worker threads are
//! counted as the store. Off by default: then the cost is one relaxed atomic load per poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use nix::time::{ClockId, clock_gettime};
use nix::unistd::{SysconfVar, sysconf};

/// A stage of the crawl loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuStage {
    /// Downloading and decoding pages.
    Fetch,
    /// Parsing pages and running the extraction rules.
    Process,
    /// Dedupe, queueing and dispatch.
    Schedule,
    /// Writing results.
    Store,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Turns metering on for this process.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn clock_ns(clock: ClockId) -> u64 {
    clock_gettime(clock).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_ns() -> u64 {
    clock_ns(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process, in nanoseconds.
pub fn process_ns() -> u64 {
    clock_ns(ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

fn add(stage: CpuStage, nanos: u64) {
    NANOS[stage as usize].fetch_add(nanos, Ordering::Relaxed);
}

thread_local! {
    /// Whether this thread is inside [`measure`] already: work done inline in a metered
    /// future's poll is counted by that poll, not a second time.
    static MEASURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, counting the CPU time it takes on this thread to `stage` (unless an enclosing
/// `measure` or metered poll on this thread counts it already).
pub fn measure<T>(stage: CpuStage, f: impl FnOnce() -> T) -> T {
    if !enabled() || MEASURING.get() {
        return f();
    }
    // Cleared on the way out even if `f` panics (a handler's panic is caught further up).
    struct Measuring;
    impl Drop for Measuring {
        fn drop(&mut self) {
            MEASURING.set(false);
        }
    }
    MEASURING.set(true);
    let _measuring = Measuring;
    let start = thread_ns();
    let out = f();
    add(stage, thread_ns().saturating_sub(start));
    out
}

/// A future whose polls count to a stage.
pub struct Metered<F> {
    stage: CpuStage,
    inner: Pin<Box<F>>,
}

/// Wraps `future` so the CPU time of its polls counts to `stage`.
pub fn metered<F: Future>(stage: CpuStage, future: F) -> Metered<F> {
    Metered {
        stage,
        inner: Box::pin(future),
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let stage = self.stage;
        measure(stage, || self.inner.as_mut().poll(cx))
    }
}

/// CPU time so far, in milliseconds, by stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuByStage {
    /// [`CpuStage::Fetch`].
    pub fetch_ms: f64,
    /// [`CpuStage::Process`].
    pub process_ms: f64,
    /// [`CpuStage::Schedule`].
    pub schedule_ms: f64,
    /// [`CpuStage::Store`] plus SQLite's worker threads.
    pub store_ms: f64,
    /// The whole process.
    pub total_ms: f64,
}

/// CPU time of this process's threads whose name starts with `prefix`, in nanoseconds
/// (from `/proc`, so with the kernel's tick resolution).
pub fn threads_ns(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| stat_ns(&t.path().join("stat")))
        .sum()
}

/// CPU time (user and system) of another process, in nanoseconds; 0 once it is gone.
pub fn pid_ns(pid: u32) -> u64 {
    stat_ns(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// utime + stime of a `/proc/.../stat` file, in nanoseconds.
fn stat_ns(path: &std::path::Path) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    let ticks = sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |t| t.max(1) as u64);
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks_used: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks_used * 1_000_000_000 / ticks
}

/// Resident memory of this process in KiB: (now, peak), from `/proc/self/status`.
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What has been counted so far.
pub fn snapshot() -> CpuByStage {
    let ms = |stage: CpuStage| NANOS[stage as usize].load(Ordering::Relaxed) as f64 / 1e6;
    CpuByStage {
        fetch_ms: ms(CpuStage::Fetch),
        process_ms: ms(CpuStage::Process),
        schedule_ms: ms(CpuStage::Schedule),
        store_ms: ms(CpuStage::Store) + threads_ns("sqlx-sqlite") as f64 / 1e6,
        total_ms: process_ns() as f64 / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_work_counts_to_its_stage() {
        enable();
        let before = snapshot();
        let spin = measure(CpuStage::Process, || {
            let start = thread_ns();
            let mut x = 0_u64;
            while thread_ns() - start < 20_000_000 {
                x = x.wrapping_add(1);
            }
            x
        });
        assert!(spin > 0);
        let after = snapshot();
        assert!(after.process_ms - before.process_ms >= 20.0);
        assert!(after.total_ms >= after.process_ms);
    }

    #[test]
    fn nested_work_counts_once_to_the_outer_stage() {
        enable();
        let before = snapshot();
        measure(CpuStage::Schedule, || {
            measure(CpuStage::Fetch, || {
                let start = thread_ns();
                while thread_ns() - start < 20_000_000 {}
            })
        });
        let after = snapshot();
        assert!(after.schedule_ms - before.schedule_ms >= 20.0);
        assert!(
            after.fetch_ms - before.fetch_ms < 10.0,
            "nested work was counted twice"
        );
    }

    #[test]
    fn thread_times_are_read_from_proc() {
        let spun = std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(|| {
                let start = thread_ns();
                while thread_ns() - start < 50_000_000 {}
                // Still alive while it is read.
                threads_ns("cpu-test-spin")
            })
            .expect("spawn")
            .join()
            .expect("join");
        assert!(spun >= 10_000_000, "read {spun} ns");
    }
}
