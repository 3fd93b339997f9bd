//! From TOML text to a validated [`Project`].
//!
//! Two steps. First the text is deserialized into `Raw*` mirrors of the file, with
//! `deny_unknown_fields` everywhere and the self-contained checks done by the value newtypes
//! of [`super::values`] and [`super::exprs`] (so their errors carry the value's span). Then
//! [`build`] applies defaults and the checks that need more than one value: numeric ranges,
//! start and sitemap URLs, cross-references between follows and handlers, where each kind of field may
//! be used (see [`super::check`]), and script syntax; the values they point at are kept as
//! [`Spanned`] for that.

use std::ops::Range;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::check::{build_handler, build_on_finished};
use super::exprs::{Every, JsonPathExpr, XPathExpr};
use super::fetch::with_fetch_keys;
use super::field::Field;
use super::follow::ReadFollow;
use super::values::{
    AllowPrivate, Count, CssSelector, Dur, NonEmpty, Number, PositiveDur, ProjectName,
};
use super::{Defaults, Project, ProjectError, ProjectStatus, START_HANDLER};
use crate::urlnorm;

/// Requests per second when the file does not say.
const DEFAULT_RATE: f64 = 5.0;
/// Requests in flight per host when the file does not say.
const DEFAULT_HOST_CONCURRENCY: u32 = 8;

/// Reads a `script_file` by the path as written (and the span of that value); the error
/// says why it cannot.
pub(super) type ScriptReader<'a> = &'a dyn Fn(&str, Range<usize>) -> Result<String, String>;

/// A list of URLs as written (`start`, `sitemaps`), each with its span for errors.
type UrlList = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: ProjectName,
    start: Option<UrlList>,
    sitemaps: Option<UrlList>,
    rate: Option<Spanned<Number>>,
    burst: Option<Spanned<Number>>,
    host_concurrency: Option<Spanned<Count>>,
    host_delay: Option<Dur>,
    max_pages_per_host: Option<Spanned<Count>>,
    max_query_variants: Option<Spanned<Count>>,
    #[serde(default)]
    allow_private: AllowPrivate,
    every: Option<Every>,
    result_ttl: Option<PositiveDur>,
    status: Option<ProjectStatus>,
    group: Option<String>,
    #[serde(default)]
    keep_params: Vec<NonEmpty>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    handlers: IndexMap<Spanned<String>, RawHandler>,
    on_finished: Option<RawOnFinished>,
}

with_fetch_keys! {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawDefaults {
        age: Option<Dur>,
        retries: Option<Count>,
        retry_delays: Option<Spanned<Vec<PositiveDur>>>,
    }
}

/// A handler as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHandler {
    #[serde(default)]
    pub follow: Vec<ReadFollow>,
    #[serde(default)]
    pub item: IndexMap<NonEmpty, Spanned<Field>>,
    pub items: Option<Spanned<RawItems>>,
    pub script: Option<Spanned<String>>,
    pub script_file: Option<Spanned<String>>,
    pub script_timeout: Option<PositiveDur>,
}

/// `[handlers.<name>.items]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawItems {
    pub each: Option<CssSelector>,
    pub each_xpath: Option<XPathExpr>,
    pub each_json: Option<JsonPathExpr>,
    pub each_jsonld: Option<JsonPathExpr>,
    pub key: Option<Spanned<String>>,
}

/// `[on_finished]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOnFinished {
    #[serde(default)]
    pub item: IndexMap<NonEmpty, Spanned<Field>>,
    #[serde(default)]
    pub follow: Vec<ReadFollow>,
}

/// An opt-in budget as written: at least 1, or left out for no limit.
fn budget(
    text: &str,
    key: &str,
    value: Option<Spanned<Count>>,
) -> Result<Option<u32>, ProjectError> {
    match value {
        Some(n) if n.get_ref().0 == 0 => Err(ProjectError::spanned(
            text,
            n.span(),
            format!("expected {key} of at least 1, found 0 (leave it out for no limit)"),
        )),
        Some(n) => Ok(Some(n.into_inner().0)),
        None => Ok(None),
    }
}

