//! The project model: what a user writes (a TOML project file), parsed and validated.
//!
//! The file format is a contract (see DESIGN.md, "Project file", and docs/rules.md for every
//! key). [`Project::parse`] (or [`Project::load`] for a file on disk, which also reads
//! `script_file`s) is the only way to build a [`Project`], and it checks everything that can
//! be checked without the network: syntax, unknown keys, types, durations, sizes, CSS
//! selectors, XPath and JSONPath expressions, regexes, datetime formats, page values, URL
//! templates, cron expressions, script syntax, where each kind of field may be used, and
//! that every callback names a handler. A file with an error is refused with a
//! [`ProjectError`] carrying the 1-based line and column of the offending text and what was
//! expected, so a `Project` that exists is always runnable by the processor.
//!
//! Invariants of a parsed project:
//! - `start` and `sitemaps` hold absolute http(s) URLs in [`crate::urlnorm::normalize`]d
//!   form;
//! - every [`FollowRule::callback`] is a key of [`Project::handlers`], and `handlers` has a
//!   `start` handler when `start` or `sitemaps` is not empty;
//! - every selector, expression, regex and script compiles;
//! - at most one of `every` (an interval) and `cron` is set.

mod check;
mod compute;
mod error;
mod exprs;
mod fetch;
mod field;
mod finished;
mod follow;
mod form;
mod handler;
mod load;
mod parse;
mod script;
mod status;
mod units;
mod values;

use std::collections::BTreeMap;
use std::time::Duration;

use indexmap::IndexMap;

use crate::message::{FetchOptions, SitemapOptions, Task};
use crate::urlnorm;

pub use compute::{Expr, ExprError, MAX_EXPR_DEPTH, MAX_EXPR_LEN};
pub use error::{ProjectError, line_column};
pub use fetch::merge_fetch;
pub use field::{Field, FieldRule, HtmlPart, PageValue, Source, ValueKind};
pub use finished::{FinishedOutput, ON_FINISHED_URL, OnFinished};
pub use follow::{DEFAULT_MAX_URL_LENGTH, FollowRule, LinkSource, TemplatePart, UrlTemplate};
pub use form::{FormFields, FormValue, PageForm};
pub use handler::{Each, Handler, ItemsRule, Script, ScriptOrigin};
pub use load::LoadError;
pub use script::{ScriptLimits, ScriptSyntaxError, check_script, sandboxed_engine};
pub use status::{InvalidStatus, ProjectStatus};
pub use units::{Dimension, UNITS, Unit};

/// The handler that processes the start URLs.
pub const START_HANDLER: &str = "start";

/// A parsed, validated project.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Unique name: `[A-Za-z0-9_-]`, 1 to 64 characters (it becomes a subject token).
    pub name: String,
    /// Start URLs, absolute http(s), normalized.
    pub start: Vec<String>,
    /// Sitemap URLs (`sitemaps`), absolute http(s), normalized: read by the fetcher, which
    /// queues the pages they list (handler "start") and the sitemaps an index lists.
    pub sitemaps: Vec<String>,
    /// Requests per second for the whole project (token bucket rate), > 0.
    pub rate: f64,
    /// Token bucket size, >= 1.
    pub burst: f64,
    /// Requests in flight per host, >= 1.
    pub host_concurrency: u32,
    /// Minimum gap between two requests to one host.
    pub host_delay: Duration,
    /// Opt-in budget (`max_pages_per_host`): new pages admitted per host in one run (from
    /// one submission of the start URLs to the next); later new links to that host are
    /// dropped and counted. `None`: no limit.
    pub max_pages_per_host: Option<u32>,
    /// Opt-in budget (`max_query_variants`): new URLs admitted per path (scheme, host and
    /// path) that differ only in their query, in one run; for traps the defaults cannot
    /// judge, such as filters combined without end. `None`: no limit.
    pub max_query_variants: Option<u32>,
    /// Whether every loopback and private address may be fetched (`allow_private = true`).
    pub allow_private: bool,
    /// The hosts and CIDR ranges whose non-public addresses may be fetched (`allow_private =
    /// ["127.0.0.1/32"]`), as [`crate::netrange::PrivateRange`] displays them; empty when
    /// `allow_private` is a boolean. See [`crate::netrange`].
    pub allow_private_ranges: Vec<String>,
    /// Period after which the start URLs are submitted again (`every` as an interval).
    pub every: Option<Duration>,
    /// Cron expression (UTC) of the times the start URLs are submitted again (`every` as a
    /// cron expression); see [`Project::next_start_after`].
    pub cron: Option<String>,
    /// Results not updated for this long are deleted by the scheduler (`result_ttl`);
    /// `None`: kept for ever.
    pub result_ttl: Option<Duration>,
    /// Run state set by the file (`status`, any case); `None` when the file sets none.
    pub status: Option<ProjectStatus>,
    /// Free-form group label.
    pub group: Option<String>,
    /// Tracking parameters to keep in URLs (extension key `keep_params`).
    pub keep_params: Vec<String>,
    /// Options applied to every request.
    pub defaults: Defaults,
    /// Handlers by name, in file order.
    pub handlers: IndexMap<String, Handler>,
    /// What to emit once a crawl has finished (`[on_finished]`).
    pub on_finished: Option<OnFinished>,
    /// The TOML text as given (with `script_file`s inlined when loaded with
    /// [`Project::load`], so the stored definition is self-contained).
    pub source: String,
}

