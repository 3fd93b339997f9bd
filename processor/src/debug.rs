//! One debugger step: run one handler on one fetched page and report everything, persisting
//! nothing.
//!
//! [`run_step`] is what `spindle debug` and the web UI's debugger call: the same
//! [`run_handler`] a production processor runs, with its outcome turned into a
//! [`DebugReport`] (follows, items, dropped count, logs, the error that would fail the task,
//! timings) that serializes to JSON.

use std::time::Instant;

use serde::Serialize;
use spindle_common::{Item, Page, Task};

use crate::handler::run_handler;
use crate::rules::Rules;

/// The result of one debug step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DebugReport {
    /// The project.
    pub project: String,
    /// The handler that ran.
    pub handler: String,
    /// The task's URL.
    pub url: String,
    /// What was fetched.
    pub page: PageSummary,
    /// Follow tasks the step made.
    pub follows: Vec<Task>,
    /// Items the step made.
    pub items: Vec<Item>,
    /// Items dropped for a missing required (or key) field.
    pub dropped: usize,
    /// What each rule matched, why fields came out null, what the script logged.
    pub logs: Vec<String>,
    /// What deserves a look although nothing failed: a follow's values read once for the
    /// page and given to several links.
    pub warnings: Vec<String>,
    /// Links dropped as repeats of a task this page already gave.
    pub follows_repeated: u64,
    /// Items replaced by a later item of this page with the same key.
    pub items_replaced: u64,
    /// Form values sent as written (`$...` naming no page value), counted per follow.
    pub form_values_literal: u64,
    /// Why the task would fail (empty when it would succeed).
    pub errors: Vec<String>,
    /// Timings in milliseconds.
    pub timings: Timings,
    /// The page's text, for the web UI's HTML view and preview (see [`DebugReport::with_body`]);
    /// left out of the JSON when absent, as in `spindle debug`'s output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Whether `body` was cut at its size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

impl DebugReport {
    /// The report with the first `max_bytes` of `text` (cut at a character boundary) as its body.
    pub fn with_body(mut self, text: &str, max_bytes: usize) -> Self {
        let mut end = text.len().min(max_bytes);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.body = Some(text[..end].to_string());
        self.body_truncated = end < text.len();
        self
    }
}

/// The page a step ran on, without its body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageSummary {
    /// URL after redirects.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body size in bytes.
    pub body_len: u64,
}

/// How long a step took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Fetching, as the fetcher measured it.
    pub fetch_ms: u32,
    /// Running the handler, in milliseconds with fractions.
    pub process_ms: f64,
}

/// Runs the handler of `task` on `page` with `rules` and reports the outcome.
pub fn run_step(rules: &Rules, task: &Task, page: &Page) -> DebugReport {
    let started = Instant::now();
    let result = run_handler(rules, task, page);
    let process_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (output, errors) = match result {
        Ok(output) => (output, Vec::new()),
        Err(err) => (Default::default(), vec![err.to_string()]),
    };
    DebugReport {
        project: rules.project().name.clone(),
        handler: task.callback.clone(),
        url: task.url.clone(),
        page: PageSummary {
            url: page.url.clone(),
            status: page.status,
            content_type: page.content_type.clone(),
            body_len: page.body_len,
        },
        follows: output.follows,
        items: output.items,
        dropped: output.dropped.len(),
        logs: output.logs,
        warnings: output.warnings,
        follows_repeated: output.follows_repeated,
        items_replaced: output.items_replaced,
        form_values_literal: output.form_values_literal,
        errors,
        timings: Timings {
            fetch_ms: page.fetch_ms,
            process_ms,
        },
        body: None,
        body_truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{page, rules, task};

    #[test]
    fn a_step_reports_outputs_and_errors_as_json() {
        let rules = rules(
            "name = \"p\"\n[handlers.start]\nitem.t = { css = \"h1\" }\nfollow = [{ css = \"a\", callback = \"start\" }]\n[handlers.api]\nitem.x = { json = \"$.x\" }\n",
        );
        let url = "http://site.example/";
        let report = run_step(
            &rules,
            &task("start", url),
            &page(url, "<h1>T</h1><a href='/n'>n</a>"),
        );
        assert_eq!(report.items[0].data["t"], "T");
        assert_eq!(report.follows[0].url, "http://site.example/n");
        assert!(report.errors.is_empty());
        assert_eq!(report.page.status, 200);
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["handler"], "start");
        assert!(json["timings"]["process_ms"].is_number());

        assert!(json.get("body").is_none(), "no body unless asked for");
        let with = report.clone().with_body("héllo", 2);
        assert_eq!(
            (with.body.as_deref(), with.body_truncated),
            (Some("h"), true)
        );
        let with = report.with_body("héllo", 100);
        assert_eq!(
            (with.body.as_deref(), with.body_truncated),
            (Some("héllo"), false)
        );

        let report = run_step(&rules, &task("api", url), &page(url, "<h1>not json</h1>"));
        assert!(report.items.is_empty());
        assert!(report.errors[0].contains("not JSON"), "{:?}", report.errors);
    }
}
