//! The headless browser: one Chromium process this fetcher owns, and a bounded pool of tabs.
//!
//! Ownership story:
//!
//! - Chromium is started here (not by `headless_chrome`), in a process group of its own
//!   (`process_group(0)`), with a fresh temporary profile and `--remote-debugging-port=0`;
//!   the DevTools address is read from the profile's `DevToolsActivePort` file and
//!   `headless_chrome` only connects to it.
//! - Killing is always "the whole group, then reap": `SIGKILL` to the process group, `wait`
//!   for the main process, then `waitpid(-pgid)` until the group is empty. On Linux the
//!   fetcher process makes itself a child subreaper before the first launch, so Chromium's
//!   helpers orphaned by the kill are re-parented to it and reaped here, even under an init
//!   that does not reap (as in some containers). It happens on [`BrowserPool::shutdown`], on
//!   a restart, and when the last handle of a browser is dropped.
//! - Chromium's crash handlers (`chrome_crashpad_handler`) start sessions of their own, so the
//!   group kill misses them; they inherit the browser's environment, which carries a marker
//!   naming its profile ([`MARKER`]): after the group, every live process with that marker is
//!   killed and reaped, and so is every exited Chromium process re-parented to us.
//! - A browser is replaced when it is found broken: its process exited, a keep-alive ping
//!   (every [`KEEPALIVE`]) failed, or a health check after a failed render did not answer
//!   within [`HEALTH_TIMEOUT`]. Each browser has a generation; a failure report about an old
//!   generation never kills a newer browser.
//! - At most `max_tabs` renders run at once (a semaphore); tabs are kept for reuse after a
//!   successful render and closed after a failed one.
//!
//! All `headless_chrome` calls block; they run on tokio's blocking pool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use headless_chrome::{Browser, Tab};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use spindle_common::message::{ErrorKind, TaskError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use crate::error::task_error;
use crate::render::TabSettings;

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

