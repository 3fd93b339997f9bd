//! `[on_finished]`: what a project emits once a crawl has finished.
//!
//! The hook has no page, so its values are constants, `$project` and `$now`:
//!
//! ```toml
//! [on_finished]
//! item.event = "crawl finished"
//! item.at = "$now"
//! follow = [{ url = "https://hooks.example/done?project={$project}", callback = "webhook", method = "POST" }]
//! ```
//!
//! The scheduler calls [`super::Project::on_finished_output`] when the project's queue has
//! drained, publishes the item to the result writer and the follows as forced tasks.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::field::{Field, PageValue};
use super::follow::{FollowRule, LinkSource, TemplatePart};
use crate::message::{Item, Task};
use crate::urlnorm;

/// The URL items of `[on_finished]` carry (they come from no page).
pub const ON_FINISHED_URL: &str = "spindle:on_finished";

/// `[on_finished]`: a final item and follows (webhooks) emitted when a crawl finishes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnFinished {
    /// Fields of the final item: constants, `$project` or `$now`; empty: no item.
    pub item: IndexMap<String, Field>,
    /// Follows: `url` templates whose placeholders are `$project` or `$now`.
    pub follow: Vec<FollowRule>,
}

/// What `[on_finished]` produced for one finished crawl.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinishedOutput {
    /// The final item, if the hook defines fields; its key is unique per finish time.
    pub items: Vec<Item>,
    /// The follows, forced, at depth 0.
    pub follows: Vec<Task>,
}

/// Whether a page value is known when a crawl finishes.
pub(super) fn allowed_on_finished(value: &PageValue) -> bool {
    matches!(value, PageValue::Project | PageValue::Now)
}

/// RFC 3339 UTC text of Unix milliseconds.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl OnFinished {
    /// Evaluates the hook for `project` finishing at `now_ms`.
    pub(super) fn output(
        &self,
        project: &str,
        keep_params: &[String],
        now_ms: i64,
    ) -> FinishedOutput {
        let value_of = |value: &PageValue| -> String {
            match value {
                PageValue::Project => project.to_string(),
                PageValue::Now => rfc3339_ms(now_ms),
                // Refused at parse time: nothing else is known without a page.
                _ => String::new(),
            }
        };
        let mut out = FinishedOutput::default();
        if !self.item.is_empty() {
            let mut data = Map::new();
            for (name, field) in &self.item {
                let value = match field {
                    Field::Const(text) => Value::String(text.clone()),
                    Field::Page(page) => Value::String(value_of(page)),
                    // Refused at parse time.
                    Field::Extract(_) => Value::Null,
                };
                data.insert(name.clone(), value);
            }
            out.items.push(Item {
                taskid: urlnorm::fingerprint(&format!("{project}:on_finished:{now_ms}")),
                url: ON_FINISHED_URL.to_string(),
                data,
            });
        }
        for rule in &self.follow {
            let LinkSource::Url(template) = &rule.links else {
                continue;
            };
            let mut text = String::new();
            for (i, part) in template.parts.iter().enumerate() {
                match part {
                    TemplatePart::Literal(l) => text.push_str(l),
                    TemplatePart::Page(page) if i == 0 => text.push_str(&value_of(page)),
                    TemplatePart::Page(page) => text.extend(percent_encoding::utf8_percent_encode(
                        &value_of(page),
                        percent_encoding::NON_ALPHANUMERIC,
                    )),
                    TemplatePart::Json(_) => {}
                }
            }
            let Some(url) = url::Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
            else {
                continue;
            };
            let url = urlnorm::normalize(&url, keep_params).to_string();
            out.follows.push(Task {
                project: project.to_string(),
                taskid: urlnorm::fingerprint(&format!("{url}#on_finished:{now_ms}")),
                url,
                callback: rule.callback.clone(),
                priority: rule.priority,
                exetime: 0,
                age_ms: None,
                itag: None,
                retries: 0,
                depth: 0,
                force: true,
                fetch: rule.fetch.clone(),
                save: None,
                order: 0,
            });
        }
        out
    }
}