/// Parses and validates a project file; see [`Project::parse`]. `scripts` reads a
/// `script_file` (`None`: `script_file` is refused, there is no folder to read it from).
pub(super) fn parse(
    text: &str,
    scripts: Option<ScriptReader<'_>>,
) -> Result<Project, ProjectError> {
    let raw: RawProject =
        toml::from_str(text).map_err(|err| ProjectError::from_toml(text, &err))?;
    build(text, raw, scripts)
}

/// Applies defaults and the checks that span several values.
fn build(
    text: &str,
    raw: RawProject,
    scripts: Option<ScriptReader<'_>>,
) -> Result<Project, ProjectError> {
    let err = |span: Range<usize>, message: String| ProjectError::spanned(text, span, message);

    let rate = match raw.rate {
        Some(rate) => {
            let value = rate.get_ref().0;
            if !(value.is_finite() && value > 0.0) {
                return Err(err(
                    rate.span(),
                    format!("expected a rate above 0 (requests per second), found {value}"),
                ));
            }
            value
        }
        None => DEFAULT_RATE,
    };
    let burst = match raw.burst {
        Some(burst) => {
            let value = burst.get_ref().0;
            if !(value.is_finite() && value >= 1.0) {
                return Err(err(
                    burst.span(),
                    format!("expected a burst of at least 1 request, found {value}"),
                ));
            }
            value
        }
        None => rate.max(1.0),
    };
    let host_concurrency = match raw.host_concurrency {
        Some(n) if n.get_ref().0 == 0 => {
            return Err(err(
                n.span(),
                "expected host_concurrency of at least 1, found 0".to_string(),
            ));
        }
        Some(n) => n.into_inner().0,
        None => DEFAULT_HOST_CONCURRENCY,
    };
    let max_pages_per_host = budget(text, "max_pages_per_host", raw.max_pages_per_host)?;
    let max_query_variants = budget(text, "max_query_variants", raw.max_query_variants)?;
    let keep_params: Vec<String> = raw.keep_params.into_iter().map(|k| k.0).collect();

    // Handlers first: the start URL check needs to know whether a `start` handler exists.
    let names: Vec<&str> = raw.handlers.keys().map(|k| k.get_ref().as_str()).collect();
    let mut handlers = IndexMap::with_capacity(raw.handlers.len());
    for (name, handler) in &raw.handlers {
        if name.get_ref().trim().is_empty() {
            return Err(err(
                name.span(),
                "expected a non-empty handler name".to_string(),
            ));
        }
        let built = build_handler(text, &names, handler, scripts)?;
        handlers.insert(name.get_ref().clone(), built);
    }
    let on_finished = match &raw.on_finished {
        Some(hook) => Some(build_on_finished(text, &names, hook)?),
        None => None,
    };

    let has_start = handlers.contains_key(START_HANDLER);
    let start = url_list(text, raw.start, UrlKind::Start, has_start, &keep_params)?;
    let sitemaps = url_list(
        text,
        raw.sitemaps,
        UrlKind::Sitemap,
        has_start,
        &keep_params,
    )?;

    let defaults = {
        let mut d = raw.defaults;
        let fallback = Defaults::default();
        let retry_delays = match d.retry_delays.take() {
            Some(list) if list.get_ref().is_empty() => {
                return Err(err(
                    list.span(),
                    "expected at least one delay (use `retries = 0` for no retry)".into(),
                ));
            }
            Some(list) => Some(list.into_inner().into_iter().map(|d| d.0).collect()),
            None => None,
        };
        let mut fetch = d.take_fetch().into_options();
        // These four have fields of their own (the scheduler's merge reads them there).
        let headers = std::mem::take(&mut fetch.headers);
        let timeout = fetch.timeout_ms.take();
        let max_body = fetch.max_body.take();
        let max_redirects = fetch.max_redirects.take();
        Defaults {
            age: d.age.map(|a| a.0),
            timeout: timeout.map_or(fallback.timeout, std::time::Duration::from_millis),
            headers,
            retries: d.retries.map_or(fallback.retries, |n| n.0),
            retry_delays,
            max_body: max_body.unwrap_or(fallback.max_body),
            max_redirects: max_redirects.unwrap_or(fallback.max_redirects),
            fetch,
        }
    };
    let (every, cron) = match raw.every {
        Some(Every::Interval(d)) => (Some(d), None),
        Some(Every::Cron(expr)) => (None, Some(expr)),
        None => (None, None),
    };

    let allow_private_ranges = match &raw.allow_private {
        AllowPrivate::Only(entries) => entries
            .iter()
            .map(|entry| {
                crate::netrange::parse_entry(entry.get_ref())
                    .map(|range| range.to_string())
                    .map_err(|message| err(entry.span(), message))
            })
            .collect::<Result<Vec<_>, _>>()?,
        AllowPrivate::All | AllowPrivate::Nothing => Vec::new(),
    };
    Ok(Project {
        name: raw.name.0,
        start,
        sitemaps,
        rate,
        burst,
        host_concurrency,
        host_delay: raw.host_delay.map(|d| d.0).unwrap_or_default(),
        max_pages_per_host,
        max_query_variants,
        allow_private: raw.allow_private == AllowPrivate::All,
        allow_private_ranges,
        every,
        cron,
        result_ttl: raw.result_ttl.map(|d| d.0),
        status: raw.status,
        group: raw.group,
        keep_params,
        defaults,
        handlers,
        on_finished,
        source: text.to_string(),
    })
}

