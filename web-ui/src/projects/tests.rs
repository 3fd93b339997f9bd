use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use spindle_common::Store;
use spindle_common::message::Item;
use spindle_common::store::ProjectStatus;

use crate::tests::{Reply, get_text, send, store_with_project};
use crate::{Mode, WebUi};

const HANDLERS: &str = "\n[handlers.start]\nitem.title = { css = \"h1\" }\n";

fn ui(store: &Arc<dyn Store>) -> WebUi {
    WebUi::new(Default::default(), Mode::Embedded).store(store.clone())
}

#[tokio::test]
async fn run_requests_a_run_of_a_known_project_only() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let Reply { status, json } = send(ui(&store), "POST", "/api/projects/books/run", "").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["run_requested"], true);
    let record = store.project("books").await.expect("load").expect("books");
    assert!(record.run_requested_ms > record.last_start_ms);
    assert!(record.updated_ms > 1_000, "the scheduler reloads it");

    let Reply { status, json } = send(ui(&store), "POST", "/api/projects/nope/run", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "no project named nope");
}

#[tokio::test]
async fn status_takes_the_statuses_the_scheduler_knows() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let uri = "/api/projects/books/status";
    let Reply { status, json } = send(ui(&store), "POST", uri, r#"{"status": "stop"}"#).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (&json["status"], &json["previous"], &json["dispatches"]),
        (&"STOP".into(), &"RUNNING".into(), &false.into())
    );
    for (body, expected) in [
        (
            r#"{"status": "FAST"}"#,
            "invalid status \"FAST\"; expected one of TODO, STOP, CHECKING, DEBUG, RUNNING",
        ),
        (r#"{"status": "PAUSED"}"#, "set by the scheduler"),
        (r#"{"state": "STOP"}"#, "expected a JSON body such as"),
        ("not json", "expected a JSON body such as"),
    ] {
        let Reply { status, json } = send(ui(&store), "POST", uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = json["error"].as_str().expect("error message");
        assert!(error.contains(expected), "{body}: {error}");
    }
    let record = store.project("books").await.expect("load").expect("books");
    assert_eq!(
        record.status,
        ProjectStatus::Stop,
        "bad requests change nothing"
    );
}

#[tokio::test]
async fn patch_validates_and_applies_rate_burst_group_and_status() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let uri = "/api/projects/books";
    let Reply { status, json } = send(
        ui(&store),
        "PATCH",
        uri,
        r#"{"rate": 2.5, "burst": 7, "group": " shop ", "status": "debug"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (&json["status"], &json["dispatches"], &json["startable"]),
        (&"DEBUG".into(), &true.into(), &false.into()),
        "the answer carries the status's rules"
    );
    let record = store.project("books").await.expect("load").expect("books");
    assert_eq!(
        (
            record.rate,
            record.burst,
            record.group.as_deref(),
            record.status
        ),
        (2.5, 7.0, Some("shop"), ProjectStatus::Debug)
    );
    assert!(record.updated_ms > 1_000, "the scheduler reloads it");
    for body in [
        r#"{"rate": 0}"#,
        r#"{"rate": -1}"#,
        r#"{"rate": 1e9}"#,
        r#"{"burst": 0.5}"#,
        r#"{"rate": "fast"}"#,
        r#"{"status": "GO"}"#,
        r#"{"colour": "red"}"#,
    ] {
        let Reply { status, json } = send(ui(&store), "PATCH", uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {json}");
    }
    // A status in any case; a bad one is refused with what is expected.
    let Reply { status, json } = send(ui(&store), "PATCH", uri, r#"{"status": "stop"}"#).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (&json["status"], &json["startable"]),
        (&"STOP".into(), &true.into())
    );
    for (body, expected) in [
        (
            r#"{"status": "GO"}"#,
            "invalid status \"GO\"; expected one of TODO, STOP, CHECKING, DEBUG, RUNNING",
        ),
        (
            r#"{"status": "paused"}"#,
            "(PAUSED is set by the scheduler after failures in a row and ends by itself)",
        ),
    ] {
        let Reply { status, json } = send(ui(&store), "PATCH", uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {json}");
        let error = json["error"].as_str().expect("error message");
        assert!(error.contains(expected), "{body}: {error}");
    }
    let record = store.project("books").await.expect("load").expect("books");
    assert_eq!(
        record.status,
        ProjectStatus::Stop,
        "refused changes change nothing"
    );
    let Reply { status, .. } = send(ui(&store), "PATCH", uri, r#"{"group": null}"#).await;
    assert_eq!(status, StatusCode::OK);
    let record = store.project("books").await.expect("load").expect("books");
    assert_eq!(
        (record.group, record.rate),
        (None, 2.5),
        "only the group was cleared"
    );
    let Reply { status, .. } = send(ui(&store), "PATCH", "/api/projects/nope", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_project_is_checked_stored_as_todo_and_not_created_twice() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let definition = format!("name = \"news\"\nstart = [\"http://n.test/\"]\n{HANDLERS}");
    let body = json!({ "definition": definition }).to_string();
    let Reply { status, json } = send(ui(&store), "POST", "/api/projects", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["status"], "TODO");
    let record = store.project("news").await.expect("load").expect("stored");
    assert_eq!(record.definition, definition);
    let Reply { status, .. } = send(ui(&store), "POST", "/api/projects", &body).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let broken =
        json!({ "definition": "name = \"x\"\n[handlers.start]\nitem.t = { css = \"h1[\" }\n" });
    let Reply { status, json } =
        send(ui(&store), "POST", "/api/projects", &broken.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (&json["line"], &json["column"]),
        (&3.into(), &18.into()),
        "{json}"
    );
    assert!(store.project("x").await.expect("load").is_none());
}

#[tokio::test]
async fn saving_an_edit_keeps_dashboard_settings_and_running_becomes_checking() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    send(
        ui(&store),
        "PATCH",
        "/api/projects/books",
        r#"{"rate": 9, "burst": 12}"#,
    )
    .await;
    let edited = format!("name = \"books\"\nstart = [\"http://a.test/\"]\n{HANDLERS}# comment\n");
    let body = json!({ "definition": edited }).to_string();
    let Reply { status, json } =
        send(ui(&store), "PUT", "/api/projects/books/definition", &body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (
            &json["status"],
            &json["previous"],
            &json["startable"],
            &json["held"]
        ),
        (
            &"CHECKING".into(),
            &"RUNNING".into(),
            &true.into(),
            &true.into()
        )
    );
    let record = store.project("books").await.expect("load").expect("books");
    assert_eq!(record.definition, edited);
    assert_eq!(
        (record.rate, record.burst),
        (9.0, 12.0),
        "the file did not change its rate"
    );

    let renamed = json!({ "definition": "name = \"other\"" }).to_string();
    let Reply { status, json } = send(
        ui(&store),
        "PUT",
        "/api/projects/books/definition",
        &renamed,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("renamed")),
        "{json}"
    );
    let broken = json!({ "definition": "name = \"books\"\nrate = \"fast\"\n" }).to_string();
    let Reply { status, json } =
        send(ui(&store), "PUT", "/api/projects/books/definition", &broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["line"], 2, "{json}");
    let record = store.project("books").await.expect("load").expect("books");
    assert_eq!(record.definition, edited, "a refused edit stores nothing");
}

#[tokio::test]
async fn check_answers_like_spindle_check() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let ok = json!({ "definition": format!("name = \"b\"\n{HANDLERS}") }).to_string();
    let Reply { status, json } = send(ui(&store), "POST", "/api/check", &ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        json!({ "ok": true, "name": "b", "start": [], "handlers": ["start"], "fields": ["title"] })
    );
    let bad = json!({ "definition": "name = \"b\"\nfollow = 3\n" }).to_string();
    let Reply { json, .. } = send(ui(&store), "POST", "/api/check", &bad).await;
    assert_eq!(
        (&json["ok"], &json["line"]),
        (&false.into(), &2.into()),
        "{json}"
    );
}

#[tokio::test]
async fn details_definition_and_delete() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let item = Item {
        taskid: "a".into(),
        url: "http://a.test/".into(),
        data: Default::default(),
    };
    store
        .upsert_results("books", &[item], 1)
        .await
        .expect("result");
    let Reply { status, json } = send(ui(&store), "GET", "/api/projects/books", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&json["fields"], &json["handlers"]),
        (&json!(["title"]), &json!(["start"]))
    );
    assert_eq!(
        (&json["status"], &json["dispatches"], &json["startable"]),
        (&"RUNNING".into(), &true.into(), &false.into()),
        "the editor's Start button follows `startable`"
    );
    let (status, text) = get_text(ui(&store), "/api/projects/books/definition?download=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.starts_with("name = \"books\""));

    let Reply { status, json } = send(ui(&store), "DELETE", "/api/projects/books", "").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (&json["deleted"], &json["results"]),
        (&true.into(), &1.into())
    );
    assert!(store.project("books").await.expect("load").is_none());
    let Reply { status, .. } = send(ui(&store), "DELETE", "/api/projects/books", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_ui_without_a_database_says_how_to_give_it_one() {
    let Reply { status, json } = send(
        WebUi::new(Default::default(), Mode::Distributed),
        "POST",
        "/api/projects/books/run",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("--database"))
    );
}

