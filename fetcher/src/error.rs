//! Errors: [`FetcherError`] when the fetcher itself is broken, [`TaskError`]s when one task
//! failed.
//!
//! The split is the one the service relies on: a `TaskError` is reported to the scheduler as
//! the task's outcome and the loop goes on; a `FetcherError` stops the component. The mapping
//! from reqwest's errors to a task error kind lives here so that every call site agrees on
//! what is retryable.

use std::error::Error as StdError;
use std::io;

use spindle_common::BusError;
use spindle_common::message::{ErrorKind, TaskError};

use crate::guard::ResolveError;

/// A failure of the fetcher component (not of one task).
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    /// An HTTP client could not be built (TLS set-up, resolver, ...).
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The configuration cannot work.
    #[error("invalid fetcher configuration: {0}")]
    Config(String),
    /// The bus refused to open the fetch consumer.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// A task error of `kind` with its retryability.
pub(crate) fn task_error(
    kind: ErrorKind,
    retryable: bool,
    message: impl Into<String>,
) -> TaskError {
    TaskError {
        kind,
        message: message.into(),
        retryable,
    }
}

/// Maps a reqwest failure (sending, or reading the body) to the task error it means.
///
/// Order matters: the resolver's own error says exactly what happened (DNS failure or a
/// refused private address) and is looked for first; reqwest marks a connect timeout as both
/// connect and timeout, and a timeout is the more useful answer.
pub(crate) fn classify(err: &reqwest::Error) -> TaskError {
    if let Some(resolve) = find_in_chain::<ResolveError>(err) {
        return resolve.to_task_error();
    }
    let message = chain_message(err);
    if let Some(tls) = find_tls_error(err) {
        // A certificate that is wrong today is wrong on the next attempt too; a handshake
        // that broke for another reason (a reset mid-handshake) may well work next time.
        let retryable = !matches!(
            tls,
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
                | rustls::Error::PeerIncompatible(_)
        );
        return task_error(ErrorKind::Tls, retryable, format!("TLS: {message}"));
    }
    if err.is_timeout() {
        return task_error(ErrorKind::Timeout, true, message);
    }
    if err.is_connect() {
        return task_error(ErrorKind::Connect, true, message);
    }
    if let Some(io) = find_in_chain::<io::Error>(err) {
        match io.kind() {
            // A corrupt compressed body stays corrupt however often it is fetched.
            io::ErrorKind::InvalidData => return task_error(ErrorKind::Other, false, message),
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof => {
                return task_error(ErrorKind::Connect, true, message);
            }
            _ => {}
        }
    }
    if err.is_decode() {
        return task_error(ErrorKind::Other, false, message);
    }
    if err.is_request() || err.is_body() {
        // The exchange broke after the connection was made (closed early, protocol error):
        // a later attempt, on a fresh connection, may well succeed.
        return task_error(ErrorKind::Connect, true, message);
    }
    task_error(ErrorKind::Other, false, message)
}

/// The rustls error behind a failed handshake, if that is what failed.
///
/// hyper-rustls wraps it in an `io::Error`, whose `source()` skips the wrapped error itself,
/// so each `io::Error` of the chain is opened with `get_ref` as well.
fn find_tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref)
            && let Some(found) = find_tls_error(inner)
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The first error of type `E` in `err`'s source chain (including `err` itself).
fn find_in_chain<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The error and its causes on one line, without repeating a cause that a wrapper already
/// quotes in its own message.
fn chain_message(err: &(dyn StdError + 'static)) -> String {
    let mut message = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        current = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[test]
    fn chain_message_lists_each_cause_once() {
        let err = Outer(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        assert_eq!(chain_message(&err), "outer: refused");
        let found = find_in_chain::<io::Error>(&err).expect("io error in chain");
        assert_eq!(found.kind(), io::ErrorKind::ConnectionRefused);
    }
}