/// Which list of URLs is read: both hold absolute http(s) URLs whose pages (the start URLs
/// themselves, or the pages a sitemap lists) go to handler `start`.
#[derive(Clone, Copy)]
enum UrlKind {
    Start,
    Sitemap,
}

impl UrlKind {
    /// What one URL of the list is called in errors.
    fn noun(self) -> &'static str {
        match self {
            UrlKind::Start => "start URL",
            UrlKind::Sitemap => "sitemap URL",
        }
    }

    /// Why the list needs a `start` handler.
    fn needs_start(self) -> &'static str {
        match self {
            UrlKind::Start => "start URLs are fetched",
            UrlKind::Sitemap => "the pages that sitemaps list are fetched",
        }
    }
}

/// A list of URLs, normalized and deduplicated in file order, or the error at the offending
/// value: a URL that is not absolute http(s), or a non-empty list without a `start` handler.
fn url_list(
    text: &str,
    urls: Option<UrlList>,
    kind: UrlKind,
    has_start: bool,
    keep_params: &[String],
) -> Result<Vec<String>, ProjectError> {
    let Some(urls) = urls else {
        return Ok(Vec::new());
    };
    if !urls.get_ref().is_empty() && !has_start {
        return Err(ProjectError::spanned(
            text,
            urls.span(),
            format!(
                "{} with handler \"{START_HANDLER}\", but there is no [handlers.{START_HANDLER}]",
                kind.needs_start()
            ),
        ));
    }
    let mut out = Vec::new();
    for url in urls.get_ref() {
        let normalized = absolute_url(url.get_ref(), kind, keep_params)
            .map_err(|message| ProjectError::spanned(text, url.span(), message))?;
        if !out.contains(&normalized) {
            out.push(normalized);
        }
    }
    Ok(out)
}

/// An absolute http(s) URL in normalized form, or why it is not a usable one.
fn absolute_url(text: &str, kind: UrlKind, keep_params: &[String]) -> Result<String, String> {
    let expected = "expected an absolute http(s) URL such as \"https://example.com/\"";
    let noun = kind.noun();
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("invalid {noun} \"{text}\" ({e}); {expected}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("invalid {noun} \"{text}\"; {expected}"));
    }
    Ok(urlnorm::normalize(&url, keep_params).to_string())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
