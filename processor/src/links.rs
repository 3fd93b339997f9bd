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
//! With `each`, a rule runs once per matching element ([`Scope::Element`]): links from `css`
//! inside it (or its own `attr`, or its forms), and `save`, `itag` and form values read
//! inside it, so each link carries its own values. Without `each`, those values are read once
//! for the page; a rule that gives them to several links while one of them reads the page
//! (`css`, `xpath`, `json`) gets a warning, since every link then carries the first match.
//!
//! A task's id is its [`urlnorm::request_fingerprint`]: the URL's for a GET, with the method
//! and body for a POST, so two forms posted to one URL are two tasks.
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
use spindle_common::{FetchOptions, Task, urlnorm};
use sxd_xpath::nodeset::Node as XNode;
use url::Url;

use crate::extract::{PageCtx, Scope, field_value, page_value, select_page};
use crate::forms::submission;
use crate::rules::{
    CompiledField, CompiledFollow, CompiledFormValue, CompiledLinks, CompiledPart, CompiledSource,
    Rules,
};
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
            if rule.each.is_none()
                && let CompiledLinks::Css { selector, attr } = &rule.links
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

    /// Checks, resolves and dedupes one raw link of a follow at `depth`, to be fetched with
    /// `fetch`: `Ok` with the normalized URL and its task id (the URL's, with the method and
    /// body of a request other than a GET, and the values of `identity_headers`) when it is
    /// new and passes `filter`, `Err` with the reason otherwise. The one gate of every follow, declarative or scripted.
    pub(crate) fn admit(
        &mut self,
        base: &Url,
        raw: &str,
        depth: u32,
        filter: &FollowFilter,
        fetch: &FetchOptions,
        identity_headers: &[String],
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
        let taskid = urlnorm::request_fingerprint_with_headers(&url, fetch, identity_headers);
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

/// What the follows of a page dropped or sent that the user should know about, beyond the
/// per-rule log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FollowNotes {
    /// Warnings: values read once for the page and given to several links.
    pub(crate) warnings: Vec<String>,
    /// Form values sent as written (`$...` naming no page value), one per follow.
    pub(crate) literal_form_values: u64,
    /// Links dropped as repeats of a task this page already gave.
    pub(crate) repeated: u64,
}

/// One link of a rule, with where its values are read and how it is fetched.
struct Candidate<'a> {
    raw: String,
    scope: Scope<'a>,
    /// Fetch options of a form of the page (its method and fields).
    fetch: Option<FetchOptions>,
}

