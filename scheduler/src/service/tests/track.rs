//! What the last attempt of a task did, stored with the task for its page in the web UI.

use super::*;
use spindle_common::store::Attempt;

/// Publishes `outcome` for `task` on the status subject.
async fn report(h: &Harness, task: &Task, edit: impl FnOnce(&mut Outcome)) {
    let mut outcome = Outcome {
        v: WIRE_VERSION,
        project: task.project.clone(),
        taskid: task.taskid.clone(),
        url: task.url.clone(),
        retries: task.retries,
        error: None,
        status_code: Some(200),
        fetch_ms: 35,
        process_ms: 4,
        script_ms: None,
        follows: 12,
        items: 1,
        form_values_literal: 0,
        duplicate_of: None,
        etag: None,
        last_modified: None,
        retry_after_ms: None,
    };
    edit(&mut outcome);
    h.bus
        .publish(
            &Stage::Status.subject(&task.project),
            Message::Status(outcome),
        )
        .await
        .expect("publish outcome");
}

#[tokio::test]
async fn each_attempt_is_stored_as_the_tasks_track() {
    let toml = project("[defaults]\nretries = 1\n");
    let mut h = Harness::new(&toml, SchedulerConfig::default()).await;
    let sent = h.step().await;
    assert_eq!(sent.len(), 1);
    let stored = |h: &Harness| {
        let store = h.store.clone();
        let taskid = sent[0].taskid.clone();
        async move {
            store
                .task("p", &taskid)
                .await
                .expect("read")
                .expect("stored")
        }
    };
    assert_eq!(stored(&h).await.track, None, "not attempted yet");

    report(&h, &sent[0], |o| {
        o.status_code = Some(503);
        o.follows = 0;
        o.items = 0;
        o.error = Some(TaskError {
            kind: ErrorKind::Http,
            message: "HTTP 503".into(),
            retryable: true,
        });
    })
    .await;
    h.step().await;
    let retried = stored(&h).await;
    assert_eq!(
        retried.track,
        Some(Attempt {
            status_code: Some(503),
            fetch_ms: 35,
            process_ms: 4,
            follows: 0,
            items: 0,
            error_kind: Some(ErrorKind::Http),
        }),
        "a retried attempt"
    );

    h.clock.advance(60_000);
    let retry = h.step().await;
    assert_eq!(retry.len(), 1);
    report(&h, &retry[0], |_| {}).await;
    h.step().await;
    let done = stored(&h).await;
    assert_eq!(done.status, spindle_common::store::TaskStatus::Success);
    assert_eq!(
        done.track,
        Some(Attempt {
            status_code: Some(200),
            fetch_ms: 35,
            process_ms: 4,
            follows: 12,
            items: 1,
            error_kind: None,
        }),
        "the last attempt replaces the one before"
    );
}
