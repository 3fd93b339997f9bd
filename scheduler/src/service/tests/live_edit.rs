//! Project settings edited live in the store (the web UI's dashboard) reach the scheduler at
//! its next reload.

use super::*;
use spindle_common::Clock;
use spindle_common::store::ProjectChange;

#[tokio::test]
async fn a_rate_edited_in_the_store_applies_at_the_next_reload() {
    let mut h = Harness::new(
        &project("").replace("rate = 1000\nburst = 1000", "rate = 2\nburst = 2"),
        SchedulerConfig::default(),
    )
    .await;
    let start = h.step().await;
    let urls: Vec<String> = (0..10).map(|i| format!("http://a.test/{i}")).collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    h.follow(&start[0], &refs).await;
    h.answer(&start[0], None).await;
    assert_eq!(h.step().await.len(), 1, "the last token of the burst");
    h.clock.advance(10);
    assert!(h.step().await.is_empty(), "2 a second: nothing in 10 ms");

    let faster = ProjectChange {
        rate: Some(1_000.0),
        burst: Some(5.0),
        ..ProjectChange::default()
    };
    let record = h
        .store
        .update_project("p", &faster, h.clock.now_ms())
        .await
        .expect("update")
        .expect("known");
    assert_eq!((record.rate, record.burst), (1_000.0, 5.0));
    h.scheduler.reload_projects().await.expect("reload");
    h.clock.advance(10);
    assert_eq!(
        h.step().await.len(),
        5,
        "10 ms at 1,000 a second, capped by the new burst"
    );
}