/// Adds the follows of every rule to `sink`, with a log line per rule.
pub(crate) fn build_follows(
    sink: &mut FollowSink<'_>,
    follows: &[CompiledFollow],
    css: &LinkMatches<'_>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> FollowNotes {
    let mut notes = FollowNotes::default();
    for (rule, css_found) in follows.iter().zip(&css.found) {
        let candidates = candidates(rule, css_found, ctx, logs);
        let depth = ctx.task.depth.saturating_add(1);
        let mut tally = Tally::default();
        // Without `each`, `save`, `itag` and form values are read once, for the first link
        // that makes a task; with it, once per element.
        let mut once: Option<Extras> = None;
        let mut last_scope: Option<(Scope<'_>, Extras)> = None;
        for candidate in &candidates {
            let extras = match (rule.each.is_some(), &once) {
                (false, Some(extras)) => extras.clone(),
                (false, None) => {
                    let extras = Extras::read(rule, candidate.scope, ctx, logs);
                    once = Some(extras.clone());
                    extras
                }
                (true, _) => match &last_scope {
                    Some((scope, extras)) if same_element(*scope, candidate.scope) => {
                        extras.clone()
                    }
                    _ => {
                        let extras = Extras::read(rule, candidate.scope, ctx, logs);
                        last_scope = Some((candidate.scope, extras.clone()));
                        extras
                    }
                },
            };
            let mut fetch = candidate
                .fetch
                .clone()
                .unwrap_or_else(|| rule.fetch.clone());
            if let Some(form) = &extras.form {
                fetch.form = Some(form.clone());
            }
            match sink.admit(
                ctx.base,
                &candidate.raw,
                depth,
                &rule.filter,
                &fetch,
                &rule.identity_headers,
            ) {
                Ok((url, taskid)) => {
                    tally.new += 1;
                    notes.literal_form_values += extras.literal_form_values;
                    sink.tasks.push(Task {
                        project: ctx.task.project.clone(),
                        taskid,
                        url,
                        callback: rule.callback.clone(),
                        priority: rule.priority,
                        exetime: 0,
                        age_ms: rule.age_ms,
                        itag: extras.itag,
                        retries: 0,
                        depth,
                        force: rule.force,
                        fetch,
                        save: extras.save,
                        order: 0,
                    });
                }
                Err(skip) => tally.skipped(skip),
            }
        }
        notes.repeated += tally.repeated as u64;
        if rule.each.is_none() && tally.new > 1 {
            let page_read: Vec<String> = rule
                .save
                .iter()
                .map(|(name, field)| (format!("save.{name}"), field))
                .chain(rule.itag.iter().map(|f| ("itag".to_string(), f)))
                .chain(rule.form.iter().flatten().filter_map(|(name, v)| match v {
                    CompiledFormValue::Field(f) => Some((format!("form.{name}"), &**f)),
                    CompiledFormValue::Literal(_) => None,
                }))
                .filter(|(_, field)| reads_page(field))
                .map(|(name, _)| name)
                .collect();
            if !page_read.is_empty() {
                let warning = format!(
                    "follow {} -> {}: {} read once for the page and given to all {} links (each gets the first match); add `each` so every link reads its own",
                    rule.label,
                    rule.callback,
                    page_read
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    tally.new
                );
                logs.push(format!("warning: {warning}"));
                notes.warnings.push(warning);
            }
        }
        if let Some(literals) = literal_names(rule)
            && tally.new > 0
        {
            logs.push(format!(
                "follow {} -> {}: form value(s) {literals} sent as written (they name no page value; write `$$` for a literal `$`)",
                rule.label, rule.callback
            ));
        }
        let mut line = format!(
            "follow {} -> {}: {} link(s), {} followed, {} repeated, {} off-site, {} not http(s)",
            rule.label,
            rule.callback,
            candidates.len(),
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
    notes
}

/// Whether a field reads the page's body (so reading it once for many links is suspicious).
fn reads_page(field: &CompiledField) -> bool {
    matches!(
        field.source,
        CompiledSource::Css(_) | CompiledSource::XPath(_) | CompiledSource::Json(_)
    )
}

/// The names of the literal form values of a rule, quoted, if it has any.
fn literal_names(rule: &CompiledFollow) -> Option<String> {
    let form = rule.form.iter().flatten();
    let fill = match &rule.links {
        CompiledLinks::Form(form) => Some(form.fill.iter()),
        _ => None,
    };
    let names: Vec<String> = form
        .chain(fill.into_iter().flatten())
        .filter_map(|(name, v)| match v {
            CompiledFormValue::Literal(text) => Some(format!("`{name}` = \"{text}\"")),
            CompiledFormValue::Field(_) => None,
        })
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Whether two scopes are the same `each` element, whose values are read once for its links.
fn same_element(a: Scope<'_>, b: Scope<'_>) -> bool {
    matches!((a, b), (Scope::Element(a), Scope::Element(b)) if a == b)
}

/// The values a rule gives its tasks, read in one scope.
#[derive(Clone)]
struct Extras {
    save: Option<Map<String, Value>>,
    itag: Option<String>,
    /// Fields of a form written in the file, evaluated.
    form: Option<std::collections::BTreeMap<String, String>>,
    /// Form values sent as written.
    literal_form_values: u64,
}

impl Extras {
    fn read(
        rule: &CompiledFollow,
        scope: Scope<'_>,
        ctx: &PageCtx<'_>,
        logs: &mut Vec<String>,
    ) -> Extras {
        let save = save_data(rule, scope, ctx, logs);
        let itag = rule
            .itag
            .as_ref()
            .and_then(|f| text_of(&Raw::Json(field_value("itag", f, scope, ctx, logs))));
        let (form, literal_form_values) = match &rule.form {
            Some(values) => {
                let (form, literals) = form_values(values, scope, ctx, logs);
                (Some(form.into_iter().collect()), literals)
            }
            None => (None, 0),
        };
        let literal_form_values = literal_form_values
            + match &rule.links {
                CompiledLinks::Form(form) => form
                    .fill
                    .iter()
                    .filter(|(_, v)| matches!(v, CompiledFormValue::Literal(_)))
                    .count() as u64,
                _ => 0,
            };
        Extras {
            save,
            itag,
            form,
            literal_form_values,
        }
    }
}

/// Form values evaluated in `scope` (a null value is sent empty), and how many are literal.
fn form_values(
    values: &[(String, CompiledFormValue)],
    scope: Scope<'_>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> (Vec<(String, String)>, u64) {
    let mut literals = 0;
    let pairs = values
        .iter()
        .map(|(name, value)| {
            let text = match value {
                CompiledFormValue::Literal(text) => {
                    literals += 1;
                    text.clone()
                }
                CompiledFormValue::Field(field) => text_of(&Raw::Json(field_value(
                    &format!("form.{name}"),
                    field,
                    scope,
                    ctx,
                    logs,
                )))
                .unwrap_or_default(),
            };
            (name.clone(), text)
        })
        .collect();
    (pairs, literals)
}

/// The links of a rule on this page, each with its scope.
fn candidates<'a>(
    rule: &'a CompiledFollow,
    css_found: &[&'a str],
    ctx: &PageCtx<'a>,
    logs: &mut Vec<String>,
) -> Vec<Candidate<'a>> {
    let page = |raw: String| Candidate {
        raw,
        scope: Scope::Page,
        fetch: None,
    };
    if let Some(each) = &rule.each {
        let Some(html) = ctx.html else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut elements = 0;
        for element in select_page(html, each) {
            elements += 1;
            let scope = Scope::Element(element);
            match &rule.links {
                CompiledLinks::Css { selector, attr } => {
                    out.extend(element.select(selector).filter_map(|e| {
                        e.attr(attr).map(|raw| Candidate {
                            raw: raw.to_string(),
                            scope,
                            fetch: None,
                        })
                    }));
                }
                CompiledLinks::Element { attr } => {
                    out.extend(element.attr(attr).map(|raw| Candidate {
                        raw: raw.to_string(),
                        scope,
                        fetch: None,
                    }));
                }
                CompiledLinks::Form(form) => {
                    let forms = std::iter::once(element)
                        .filter(|e| form.form.matches(e))
                        .chain(element.select(&form.form));
                    for f in forms.collect::<Vec<_>>() {
                        out.extend(form_candidate(rule, form, f, scope, ctx, logs));
                    }
                }
                // Refused when the file is read.
                _ => {}
            }
        }
        logs.push(format!(
            "follow {} -> {}: `each` matched {elements}",
            rule.label, rule.callback
        ));
        return out;
    }
    match &rule.links {
        CompiledLinks::Css { .. } => css_found.iter().map(|s| page((*s).to_string())).collect(),
        CompiledLinks::XPath { xpath, attr } => match ctx.xml {
            Some(xml) => match xpath::select(xpath, XNode::Root(xml.document().root())) {
                Ok(found) => found
                    .iter()
                    .filter_map(|s| s.raw(Some(attr)).and_then(|r| text_of(&r)))
                    .map(page)
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
                    .map(page)
                    .collect()
            })
            .unwrap_or_default(),
        CompiledLinks::Url(parts) => expand_template(parts, ctx).into_iter().map(page).collect(),
        CompiledLinks::Form(form) => match ctx.html {
            Some(html) => select_page(html, &form.form)
                .collect::<Vec<_>>()
                .into_iter()
                .filter_map(|f| form_candidate(rule, form, f, Scope::Page, ctx, logs))
                .collect(),
            None => Vec::new(),
        },
        // Only with `each`, refused without it when the file is read.
        CompiledLinks::Element { .. } => Vec::new(),
    }
}

/// The submission of one form of the page, its `fill` read in `scope`.
fn form_candidate<'a>(
    rule: &CompiledFollow,
    form: &crate::rules::CompiledPageForm,
    element: scraper::ElementRef<'a>,
    scope: Scope<'a>,
    ctx: &PageCtx<'_>,
    logs: &mut Vec<String>,
) -> Option<Candidate<'a>> {
    let (fill, _) = form_values(&form.fill, scope, ctx, logs);
    match submission(
        element,
        form.submit.as_ref(),
        &fill,
        &ctx.page.url,
        ctx.base,
        &rule.fetch,
    ) {
        Some(s) => Some(Candidate {
            raw: s.url,
            scope,
            fetch: Some(s.fetch),
        }),
        None => {
            logs.push(format!(
                "follow {} -> {}: a form's action is not a URL",
                rule.label, rule.callback
            ));
            None
        }
    }
}

/// The `save` data of a rule's follows, evaluated in `scope`; `None` when it has none.
fn save_data(
    rule: &CompiledFollow,
    scope: Scope<'_>,
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
            field_value(&format!("save.{key}"), field, scope, ctx, logs),
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
