//! The Chromium process a fetcher owns: launching it, watching that it still answers, and
//! killing it with everything it started. The tabs in it are [`super::pool`]'s.
//!
//! - Chromium is started here (not by `headless_chrome`), in a process group of its own
//!   (`process_group(0)`), with a fresh temporary profile and `--remote-debugging-port=0`;
//!   the DevTools address is read from the profile's `DevToolsActivePort` file and
//!   `headless_chrome` only connects to it.
//! - Killing is always "the whole group, then reap": `SIGKILL` to the process group, `wait`
//!   for the main process, then `waitpid(-pgid)` until the group is empty. On Linux the
//!   fetcher process makes itself a child subreaper before the first launch, so Chromium's
//!   helpers orphaned by the kill are re-parented to it and reaped here, even under an init
//!   that does not reap (as in some containers). It happens on
//!   [`BrowserPool::shutdown`](super::BrowserPool::shutdown), on a restart, and when the last
//!   handle of a browser is dropped.
//! - Chromium's crash handlers (`chrome_crashpad_handler`) start sessions of their own, so the
//!   group kill misses them; they inherit the browser's environment, which carries a marker
//!   naming its profile ([`MARKER`]): after the group, every live process with that marker is
//!   killed and reaped, and so is every exited Chromium process re-parented to us.
//! - A keep-alive ping every [`KEEPALIVE`] keeps an idle connection open and marks a browser
//!   that stopped answering broken, so the pool replaces it before a render finds out.
//!
//! Launching and killing block; the pool calls them on tokio's blocking pool, and the
//! keep-alive pings from a thread of its own.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use headless_chrome::Browser;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use spindle_common::message::{ErrorKind, TaskError};
use tracing::{info, warn};

use crate::error::task_error;

/// Flags Chromium is started with (besides the profile and the debugging port). Chromium
/// otherwise starts two `chrome_crashpad_handler` processes, each in a process group of its
/// own and outside the browser's: killing the browser's group left them running.
pub const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
];

/// Longest wait for a started Chromium to publish its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest wait for one DevTools call; also how long `headless_chrome` keeps a silent
/// connection open (the keep-alive pings keep a healthy one busy).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Interval of the keep-alive ping of an idle browser.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Longest wait for the processes of a killed group to be gone.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// One running Chromium and the connection to it.
pub struct Instance {
    generation: u64,
    pid: u32,
    browser: Browser,
    process: Mutex<Option<Process>>,
    broken: std::sync::atomic::AtomicBool,
}

/// The owned process and its profile folder (removed after the process is gone).
struct Process {
    child: Child,
    /// `MARKER=<profile path>`, in the environment of the browser and all it starts.
    marker: String,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("generation", &self.generation)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The browser's main process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The `headless_chrome` handle.
    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    /// Which start of the pool's browser this is (the pool counts them), so a report about an
    /// old browser never touches a newer one.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the browser is known to be unusable: its process exited, or a ping failed.
    pub fn is_broken(&self) -> bool {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        let mut process = self.process.lock().unwrap_or_else(PoisonError::into_inner);
        let exited = match process.as_mut() {
            Some(p) => !matches!(p.child.try_wait(), Ok(None)),
            None => true,
        };
        if exited {
            self.mark_broken();
        }
        exited
    }

    /// Marks the browser unusable: the pool replaces it at the next lease.
    pub(super) fn mark_broken(&self) {
        self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Kills the process group and reaps it. Blocks for at most [`REAP_TIMEOUT`]; idempotent.
    pub fn kill(&self) {
        self.mark_broken();
        let process = self
            .process
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut process) = process {
            kill_and_reap(&mut process);
            info!(pid = self.pid, "browser stopped");
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Environment variable marking the processes of one browser (see the module docs).
const MARKER: &str = "SPINDLE_CHROMIUM_PROFILE";

/// SIGKILL to the browser's process group, then reaps the child and every group member that
/// became ours (see the module docs), until the group is empty or [`REAP_TIMEOUT`] passes;
/// then the same for the browser's processes outside the group.
fn kill_and_reap(process: &mut Process) {
    kill_group(&mut process.child);
    kill_strays(process.marker.as_bytes());
}

/// Kills and reaps the browser's processes outside its group (its crash handlers, which
/// start sessions of their own). Alive, one is found by `marker` (`KEY=value`) in its
/// environment; once exited (a handler exits when its browser dies) its environment is gone,
/// and it is found as a zombie child of ours (orphans are re-parented to this subreaper)
/// with a Chromium name.
fn kill_strays(marker: &[u8]) {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(raw) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{raw}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; the command may itself hold spaces or parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next().and_then(|p| p.parse().ok()));
        let pid = Pid::from_raw(raw);
        if state == Some("Z") {
            if ppid == Some(me) && comm.starts_with("chrome") {
                let _ = waitpid(pid, None);
            }
            continue;
        }
        let marked = fs::read(format!("/proc/{raw}/environ"))
            .is_ok_and(|environ| environ.split(|b| *b == 0).any(|var| var == marker));
        if marked && nix::sys::signal::kill(pid, Signal::SIGKILL).is_ok() {
            // Ours once its parent died; otherwise `waitpid` returns at once.
            let _ = waitpid(pid, None);
        }
    }
}

/// SIGKILL to the child's process group, then reaps the child and every group member that
/// became ours, until the group is empty or [`REAP_TIMEOUT`] passes.
fn kill_group(child: &mut Child) {
    let Ok(raw) = i32::try_from(child.id()) else {
        return;
    };
    let group = Pid::from_raw(raw);
    if let Err(err) = killpg(group, Signal::SIGKILL)
        && err != Errno::ESRCH
    {
        warn!(pgid = raw, error = %err, "killing the browser's process group failed");
    }
    let _ = child.wait();
    let deadline = Instant::now() + REAP_TIMEOUT;
    loop {
        // Reap every member of the group that has exited and is our child.
        while let Ok(status) = waitpid(Pid::from_raw(-raw), Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        // Signal 0 reports whether any process (zombies included) is left in the group.
        if killpg(group, None) == Err(Errno::ESRCH) {
            return;
        }
        if Instant::now() >= deadline {
            warn!(pgid = raw, "browser processes still present after the kill");
            return;
        }
        // Stragglers that escaped the first signal (forked during it) get one too.
        let _ = killpg(group, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Makes this process the reaper of its orphaned descendants (Linux), once.
fn become_subreaper() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
                warn!(error = %err, "cannot become a child subreaper; orphaned browser helpers are left to init");
            }
        });
    }
}

