//! The `spindle` binary's library: commands that compose the service crates.
//!
//! [`cli`] defines the command line; `main.rs` parses it, sets up logging and calls each
//! command's module (its `command` function); tests and the bench use the modules directly.

pub mod bench;
pub mod check;
pub mod cli;
pub mod crawl;
pub mod debug;
pub mod embedded;
pub mod export;
pub mod hash_password;
pub mod healthcheck;
pub mod heartbeat;
pub mod metrics;
pub mod progress;
pub mod project_cmd;
pub mod projects_dir;
pub mod roles;
pub mod serve_hosts;
pub mod serve_site;
pub mod shutdown;
pub mod site;
pub mod task;
