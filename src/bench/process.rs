//! Whole-process figures of a child: what a user of the command sees, from spawn to exit.
//!
//! Wall time from spawn to exit, CPU time (user and system) from the kernel's account of
//! reaped children, and peak resident memory from the child's own `VmHWM`, read while it runs
//! (the kernel's account keeps only the largest child ever reaped, so it cannot tell two
//! children apart).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::resource::{UsageWho, getrusage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one child process cost.
#[derive(Debug, Clone)]
pub struct ProcessFigures {
    /// From spawn to exit.
    pub wall: Duration,
    /// User and system CPU time.
    pub cpu: Duration,
    /// Peak resident memory, in KiB.
    pub peak_rss_kib: u64,
    /// What it printed on standard output.
    pub stdout: String,
}

fn children_cpu() -> Duration {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(Duration::ZERO, |u| {
        let (user, system) = (u.user_time(), u.system_time());
        let micros =
            |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
        Duration::from_micros(micros(user) + micros(system))
    })
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs `command` to its end and measures it; fails if it exits unsuccessfully (with its
/// standard error in the message). Only one measured child may run at a time.
pub async fn measure(mut command: tokio::process::Command) -> anyhow::Result<ProcessFigures> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut child = command
        .spawn()
        .context("cannot start the measured process")?;
    let pid = child.id().unwrap_or(0);
    let (mut stdout, mut stderr) = (
        child.stdout.take().context("no stdout")?,
        child.stderr.take().context("no stderr")?,
    );
    // Read while it runs, so a full pipe never blocks it.
    let reader = tokio::spawn(async move {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        (out, err)
    });
    let mut peak = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the measured process")?,
            _ = tick.tick() => peak = peak.max(peak_rss_kib(pid).unwrap_or(0)),
        }
    };
    let wall = started.elapsed();
    let (out, err) = reader
        .await
        .context("reading the measured process's output")?;
    anyhow::ensure!(
        status.success(),
        "the measured process failed ({status}):\n{err}"
    );
    Ok(ProcessFigures {
        wall,
        cpu: children_cpu().saturating_sub(cpu_before),
        peak_rss_kib: peak,
        stdout: out,
    })
}

/// The JSON answer of `GET path` at `addr` (`host:port`): how the bench reads what a site
/// server saw (its `/__stats`).
pub async fn get_json<T: serde::de::DeserializeOwned>(addr: &str, path: &str) -> anyhow::Result<T> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .with_context(|| format!("no body in the answer of {addr}{path}"))?;
    serde_json::from_str(body).with_context(|| format!("the answer of {addr}{path}"))
}
