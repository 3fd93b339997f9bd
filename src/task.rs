//! `spindle task`: one task's stored state, by URL or id, and cancelling it; and the
//! container health check.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use spindle_common::{Project, Store, urlnorm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The task id named by `task`: a URL is normalized with the project's rules and
/// fingerprinted; anything else is taken as an id.
pub fn task_id(project: Option<&Project>, task: &str) -> String {
    match url::Url::parse(task) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            let keep = project.map(|p| p.keep_params.as_slice()).unwrap_or(&[]);
            urlnorm::fingerprint(urlnorm::normalize(&url, keep).as_str())
        }
        _ => task.to_string(),
    }
}

/// Prints the task as JSON (after cancelling it, with `cancel`); exit 1 if it is unknown.
pub async fn run(
    store: &dyn Store,
    project: &str,
    task: &str,
    cancel: bool,
) -> anyhow::Result<ExitCode> {
    let record = store
        .project(project)
        .await?
        .with_context(|| format!("no project named {project}"))?;
    let parsed = Project::parse(&record.definition).ok();
    let taskid = task_id(parsed.as_ref(), task);
    if cancel && !store.cancel_task(project, &taskid, now_ms()).await? {
        eprintln!("no task {task} in project {project}");
        return Ok(ExitCode::FAILURE);
    }
    match store.task(project, &taskid).await? {
        Some(record) => {
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no task {task} in project {project}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_fingerprints_and_ids_stay() {
        let a = task_id(None, "http://Example.com/a#x");
        assert_eq!(a, urlnorm::fingerprint("http://example.com/a"));
        assert_eq!(task_id(None, "0123abcd"), "0123abcd");
    }

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
}
