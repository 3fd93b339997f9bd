//! Spindle's processor: runs a project's extraction rules on fetched pages.
//!
//! A fetched page arrives on `spindle.process.<project>` as a [`ProcessJob`]. The processor
//! looks up the project's compiled [`Rules`], runs the handler the task names
//! ([`run_handler`]: follows, item fields, many items per page, XPath and JSONPath, then the
//! handler's script hook), and hands the results on: follow tasks to the scheduler, the
//! items to the result writer, and the task's outcome to whoever records it. [`run`] is the
//! service loop; the pieces below it are synchronous and pure, which is what the unit tests
//! exercise. [`debug::run_step`] runs one handler on one page for the debugger.
//!
//! Module map: `rules` compiles a project; `handler` runs one handler on one page with
//! `extract` (items: fields in a scope, `each`, `required`, keys), `value` (regex, `as`, `unit` and
//! `expr` conversions; element text), `structured` (JSON-LD, microdata, meta), `links` (follows: sources, filters, URL templates), `xpath` (XPath on the
//! HTML tree) and `script` (the sandboxed Rhai hook); `cache` keeps compiled rules per
//! project, `service` is the bus loop, `debug` the one-step debugger, `error` the crate's
//! error. [`result_writer`] is the separate role downstream of the processor that stores
//! items and then forwards their outcomes.
//!
//! It owns the user's rules at run time and reaches state through the contracts only (the
//! project store for rules, the result store for items): it depends on `spindle-common` and
//! must never depend on a backend (`spindle-store`, `spindle-nats`) or another role.
//!
//! [`ProcessJob`]: spindle_common::ProcessJob

mod cache;
pub mod debug;
mod depth;
mod error;
mod extract;
mod forms;
mod handler;
mod links;
pub mod neardup;
pub mod result_writer;
mod rules;
mod script;
mod service;
mod structured;
mod value;
mod xpath;

pub use error::ProcessorError;
pub use extract::{DropCause, DroppedItem};
pub use handler::{HandlerOutput, run_handler};
pub use rules::Rules;
pub use service::{ProcessorConfig, run};

#[cfg(test)]
mod testutil;
