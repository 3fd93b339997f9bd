//! Follows: from link values to new tasks.
//!
//! Each rule yields raw link values from its source: CSS (recorded by [`LinkMatches`]
//! during the handler's document pass), XPath, JSONPath, or a URL template expanded with
//! page values and JSON values ([`expand_template`]). Then every link goes through the same
//! steps, [`FollowSink::admit`] with the rule's [`FollowFilter`]: dropped past `max_depth`,
//! resolved against the page's base URL and normalized (dropping tracking parameters the
//! project does not keep), kept on the project's site (unless `same_site = false`), capped in
//! length, filtered by `allow` / `deny`; one task per distinct URL, with the rule's priority,
//! age, itag, force, fetch options and `save`.
//!
//! A script's `follow` calls go through the same [`FollowSink::admit`], in the same sink,
//! after the rules (see [`crate::handler`]), so no filter can be skipped by writing a follow
//! in the script instead of the file.
//!
//! Order and dedupe: rules are taken in file order and links within a rule in document order;
//! a URL found twice keeps its first occurrence, so when two rules match the same link the
//! rule written first decides its callback and the rest of its task (and a script follow of a
//! URL a rule found is a repeat).

use std::collections::HashSet;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;
use scraper::ElementRef;
use serde_json::{Map, Value};
use spindle_common::project::DEFAULT_MAX_URL_LENGTH;
use spindle_common::{Task, urlnorm};
use sxd_xpath::nodeset::Node as XNode;
use url::Url;

use crate::extract::{PageCtx, Scope, field_value, page_value};
use crate::rules::{CompiledFollow, CompiledLinks, CompiledPart, Rules};
use crate::value::{Raw, text_of};
use crate::xpath;

/// What a template placeholder's value is encoded with: everything but RFC 3986's
/// unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Most URLs one template makes (a JSONPath selecting many values multiplies them).
const MAX_TEMPLATE_URLS: usize = 10_000;

/// Raw link values found by each CSS follow rule, by rule index.
pub(crate) struct LinkMatches<'a> {
    found: Vec<Vec<&'a str>>,
}

impl<'a> LinkMatches<'a> {
    /// Empty matches for `follows`.
    pub(crate) fn new(follows: &[CompiledFollow]) -> Self {
        Self {
            found: follows.iter().map(|_| Vec::new()).collect(),
        }
    }

    /// Records `element`'s link for every CSS rule it matches; an element without the rule's
    /// attribute (an `<a>` with no `href`) is no link.
    pub(crate) fn visit(&mut self, element: ElementRef<'a>, follows: &[CompiledFollow]) {
        for (rule, found) in follows.iter().zip(&mut self.found) {
            if let CompiledLinks::Css { selector, attr } = &rule.links
                && selector.matches(&element)
                && let Some(value) = element.attr(attr)
            {
                found.push(value);
            }
        }
    }
}

/// What a link must pass to become a task: the filter keys of a follow rule.
#[derive(Debug, Clone)]
pub(crate) struct FollowFilter {
    /// Keep only URLs on the project's site.
    pub(crate) same_site: bool,
    /// One of these must match the URL (none: every URL).
    pub(crate) allow: Vec<Regex>,
    /// None of these may match the URL.
    pub(crate) deny: Vec<Regex>,
    /// No follow deeper than this.
    pub(crate) max_depth: Option<u32>,
    /// Longest URL, in bytes.
    pub(crate) max_url_length: usize,
}

impl Default for FollowFilter {
    /// The filter of a follow rule that sets no filter key.
    fn default() -> Self {
        Self {
            same_site: true,
            allow: Vec::new(),
            deny: Vec::new(),
            max_depth: None,
            max_url_length: DEFAULT_MAX_URL_LENGTH,
        }
    }
}

impl FollowFilter {
    /// Whether `allow` and `deny` let `url` through.
    fn allows(&self, url: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|re| re.is_match(url)))
            && !self.deny.iter().any(|re| re.is_match(url))
    }
}