/// Starts Chromium at `path` and connects to it. Blocking.
pub(super) fn launch(path: &Path, generation: u64) -> Result<Instance, TaskError> {
    if !path.is_file() {
        return Err(task_error(
            ErrorKind::Other,
            false,
            format!(
                "Chromium not found at {}: install it (Debian: apt-get install chromium) or set the fetcher's chromium_path",
                path.display()
            ),
        ));
    }
    let failed = |what: String| task_error(ErrorKind::Browser, true, what);
    become_subreaper();
    let profile = tempfile::Builder::new()
        .prefix("spindle-chromium-")
        .tempdir()
        .map_err(|err| failed(format!("cannot create a browser profile folder: {err}")))?;
    let marker = format!("{MARKER}={}", profile.path().display());
    let mut command = Command::new(path);
    command
        .env(MARKER, profile.path())
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--remote-debugging-port=0")
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .spawn()
        .map_err(|err| failed(format!("cannot start {}: {err}", path.display())))?;
    let pid = child.id();
    let mut process = Process {
        child,
        marker,
        _profile: profile,
    };
    let connected = devtools_url(&mut process, LAUNCH_TIMEOUT).and_then(|ws| {
        Browser::connect_with_timeout(ws, CALL_TIMEOUT)
            .map_err(|err| failed(format!("cannot connect to Chromium: {err:#}")))
    });
    match connected {
        Ok(browser) => {
            info!(pid, generation, "browser started");
            Ok(Instance {
                generation,
                pid,
                browser,
                process: Mutex::new(Some(process)),
                broken: std::sync::atomic::AtomicBool::new(false),
            })
        }
        Err(err) => {
            kill_and_reap(&mut process);
            Err(err)
        }
    }
}

/// Waits for `DevToolsActivePort` in the profile and returns the browser's WebSocket URL.
fn devtools_url(process: &mut Process, timeout: Duration) -> Result<String, TaskError> {
    let file = process._profile.path().join("DevToolsActivePort");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next())
                && let Ok(port) = port.trim().parse::<u16>()
            {
                return Ok(format!("ws://127.0.0.1:{port}{}", path.trim()));
            }
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            return Err(task_error(
                ErrorKind::Browser,
                true,
                format!("Chromium exited during start-up ({status})"),
            ));
        }
        if Instant::now() >= deadline {
            return Err(task_error(
                ErrorKind::Browser,
                true,
                format!(
                    "Chromium did not open its DevTools port within {} s",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Pings `instance` every [`KEEPALIVE`] until it is dropped or broken, marking it broken
/// when a ping fails. Keeps an idle connection alive and notices a dead browser early.
pub(super) fn spawn_keepalive(instance: Weak<Instance>) {
    let spawned = std::thread::Builder::new()
        .name("spindle-browser-keepalive".into())
        .spawn(move || {
            loop {
                std::thread::sleep(KEEPALIVE);
                let Some(instance) = instance.upgrade() else {
                    return;
                };
                if instance.is_broken() {
                    return;
                }
                if let Err(err) = instance.browser.get_version() {
                    warn!(pid = instance.pid, error = %err, "browser keep-alive failed");
                    instance.mark_broken();
                    return;
                }
            }
        });
    if let Err(err) = spawned {
        warn!(error = %err, "cannot start the browser keep-alive thread");
    }
}