/// Options applied to every request of a project (`[defaults]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Don't re-crawl a URL younger than this; `None`: never re-crawl.
    pub age: Option<Duration>,
    /// Total time allowed for one request.
    pub timeout: Duration,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Attempts after the first before a task fails (extension key).
    pub retries: u32,
    /// Delay before each retry, the last one repeating (extension key); `None`: the
    /// scheduler's schedule (30 s, 1 h, 6 h, like pyspider).
    pub retry_delays: Option<Vec<Duration>>,
    /// Largest body accepted, in bytes (extension key).
    pub max_body: u64,
    /// Redirects followed before giving up (extension key).
    pub max_redirects: u32,
    /// Every other default fetch option (`user_agent`, `cookies`, `session`, `proxies`,
    /// `verify_tls`, `follow_redirects`, `connect_timeout`, `robots`, `content_types`,
    /// `fetch`, `js`); its headers, timeout, max_body and max_redirects are left empty, as
    /// the fields above hold them. [`Project::fetch_defaults`] combines both.
    pub fetch: FetchOptions,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            age: None,
            timeout: Duration::from_secs(30),
            headers: BTreeMap::new(),
            retries: 3,
            retry_delays: None,
            max_body: 10 * 1024 * 1024,
            max_redirects: 10,
            fetch: FetchOptions::default(),
        }
    }
}

/// A task that reads the sitemap at `url` (normalized, absolute http(s)): the fetcher queues
/// the pages it lists for handler `callback` and the sitemaps it lists as more such tasks.
///
/// Its task id is the fingerprint of `sitemap:<url>`, not of the URL: reading a sitemap is
/// another job than fetching the same URL as a page, and neither must dedupe the other away.
/// Depth 0; the fetcher counts nested sitemaps with it.
pub fn sitemap_task(project: &str, url: &str, callback: &str, options: SitemapOptions) -> Task {
    Task {
        taskid: urlnorm::fingerprint(&format!("sitemap:{url}")),
        fetch: FetchOptions {
            sitemap: Some(options),
            ..FetchOptions::default()
        },
        ..Task::new(project, url, callback)
    }
}

impl Project {
    /// Parses and validates a project file. A `script_file` is refused (there is no folder
    /// to read it from): use [`Project::load`] for files on disk.
    pub fn parse(text: &str) -> Result<Project, ProjectError> {
        parse::parse(text, None)
    }

    /// Reads, parses and validates the project file at `path`; `script_file`s are read
    /// relative to its folder and inlined into [`Project::source`].
    pub fn load(path: &std::path::Path) -> Result<Project, LoadError> {
        load::load(path)
    }

    /// The tasks of a start of the project: one per start URL (callback "start", taskid =
    /// fingerprint, depth 0, all other Task fields default), then one per sitemap (see
    /// [`sitemap_task`]; its pages go to handler "start").
    pub fn start_tasks(&self) -> Vec<Task> {
        let pages = self
            .start
            .iter()
            .map(|url| Task::new(&self.name, url, START_HANDLER));
        let options = SitemapOptions {
            hosts: self.start_hosts(),
            keep_params: self.keep_params.clone(),
        };
        let sitemaps = self
            .sitemaps
            .iter()
            .map(|url| sitemap_task(&self.name, url, START_HANDLER, options.clone()));
        pages.chain(sitemaps).collect()
    }