#[tokio::test]
async fn a_project_of_this_processs_folder_is_saved_back_to_its_file() {
    let (store, dir) = store_with_project("books", HANDLERS).await;
    let folder = dir.path().join("projects");
    std::fs::create_dir(&folder).expect("folder");
    let file = folder.join("books.toml");
    let stored = store.project("books").await.expect("load").expect("books");
    std::fs::write(&file, &stored.definition).expect("file");
    let ui = || ui(&store).project_files(Some(folder.clone()));
    let Reply { json, .. } = send(ui(), "GET", "/api/projects/books", "").await;
    assert_eq!(
        (&json["origin"]["kind"], &json["origin"]["writable"]),
        (&"file".into(), &true.into()),
        "{json}"
    );

    let edited = format!("{}# saved from the editor\n", stored.definition);
    let body = json!({ "definition": edited }).to_string();
    let Reply { status, json } = send(ui(), "PUT", "/api/projects/books/definition", &body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["saved_to"], "file");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), edited);
    assert_eq!(
        store
            .project("books")
            .await
            .expect("load")
            .expect("books")
            .definition,
        edited
    );
}

#[tokio::test]
async fn a_project_loaded_by_another_process_is_read_only_here() {
    let (store, _dir) = store_with_project("books", HANDLERS).await;
    let mut record = store.project("books").await.expect("load").expect("books");
    record.origin = Some("/srv/projects/books.toml".into());
    store.save_project(&record).await.expect("save");
    let Reply { json, .. } = send(ui(&store), "GET", "/api/projects/books", "").await;
    let origin = &json["origin"];
    assert_eq!(
        (&origin["kind"], &origin["writable"]),
        (&"file".into(), &false.into()),
        "{json}"
    );
    assert!(
        origin["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/srv/projects/books.toml"))
    );
    let body = json!({ "definition": format!("{}# edit\n", record.definition) }).to_string();
    let Reply { status, json } =
        send(ui(&store), "PUT", "/api/projects/books/definition", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert_eq!(
        store
            .project("books")
            .await
            .expect("load")
            .expect("books")
            .definition,
        record.definition,
        "nothing saved"
    );
}
