//! Project settings edited live (the dashboard's rate, burst, group and status) and the
//! file a project came from.

use super::*;

conformance!(
    store: [
        a_project_is_edited_live,
        a_project_keeps_the_file_it_came_from,
    ],
    db: [],
);

async fn a_project_is_edited_live(s: &dyn Store) {
    let rate = ProjectChange {
        rate: Some(8.0),
        ..ProjectChange::default()
    };
    assert_eq!(
        s.update_project("books", &rate, 1_000)
            .await
            .expect("update"),
        None,
        "no such project"
    );
    assert_eq!(s.project("books").await.expect("load"), None, "not created");

    let first = project("books");
    s.save_project(&first).await.expect("save");
    let changed = s
        .update_project("books", &rate, 1_000)
        .await
        .expect("update")
        .expect("known");
    assert_eq!(
        changed,
        ProjectRecord {
            rate: 8.0,
            updated_ms: 1_000,
            ..first.clone()
        },
        "only the rate changed, and the update time"
    );
    assert_eq!(s.project("books").await.expect("load"), Some(changed));

    // Everything at once; a clock behind the stored time still moves it forward (the
    // scheduler reloads a project whose update time changed).
    let everything = ProjectChange {
        status: Some(ProjectStatus::Stop),
        group: Some(Some("shop".into())),
        rate: Some(0.5),
        burst: Some(3.0),
    };
    let changed = s
        .update_project("books", &everything, 900)
        .await
        .expect("update")
        .expect("known");
    assert_eq!(
        (
            changed.status,
            changed.group.as_deref(),
            changed.rate,
            changed.burst,
            changed.updated_ms,
        ),
        (ProjectStatus::Stop, Some("shop"), 0.5, 3.0, 1_001)
    );
    assert_eq!(
        changed.definition, first.definition,
        "the file is not rewritten"
    );

    // An empty change only bumps the time; a group set to None clears it.
    let same = s
        .update_project("books", &ProjectChange::default(), 2_000)
        .await
        .expect("update")
        .expect("known");
    assert_eq!(
        same,
        ProjectRecord {
            updated_ms: 2_000,
            ..changed.clone()
        }
    );
    let ungrouped = ProjectChange {
        group: Some(None),
        ..ProjectChange::default()
    };
    let cleared = s
        .update_project("books", &ungrouped, 3_000)
        .await
        .expect("update")
        .expect("known");
    assert_eq!((cleared.group, cleared.rate), (None, 0.5));
    assert_eq!(
        s.project("books")
            .await
            .expect("load")
            .expect("stored")
            .group,
        None
    );
}

async fn a_project_keeps_the_file_it_came_from(s: &dyn Store) {
    let from_file = ProjectRecord {
        origin: Some("/srv/spindle/projects/books.toml".into()),
        ..project("books")
    };
    s.save_project(&from_file).await.expect("save");
    s.save_project(&project("news")).await.expect("save");
    assert_eq!(
        s.project("books").await.expect("load"),
        Some(from_file.clone())
    );
    let listed = s.projects().await.expect("projects");
    let origins: Vec<Option<&str>> = listed.iter().map(|p| p.origin.as_deref()).collect();
    assert_eq!(origins, [Some("/srv/spindle/projects/books.toml"), None]);

    // Live edits keep it; a save replaces it like the rest of the record.
    let edited = s
        .update_project(
            "books",
            &ProjectChange {
                rate: Some(1.0),
                ..ProjectChange::default()
            },
            500,
        )
        .await
        .expect("update")
        .expect("known");
    assert_eq!(edited.origin, from_file.origin);
    s.save_project(&project("books")).await.expect("save again");
    assert_eq!(
        s.project("books")
            .await
            .expect("load")
            .expect("stored")
            .origin,
        None
    );
}