/// What became of the links of one rule, for its log line.
#[derive(Default)]
struct Tally {
    new: usize,
    repeated: usize,
    off_site: usize,
    unusable: usize,
    filtered: usize,
    too_long: usize,
    too_deep: usize,
}

impl Tally {
    fn skipped(&mut self, skip: Skip) {
        *match skip {
            Skip::TooDeep => &mut self.too_deep,
            Skip::Unusable => &mut self.unusable,
            Skip::OffSite => &mut self.off_site,
            Skip::TooLong => &mut self.too_long,
            Skip::Filtered => &mut self.filtered,
            Skip::Repeated => &mut self.repeated,
        } += 1;
    }
}

/// Filters and dedupes follow URLs into tasks.
pub(crate) struct FollowSink<'r> {
    rules: &'r Rules,
    hosts: Vec<String>,
    seen: HashSet<String>,
    /// The tasks so far.
    pub(crate) tasks: Vec<Task>,
}

impl<'r> FollowSink<'r> {
    /// A sink for the follows of `task`'s page.
    pub(crate) fn new(rules: &'r Rules, task: &Task) -> Self {
        // A project without start URLs (run from the debugger, or fed by another project) has
        // no site of its own: the site of the task being processed stands in for it.
        let hosts = if rules.start_hosts().is_empty() {
            Url::parse(&task.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .into_iter()
                .collect()
        } else {
            rules.start_hosts().to_vec()
        };
        Self {
            rules,
            hosts,
            seen: HashSet::new(),
            tasks: Vec::new(),
        }
    }

    /// Checks, resolves and dedupes one raw link of a follow at `depth`: `Ok` with the
    /// normalized URL and its task id when it is new and passes `filter`, `Err` with the
    /// reason otherwise. The one gate of every follow, declarative or scripted.
    pub(crate) fn admit(
        &mut self,
        base: &Url,
        raw: &str,
        depth: u32,
        filter: &FollowFilter,
    ) -> Result<(String, String), Skip> {
        if filter.max_depth.is_some_and(|max| depth > max) {
            return Err(Skip::TooDeep);
        }
        let url =
            urlnorm::resolve(base, raw, &self.rules.project().keep_params).ok_or(Skip::Unusable)?;
        if filter.same_site && !urlnorm::same_site(&url, &self.hosts) {
            return Err(Skip::OffSite);
        }
        let url = String::from(url);
        if url.len() > filter.max_url_length {
            return Err(Skip::TooLong);
        }
        if !filter.allows(&url) {
            return Err(Skip::Filtered);
        }
        let taskid = urlnorm::fingerprint(&url);
        if !self.seen.insert(taskid.clone()) {
            return Err(Skip::Repeated);
        }
        Ok((url, taskid))
    }
}

/// Why a link made no task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    TooDeep,
    Unusable,
    OffSite,
    TooLong,
    Filtered,
    Repeated,
}

impl Skip {
    /// The reason, for log lines.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Skip::TooDeep => "beyond max_depth",
            Skip::Unusable => "not an http(s) URL",
            Skip::OffSite => "off-site",
            Skip::TooLong => "too long",
            Skip::Filtered => "filtered by allow/deny",
            Skip::Repeated => "repeated",
        }
    }
}

