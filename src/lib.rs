//! The `spindle` binary's library: commands that compose the service crates.
//!
//! `main.rs` parses the command line and calls into these modules; tests and the bench use
//! them directly.

pub mod bench;
pub mod crawl;
pub mod debug;
pub mod embedded;
pub mod export;
pub mod healthcheck;
pub mod heartbeat;
pub mod metrics;
pub mod progress;
pub mod project_cmd;
pub mod projects_dir;
pub mod roles;
pub mod site;
pub mod task;