/// Longest wait for a health check's answer before the browser is declared hung.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

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

    fn mark_broken(&self) {
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
fn launch(path: &Path, generation: u64) -> Result<Instance, TaskError> {
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
fn spawn_keepalive(instance: Weak<Instance>) {
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

/// A tab lent to one render, with its slot and the browser it belongs to.
pub struct Lease {
    /// The tab.
    pub tab: Arc<Tab>,
    /// Its browser.
    pub instance: Arc<Instance>,
    /// What the tab was last set up with (`None` for a new tab); the render updates it.
    pub settings: Option<TabSettings>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Instance>>,
    generation: u64,
    idle: Vec<(Arc<Tab>, Option<TabSettings>)>,
}

/// The browser of a fetcher and its bounded tab pool. Chromium starts on first use.
pub struct BrowserPool {
    path: Option<PathBuf>,
    slots: Arc<Semaphore>,
    launching: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

impl std::fmt::Debug for BrowserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPool")
            .field("path", &self.path)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl BrowserPool {
    /// A pool for the Chromium at `path` (`None`: rendering is off) with `max_tabs` tabs.
    pub fn new(path: Option<PathBuf>, max_tabs: usize) -> Self {
        Self {
            path,
            slots: Arc::new(Semaphore::new(max_tabs.max(1))),
            launching: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Process id (and process group id) of the running browser, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.state().current.as_ref().map(|i| i.pid())
    }

    /// A tab to render in: waits for a free slot, starts or restarts the browser if needed.
    pub async fn lease(&self) -> Result<Lease, TaskError> {
        let permit =
            self.slots.clone().acquire_owned().await.map_err(|_| {
                task_error(ErrorKind::Browser, true, "the browser pool is shut down")
            })?;
        let instance = self.instance().await?;
        let idle = {
            let mut state = self.state();
            let same = state
                .current
                .as_ref()
                .is_some_and(|c| c.generation == instance.generation);
            if same { state.idle.pop() } else { None }
        };
        let (tab, settings) = match idle {
            Some(idle) => idle,
            None => {
                let i = instance.clone();
                let opened = blocking(move || {
                    i.browser
                        .new_tab()
                        .map_err(|err| format!("cannot open a tab: {err:#}"))
                })
                .await
                .and_then(|r| r.map_err(|m| task_error(ErrorKind::Browser, true, m)));
                match opened {
                    Ok(tab) => (tab, None),
                    Err(err) => {
                        self.discard(&instance).await;
                        return Err(err);
                    }
                }
            }
        };
        Ok(Lease {
            tab,
            instance,
            settings,
            _permit: permit,
        })
    }

    /// The current browser, started if there is none or it is broken.
    async fn instance(&self) -> Result<Arc<Instance>, TaskError> {
        let Some(path) = self.path.clone() else {
            return Err(task_error(
                ErrorKind::Other,
                false,
                "JS rendering is off: the fetcher has no chromium_path",
            ));
        };
        // One launch at a time; whoever waited finds the browser the first one started.
        let _launching = self.launching.lock().await;
        let (stale, generation) = {
            let mut state = self.state();
            match &state.current {
                Some(current) if !current.is_broken() => return Ok(current.clone()),
                _ => {}
            }
            state.idle.clear();
            state.generation += 1;
            (state.current.take(), state.generation)
        };
        if let Some(stale) = stale {
            warn!(pid = stale.pid(), "browser broken; restarting it");
            let _ = blocking(move || stale.kill()).await;
        }
        let instance = Arc::new(blocking(move || launch(&path, generation)).await??);
        spawn_keepalive(Arc::downgrade(&instance));
        self.state().current = Some(instance.clone());
        Ok(instance)
    }

    /// Returns a tab after a render: kept for the next one when `reusable` and its browser is
    /// still the current one, else closed.
    pub async fn give_back(&self, lease: Lease, reusable: bool) {
        let Lease {
            tab,
            instance,
            settings,
            _permit,
        } = lease;
        if reusable && !instance.is_broken() {
            let mut state = self.state();
            let current = state
                .current
                .as_ref()
                .is_some_and(|c| c.generation == instance.generation);
            if current {
                state.idle.push((tab, settings));
                return;
            }
        }
        if !instance.is_broken() {
            // Closing can wait on the browser; the slot is freed only after it, so at most
            // `max_tabs` tabs exist.
            let _ = blocking(move || {
                let _ = tab.close_target();
            })
            .await;
        }
    }

    /// Whether `instance` still answers, within [`HEALTH_TIMEOUT`].
    pub async fn healthy(&self, instance: &Arc<Instance>) -> bool {
        if instance.is_broken() {
            return false;
        }
        let i = instance.clone();
        let ping = tokio::task::spawn_blocking(move || i.browser.get_version().is_ok());
        matches!(
            tokio::time::timeout(HEALTH_TIMEOUT, ping).await,
            Ok(Ok(true))
        )
    }

    /// Kills `instance` if it is still the current browser; the next lease starts a new one.
    pub async fn discard(&self, instance: &Arc<Instance>) {
        instance.mark_broken();
        let removed = {
            let mut state = self.state();
            let current = state
                .current
                .as_ref()
                .is_some_and(|c| c.generation == instance.generation);
            if current {
                state.idle.clear();
                state.current.take()
            } else {
                None
            }
        };
        let target = removed.unwrap_or_else(|| instance.clone());
        let _ = blocking(move || target.kill()).await;
    }

    /// Stops the browser (kills and reaps its process group). A later lease starts a new one.
    pub async fn shutdown(&self) {
        let current = {
            let mut state = self.state();
            state.idle.clear();
            state.current.take()
        };
        if let Some(instance) = current {
            let _ = blocking(move || instance.kill()).await;
        }
    }
}

impl Drop for BrowserPool {
    fn drop(&mut self) {
        let current = self.state().current.take();
        if let Some(instance) = current {
            instance.kill();
        }
    }
}

/// Runs blocking browser work on tokio's blocking pool. A panic inside (a bug in the browser
/// library) becomes a retryable `Browser` error instead of taking the caller down.
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, TaskError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        task_error(
            ErrorKind::Browser,
            true,
            format!("browser call failed: {err}"),
        )
    })
}