    /// What `spindle check` points out in a valid file: each form value sent as written
    /// because it starts with `$` but names no page value (more often a typo of one than a
    /// password). Handlers in name order, rules in file order.
    pub fn warnings(&self) -> Vec<String> {
        let mut names: Vec<&String> = self.handlers.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            for rule in &self.handlers[name.as_str()].follow {
                let fill = match &rule.links {
                    LinkSource::Form(form) => Some(&form.fill),
                    _ => None,
                };
                for (key, value) in rule.form.iter().chain(fill).flatten() {
                    if let FormValue::Literal(text) = value {
                        out.push(format!(
                            "handler `{name}`, follow to `{}`: form value `{key}` = \"{text}\" names no page value and is sent as written; write \"${text}\" if that is meant",
                            rule.callback
                        ));
                    }
                }
            }
        }
        out
    }

    /// Item field names of all handlers in definition order, deduplicated (the CSV header).
    pub fn item_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        let on_finished = self.on_finished.iter().flat_map(|h| h.item.keys());
        for name in self
            .handlers
            .values()
            .flat_map(|h| h.item.keys())
            .chain(on_finished)
        {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
        fields
    }

    /// The hosts of the start URLs and sitemaps: the project's site, for same-site follows
    /// and sitemap entries. Deduplicated, in file order (start URLs first).
    pub fn start_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for url in self.start.iter().chain(&self.sitemaps) {
            // Start URLs were parsed at load time; one that no longer parses has no host.
            if let Some(host) = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                && !hosts.contains(&host)
            {
                hosts.push(host);
            }
        }
        hosts
    }

    /// The handler named `callback`.
    pub fn handler(&self, callback: &str) -> Option<&Handler> {
        self.handlers.get(callback)
    }

    /// Every default fetch option of the project: `[defaults]` (headers, timeout, max_body,
    /// max_redirects and the other fetch keys) and `allow_private`.
    pub fn fetch_defaults(&self) -> FetchOptions {
        let d = &self.defaults;
        FetchOptions {
            headers: d.headers.clone(),
            timeout_ms: Some(u64::try_from(d.timeout.as_millis()).unwrap_or(u64::MAX)),
            max_body: Some(d.max_body),
            max_redirects: Some(d.max_redirects),
            allow_private: self.allow_private,
            allow_private_ranges: self.allow_private_ranges.clone(),
            ..d.fetch.clone()
        }
    }

    /// A task's own fetch options with the project's defaults merged under them (what the
    /// scheduler sends); see [`merge_fetch`] for the rules. `allow_private` (and its ranges)
    /// is the project's, whatever the task says.
    pub fn fetch_for(&self, own: &FetchOptions) -> FetchOptions {
        let mut merged = merge_fetch(&self.fetch_defaults(), own);
        merged.allow_private = self.allow_private;
        merged.allow_private_ranges = self.allow_private_ranges.clone();
        merged
    }

    /// When the start URLs are due again after a start at `last_start_ms` (Unix ms):
    /// `last_start_ms + every`, or the first time the cron expression matches strictly after
    /// it (UTC); `None` when the project does not restart.
    pub fn next_start_after(&self, last_start_ms: i64) -> Option<i64> {
        if let Some(every) = self.every {
            let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
            return Some(last_start_ms.saturating_add(every));
        }
        let cron = exprs::parse_cron(self.cron.as_deref()?).ok()?;
        let after = chrono::DateTime::from_timestamp_millis(last_start_ms)?;
        cron.find_next_occurrence(&after, false)
            .ok()
            .map(|next| next.timestamp_millis())
    }

    /// What `[on_finished]` emits for a crawl that finished at `now_ms`: an item and
    /// follows (forced); empty when the file has no `[on_finished]`.
    pub fn on_finished_output(&self, now_ms: i64) -> FinishedOutput {
        match &self.on_finished {
            Some(hook) => hook.output(&self.name, &self.keep_params, now_ms),
            None => FinishedOutput::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of DESIGN.md, verbatim: every key of it is part of the contract.
    pub(super) const DESIGN_EXAMPLE: &str = r#"name = "books"
start = ["https://books.example/"]   # fetched with handler "start"
rate = 10                            # requests per second for the project (token bucket)
burst = 20
host_concurrency = 8                 # requests in flight per host (politeness)
host_delay = "0s"                    # minimum gap between two requests to one host
allow_private = false                # may fetch loopback/private addresses (tests set true)
every = "1d"                         # restart the start URLs periodically (optional)

[defaults]                           # applied to every request of the project
age = "10d"                          # don't re-crawl a URL younger than this
timeout = "30s"
headers = { "User-Agent" = "spindle" }

[handlers.start]
follow = [
  { css = "nav a.category", callback = "list" },
]

[handlers.list]
follow = [
  { css = "article h3 a", callback = "detail", priority = 1 },
  { css = "li.next a", callback = "list" },
]

[handlers.detail]
item.title = { css = "h1" }
item.price = { css = "p.price", regex = '[0-9.]+', as = "number" }
item.image = { css = "img.cover", attr = "src", as = "url" }
item.url = "$url"                    # page values: $url, $status, $save.<key>
"#;

    #[test]
    fn the_design_example_parses_with_every_key() {
        let p = Project::parse(DESIGN_EXAMPLE).expect("the DESIGN.md example is valid");
        assert_eq!(p.name, "books");
        assert_eq!(p.start, vec!["https://books.example/".to_string()]);
        assert_eq!(p.rate, 10.0);
        assert_eq!(p.burst, 20.0);
        assert_eq!(p.host_concurrency, 8);
        assert_eq!(p.host_delay, Duration::ZERO);
        assert!(!p.allow_private);
        assert_eq!(p.every, Some(Duration::from_secs(86_400)));
        assert_eq!(p.defaults.age, Some(Duration::from_secs(864_000)));
        assert_eq!(p.defaults.timeout, Duration::from_secs(30));
        assert_eq!(
            p.defaults.headers.get("User-Agent").map(String::as_str),
            Some("spindle")
        );
        assert_eq!(
            p.handlers.keys().collect::<Vec<_>>(),
            vec!["start", "list", "detail"]
        );
        let list = &p.handlers["list"];
        let rule = &list.follow[0];
        assert_eq!(
            rule.links,
            LinkSource::Css {
                css: "article h3 a".into(),
                attr: "href".into(),
            }
        );
        assert_eq!((rule.callback.as_str(), rule.priority), ("detail", 1));
        assert!(rule.same_site);
        assert_eq!(rule.max_url_length, DEFAULT_MAX_URL_LENGTH);
        assert_eq!(list.follow[1].priority, 0);
        let detail = &p.handlers["detail"];
        assert_eq!(
            detail.item["price"],
            Field::Extract(FieldRule {
                regex: Some("[0-9.]+".into()),
                kind: Some(ValueKind::Number),
                ..FieldRule::new(Source::Css("p.price".into()))
            })
        );
        assert_eq!(detail.item["url"], Field::Page(PageValue::Url));
        assert_eq!(p.source, DESIGN_EXAMPLE);
    }

    #[test]
    fn start_tasks_are_fingerprinted_start_callbacks() {
        let p = Project::parse(DESIGN_EXAMPLE).expect("valid");
        let tasks = p.start_tasks();
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        assert_eq!(t.project, "books");
        assert_eq!(t.url, "https://books.example/");
        assert_eq!(t.taskid, urlnorm::fingerprint("https://books.example/"));
        assert_eq!(t.callback, "start");
        assert_eq!((t.depth, t.priority, t.retries, t.exetime), (0, 0, 0, 0));
        assert_eq!(t.save, None);
    }

    #[test]
    fn sitemaps_start_as_sitemap_tasks_after_the_start_urls() {
        let p = Project::parse(
            r#"
name = "shop"
start = ["https://shop.example/"]
sitemaps = ["https://shop.example/sitemap.xml", "https://blog.example/sitemap.xml"]
keep_params = ["ref"]
[handlers.start]
"#,
        )
        .expect("valid");
        assert_eq!(p.start_hosts(), vec!["shop.example", "blog.example"]);
        let tasks = p.start_tasks();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].fetch.sitemap, None, "a start URL is a page");
        let t = &tasks[1];
        assert_eq!(t.url, "https://shop.example/sitemap.xml");
        assert_eq!(
            t.callback, START_HANDLER,
            "the pages it lists go to `start`"
        );
        assert_eq!(
            t.taskid,
            urlnorm::fingerprint("sitemap:https://shop.example/sitemap.xml")
        );
        assert_ne!(
            t.taskid,
            urlnorm::fingerprint(&t.url),
            "not the page's task"
        );
        assert_eq!((t.depth, t.priority, t.retries, t.force), (0, 0, 0, false));
        assert_eq!(
            t.fetch,
            FetchOptions {
                sitemap: Some(SitemapOptions {
                    hosts: vec!["shop.example".into(), "blog.example".into()],
                    keep_params: vec!["ref".into()],
                }),
                ..FetchOptions::default()
            }
        );
        assert_eq!(tasks[2].url, "https://blog.example/sitemap.xml");

        // The scheduler's merge keeps the flag, and a task without one never gets it.
        let merged = p.fetch_for(&t.fetch);
        assert_eq!(merged.sitemap, t.fetch.sitemap);
        assert_eq!(p.fetch_for(&FetchOptions::default()).sitemap, None);
    }

    #[test]
    fn item_fields_are_in_definition_order_without_duplicates() {
        let p = Project::parse(
            r#"
name = "p"
[handlers.a]
item.title = { css = "h1" }
item.url = "$url"
[handlers.b]
item.url = "$url"
item.price = { css = "p" }
"#,
        )
        .expect("valid");
        assert_eq!(p.item_fields(), vec!["title", "url", "price"]);
    }

    #[test]
    fn start_hosts_are_deduplicated() {
        let p = Project::parse(
            r#"
name = "p"
start = ["http://A.example/x", "http://a.example/y", "https://b.example:8443/"]
[handlers.start]
"#,
        )
        .expect("valid");
        assert_eq!(p.start_hosts(), vec!["a.example", "b.example"]);
    }
}

#[cfg(test)]
#[path = "project/extensions_tests.rs"]
mod extensions_tests;
