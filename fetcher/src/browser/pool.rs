//! The tabs of the fetcher's browser: at most `max_tabs` renders at once (a semaphore), tabs
//! kept for reuse after a successful render and closed after a failed one, and the browser
//! itself started on first use and replaced when it is found broken. Starting and killing
//! the process is [`super::process`]'s.
//!
//! A browser is replaced when its process exited, a keep-alive ping
//! ([`KEEPALIVE`](super::KEEPALIVE)) failed, or a health check after a failed render did not
//! answer within [`HEALTH_TIMEOUT`]. Each browser has a generation; a failure report about an
//! old generation never kills a newer browser, and a tab of an old generation is never lent
//! again.
//!
//! All `headless_chrome` calls block; they run on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use headless_chrome::Tab;
use spindle_common::message::{ErrorKind, TaskError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use super::process::{Instance, launch, spawn_keepalive};
use crate::error::task_error;
use crate::render::TabSettings;

/// Longest wait for a health check's answer before the browser is declared hung.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The current browser and its idle tabs, under one lock; `generation` counts the starts.
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
                .is_some_and(|c| c.generation() == instance.generation());
            if same { state.idle.pop() } else { None }
        };
        let (tab, settings) = match idle {
            Some(idle) => idle,
            None => {
                let i = instance.clone();
                let opened = blocking(move || {
                    i.browser()
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
                .is_some_and(|c| c.generation() == instance.generation());
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
        let ping = tokio::task::spawn_blocking(move || i.browser().get_version().is_ok());
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
                .is_some_and(|c| c.generation() == instance.generation());
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
