//! `spindle healthcheck`: the exit code a container health check reads.
//!
//! The web UI is healthy when its `/healthz` answers; a role without an HTTP port (scheduler,
//! fetcher, processor, result writer) when the heartbeat it writes to `--heartbeat-file` after
//! each heartbeat sent to NATS is recent: a hung or disconnected role stops writing it.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `spindle healthcheck [URL] [--file FILE]`: exit 0 if `url` answers (see [`healthcheck`]),
/// or else if the heartbeat `file` is younger than `max_age`; exit 1 otherwise.
pub async fn command(url: Option<&str>, file: Option<&Path>, max_age: Duration) -> ExitCode {
    let healthy = match (url, file) {
        (Some(url), _) => healthcheck(url).await,
        (None, Some(file)) => heartbeat_is_fresh(file, max_age),
        (None, None) => false,
    };
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether an `http://` URL answers with a 2xx status within 3 seconds.
pub async fn healthcheck(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        &url[url::Position::BeforePath..]
    );
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.") && head[9] == b'2')
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Some(true))
    )
}

/// Whether `path` was written less than `max_age` ago (a time in the future, from a clock
/// step, counts as fresh).
pub fn heartbeat_is_fresh(path: &Path, max_age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|at| match SystemTime::now().duration_since(at) {
            Ok(age) => age < max_age,
            Err(_) => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthcheck_needs_a_2xx_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0_u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())
                    .await;
            }
        });
        assert!(healthcheck(&format!("http://{addr}/healthz")).await);
        assert!(!healthcheck(&format!("http://{addr}/healthz")).await);
        assert!(!healthcheck("http://127.0.0.1:1/").await);
    }

    #[test]
    fn a_heartbeat_file_is_fresh_until_it_ages() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("heartbeat");
        assert!(
            !heartbeat_is_fresh(&path, Duration::from_secs(30)),
            "missing"
        );
        std::fs::write(&path, b"{}").expect("write");
        assert!(heartbeat_is_fresh(&path, Duration::from_secs(30)));
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .expect("age it");
        assert!(!heartbeat_is_fresh(&path, Duration::from_secs(30)), "stale");
    }
}
