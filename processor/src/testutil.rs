//! Builders shared by the unit tests.

use std::sync::Arc;

use spindle_common::{Page, Project, Task};

use crate::rules::Rules;

/// Compiled rules of a project file.
pub(crate) fn rules(project: &str) -> Rules {
    let project = Project::parse(project).expect("test project is valid");
    Rules::compile(Arc::new(project)).expect("test project compiles")
}

/// A task of project `p` for `callback` at `url`, at depth 2.
pub(crate) fn task(callback: &str, url: &str) -> Task {
    Task {
        taskid: "t1".into(),
        depth: 2,
        ..Task::new("p", url, callback)
    }
}

/// A 200 text/html page at `url` with body `html`.
pub(crate) fn page(url: &str, html: &str) -> Page {
    Page {
        url: url.into(),
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        content_type: "text/html".into(),
        encoding: "UTF-8".into(),
        text: html.into(),
        body_len: html.len() as u64,
        fetch_ms: 12,
        script_result: None,
        screenshot_png_base64: None,
    }
}

/// A 200 application/json page at `url` with body `json`.
pub(crate) fn json_page(url: &str, json: &str) -> Page {
    let mut p = page(url, json);
    p.headers = vec![("content-type".into(), "application/json".into())];
    p.content_type = "application/json".into();
    p
}

/// Runs the handler of `task` and returns its output, failing the test on a task error.
pub(crate) fn run(rules: &Rules, task: &Task, page: &Page) -> crate::HandlerOutput {
    crate::run_handler(rules, task, page).expect("handler runs")
}