/// Adds the follows of every rule to `sink`, with a log line per rule.
pub(crate) fn build_follows(
    sink: &mut FollowSink<'_>,
    follows: &[CompiledFollow],
    css: &LinkMatches<'_>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) {
    for (rule, css_found) in follows.iter().zip(&css.found) {
        let raw_links: Vec<String> = match &rule.links {
            CompiledLinks::Css { .. } => css_found.iter().map(|s| (*s).to_string()).collect(),
            CompiledLinks::XPath { xpath, attr } => match ctx.xml {
                Some(xml) => match xpath::select(xpath, XNode::Root(xml.document().root())) {
                    Ok(found) => found
                        .iter()
                        .filter_map(|s| s.raw(Some(attr)).and_then(|r| text_of(&r)))
                        .collect(),
                    Err(e) => {
                        logs.push(e);
                        Vec::new()
                    }
                },
                None => Vec::new(),
            },
            CompiledLinks::Json(path) => ctx
                .json
                .map(|json| {
                    path.query(json)
                        .all()
                        .into_iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            CompiledLinks::Url(parts) => expand_template(parts, ctx),
        };
        let depth = ctx.task.depth.saturating_add(1);
        let mut tally = Tally::default();
        // `save` and `itag` are evaluated once, for the first link that makes a task.
        let mut extras = None;
        for raw in &raw_links {
            match sink.admit(ctx.base, raw, depth, &rule.filter) {
                Ok((url, taskid)) => {
                    tally.new += 1;
                    let (save, itag) = extras.get_or_insert_with(|| {
                        let save = save_data(rule, ctx, logs);
                        let itag = rule.itag.as_ref().and_then(|f| {
                            text_of(&Raw::Json(field_value("itag", f, Scope::Page, ctx, logs)))
                        });
                        (save, itag)
                    });
                    sink.tasks.push(Task {
                        project: ctx.task.project.clone(),
                        taskid,
                        url,
                        callback: rule.callback.clone(),
                        priority: rule.priority,
                        exetime: 0,
                        age_ms: rule.age_ms,
                        itag: itag.clone(),
                        retries: 0,
                        depth,
                        force: rule.force,
                        fetch: rule.fetch.clone(),
                        save: save.clone(),
                        order: 0,
                    });
                }
                Err(skip) => tally.skipped(skip),
            }
        }
        let mut line = format!(
            "follow {} -> {}: {} link(s), {} followed, {} repeated, {} off-site, {} not http(s)",
            rule.label,
            rule.callback,
            raw_links.len(),
            tally.new,
            tally.repeated,
            tally.off_site,
            tally.unusable,
        );
        for (n, what) in [
            (tally.filtered, "filtered by allow/deny"),
            (tally.too_long, "too long"),
            (tally.too_deep, "beyond max_depth"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
        }
        logs.push(line);
    }
}

/// The `save` data of a rule's follows, evaluated on this page; `None` when it has none.
fn save_data(
    rule: &CompiledFollow,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> Option<Map<String, Value>> {
    if rule.save.is_empty() {
        return None;
    }
    let mut save = Map::with_capacity(rule.save.len());
    for (key, field) in &rule.save {
        save.insert(
            key.clone(),
            field_value(&format!("save.{key}"), field, Scope::Page, ctx, logs),
        );
    }
    Some(save)
}

/// The URLs a template makes on this page: one per combination of placeholder values; none
/// when a placeholder has no value (the last page of a paged API).
pub(crate) fn expand_template(parts: &[CompiledPart], ctx: &PageCtx<'_>) -> Vec<String> {
    let mut urls = vec![String::new()];
    for (i, part) in parts.iter().enumerate() {
        let values: Vec<String> = match part {
            CompiledPart::Literal(text) => {
                for url in &mut urls {
                    url.push_str(text);
                }
                continue;
            }
            CompiledPart::Page(value) => page_value(value, ctx)
                .and_then(|v| text_of(&Raw::Json(v)))
                .into_iter()
                .collect(),
            CompiledPart::Json(path) => ctx
                .json
                .map(|json| {
                    path.query(json)
                        .all()
                        .into_iter()
                        .filter_map(|v| text_of(&Raw::Json(v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        };
        // A placeholder that starts the template may be a whole URL: taken as is.
        let encode = |v: &str| {
            if i == 0 {
                v.to_string()
            } else {
                utf8_percent_encode(v, COMPONENT).to_string()
            }
        };
        let mut next = Vec::with_capacity(urls.len() * values.len());
        'outer: for url in &urls {
            for value in &values {
                if next.len() >= MAX_TEMPLATE_URLS {
                    break 'outer;
                }
                next.push(format!("{url}{}", encode(value)));
            }
        }
        urls = next;
    }
    urls
}

#[cfg(test)]
#[path = "links_tests.rs"]
mod tests;
