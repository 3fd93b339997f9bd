//! What Spindle's tests share, in every crate: the rule for tests that need a service from
//! outside the process (PostgreSQL, NATS, Chromium), a fresh PostgreSQL database per test
//! ([`postgres`]), a bus that injects faults ([`fault`]) and the bus conformance suite
//! ([`bus_suite`]) that every [`Bus`](spindle_common::Bus) backend runs.
//!
//! Only tests depend on this crate; it must never become a dependency of a service.
//!
//! The skip rule: a developer without the service still gets a green run, with a printed
//! reason for each skipped test; CI (`CI=true`) has every service, so there a missing one is
//! a failure rather than a silently thinner suite.

pub mod bus_suite;
pub mod fault;
pub mod postgres;

use std::fmt::Display;
use std::io::Write;

pub use fault::{FaultyBus, Gate};
pub use postgres::PgTestDb;

/// Whether missing services fail tests instead of skipping them: `CI=true` in the environment.
pub fn services_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Hands over what connecting to `service` gave, or decides what a failure means.
///
/// `Ok(value)` is returned as `Some(value)`. An error skips the test (`None`, after printing
/// the reason) unless [`services_required`], in which case it panics with the reason. Use it
/// on the first contact with the service, so only "not there" skips, never a later failure:
///
/// ```ignore
/// let Some(pool) = support::require_service("PostgreSQL at 127.0.0.1:5432", connect().await)
/// else {
///     return;
/// };
/// ```
#[track_caller]
pub fn require_service<T, E: Display>(service: &str, attempt: Result<T, E>) -> Option<T> {
    match attempt {
        Ok(value) => Some(value),
        Err(err) if services_required() => {
            panic!("{service} is unreachable ({err}) and CI=true requires it")
        }
        Err(err) => {
            // Written to the stream itself, not with eprintln!: the test harness captures
            // the print macros of passing tests, and a skip must be visible.
            // The harness names each test's thread after the test.
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("a test");
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {service} is unreachable ({err}); set CI=true to make this a failure"
            );
            None
        }
    }
}
