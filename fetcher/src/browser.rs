//! The headless browser: one Chromium process this fetcher owns, and a bounded pool of tabs
//! in it.
//!
//! `process` owns the operating-system side: launching Chromium in a process group of its
//! own with a temporary profile, the keep-alive ping, and killing and reaping everything it
//! started. `pool` owns the tabs: how many renders run at once, which tabs are reused, and
//! when a broken browser is replaced.

mod pool;
mod process;

pub use pool::{BrowserPool, HEALTH_TIMEOUT, Lease};
pub use process::{CHROMIUM_FLAGS, Instance, KEEPALIVE};
