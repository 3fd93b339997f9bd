//! Running one handler on one page.
//!
//! [`run_handler`] reads only what the handler needs: the HTML (parsed once, walked once in
//! document order to record CSS links and the `<base href>`), its XPath view, or the body as
//! JSON. Then it builds the items ([`crate::extract`]) and follows ([`crate::links`]), and
//! finally runs the handler's script ([`crate::script`]), which sees the items and may
//! change them, emit more, and follow more links. It is synchronous and CPU-bound, and
//! `scraper::Html` is not `Send`, so the service runs it on the blocking pool.
//!
//! A script's follows pass the same gate as the rules' ([`FollowSink::admit`], one sink for
//! both): a follow to callback `c` gets the filter of the handler's first follow rule to `c`
//! (`allow`, `deny`, `max_depth`, `max_url_length`, `same_site`), or a rule's defaults when
//! the handler has no such rule; the call's `same_site` option overrides that one key.

use std::borrow::Cow;

use scraper::{ElementRef, Html};
use serde::Serialize;
use serde_json::Value;
use spindle_common::message::FetchMode;
use spindle_common::{FetchOptions, Item, Page, Task, urlnorm};
use url::Url;

use crate::depth;
use crate::error::ProcessorError;
use crate::extract::{DroppedItem, PageCtx, build_items, item_key};
use crate::links::{FollowFilter, FollowSink, LinkMatches, build_follows};
use crate::rules::{CompiledHandler, Rules};
use crate::script::ScriptInput;
use crate::script::api::ScriptFollow;
use crate::structured::jsonld_nodes;
use crate::xpath::XmlPage;

/// What a handler produced from one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HandlerOutput {
    /// New tasks for the scheduler: filtered links, deduplicated.
    pub follows: Vec<Task>,
    /// The page's items: one per page, one per `each` match, and what the script emitted.
    pub items: Vec<Item>,
    /// Items dropped because a `required` field (or the `key` field) came out empty, with
    /// the reason (also one line each in `logs`).
    pub dropped: Vec<DroppedItem>,
    /// Notes for the debugger: what each rule matched, why a field came out null, what the
    /// script logged.
    pub logs: Vec<String>,
    /// What the user should look at (also in `logs`): a follow's values read once for the
    /// page and given to several links.
    pub warnings: Vec<String>,
    /// Links dropped as repeats of a task this page already gave (same URL, or the same
    /// request: method and body).
    pub follows_repeated: u64,
    /// Items replaced by a later item of this page with the same key (the store keeps one).
    pub items_replaced: u64,
    /// Form values sent as written: text starting with `$` that names no page value.
    pub form_values_literal: u64,
    /// Time the handler's script hook took, in milliseconds; `None` without one.
    pub script_ms: Option<u32>,
}

/// Runs the handler named by `task.callback` on the page (synchronous; `scraper::Html` is
/// `!Send`, so callers run this in `spawn_blocking`).
///
/// Fails only for the task: an unknown callback, a page whose URL (and task URL) is not
/// absolute, a body that is not JSON for a handler that reads JSON, or a failed script.
/// Malformed HTML is never an error; HTML parsing always produces a tree.
pub fn run_handler(
    rules: &Rules,
    task: &Task,
    page: &Page,
) -> Result<HandlerOutput, ProcessorError> {
    let handler = rules
        .handler(&task.callback)
        .ok_or_else(|| ProcessorError::UnknownCallback {
            project: rules.project().name.clone(),
            callback: task.callback.clone(),
        })?;
    // The page URL is where the fetcher ended up after redirects, so relative links resolve
    // against it; the task URL is the fallback for a fetcher that did not fill it in.
    let page_url = Url::parse(&page.url)
        .or_else(|_| Url::parse(&task.url))
        .map_err(|_| ProcessorError::BadPageUrl(page.url.clone()))?;

    let json = if handler.needs.json {
        Some(
            serde_json::from_str::<Value>(&page.text)
                .map_err(|e| ProcessorError::NotJson(e.to_string()))?,
        )
    } else {
        None
    };
    if handler.needs.html
        && let Some(depth) = depth::too_deep(&page.text, depth::MAX_DEPTH)
    {
        return Err(ProcessorError::TooDeep(depth));
    }
    let html = handler.needs.html.then(|| Html::parse_document(&page.text));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let mut logs = Vec::new();
    // One sink for the rules' follows and the script's: the same filters, one dedupe.
    let mut sink = FollowSink::new(rules, task);
    let (base, items, dropped, notes) = {
        let xml = match (&html, handler.needs.xpath) {
            (Some(html), true) => Some(XmlPage::new(html)),
            _ => None,
        };
        let mut links = LinkMatches::new(&handler.follows);
        let mut base_href = None;
        if let Some(html) = &html {
            // `descendants` is a pre-order walk: document order, which "first match" relies on.
            for element in html.tree.root().descendants().filter_map(ElementRef::wrap) {
                if base_href.is_none() && element.value().name() == "base" {
                    base_href = element.attr("href");
                }
                links.visit(element, &handler.follows);
            }
        }
        let base = document_base(&page_url, base_href);
        let jsonld = match (&html, handler.needs.jsonld) {
            (Some(html), true) => Some(jsonld_nodes(html, &mut logs)),
            _ => None,
        };
        if let Some(skipped) = logs
            .iter()
            .find(|l| l.contains("block(s) skipped as invalid JSON"))
        {
            // Data the rules may be missing: visible without the debugger too.
            tracing::warn!(project = %rules.project().name, url = %task.url, "{skipped}");
        }
        let ctx = PageCtx {
            task,
            page,
            base: &base,
            html: html.as_ref(),
            xml: xml.as_ref(),
            json: json.as_ref(),
            jsonld: jsonld.as_ref(),
            project: &rules.project().name,
            now: &now,
        };
        let (items, dropped) = build_items(handler, &ctx, &mut logs);
        let notes = build_follows(&mut sink, &handler.follows, &links, &ctx, &mut logs);
        (base, items, dropped, notes)
    };
    let mut output = HandlerOutput {
        follows: Vec::new(),
        items,
        dropped,
        logs: Vec::new(),
        warnings: notes.warnings,
        follows_repeated: notes.repeated,
        items_replaced: 0,
        form_values_literal: notes.literal_form_values,
        script_ms: None,
    };

    if handler.script.is_some() {
        let started = std::time::Instant::now();
        let ran = run_script(
            rules,
            handler,
            task,
            page,
            base,
            html,
            &mut sink,
            &mut output,
            &mut logs,
        );
        output.script_ms = Some(u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX));
        ran.map_err(ProcessorError::Script)?;
    }
    output.follows = sink.tasks;
    output.items_replaced = replaced_items(&output.items);
    if output.items_replaced > 0 {
        logs.push(format!(
            "{} item(s) replaced by later ones with the same key on this page",
            output.items_replaced
        ));
    }
    output.logs = logs;
    Ok(output)
}

/// How many items are replaced by a later one of the same key (the store keeps the last).
fn replaced_items(items: &[Item]) -> u64 {
    let mut keys = std::collections::HashSet::with_capacity(items.len());
    items
        .iter()
        .filter(|item| !keys.insert(item.taskid.as_str()))
        .count() as u64
}

/// Runs the handler's script, merges its items into `output` and its follows into `sink`.
#[allow(clippy::too_many_arguments)]
fn run_script(
    rules: &Rules,
    handler: &CompiledHandler,
    task: &Task,
    page: &Page,
    base: Url,
    html: Option<Html>,
    sink: &mut FollowSink<'_>,
    output: &mut HandlerOutput,
    logs: &mut Vec<String>,
) -> Result<(), String> {
    let (Some(script), Some(engine)) = (&handler.script, rules.engine()) else {
        return Ok(());
    };
    let keys: Vec<String> = output.items.iter().map(|i| i.taskid.clone()).collect();
    let input = ScriptInput {
        task,
        page,
        project: &rules.project().name,
        base: base.clone(),
        html,
        handlers: rules.project().handlers.keys().cloned().collect(),
        items: output.items.iter().map(|i| i.data.clone()).collect(),
    };
    let out = engine.run(script, input)?;
    logs.extend(out.logs.into_iter().map(|l| format!("script: {l}")));

    let mut items = Vec::with_capacity(out.items.len() + out.emitted.len());
    for (i, data) in out.items.into_iter().enumerate() {
        let taskid = keys
            .get(i)
            .cloned()
            .unwrap_or_else(|| item_key(&task.taskid, i));
        items.push(Item {
            taskid,
            url: task.url.clone(),
            data,
        });
    }
    for (key, data) in out.emitted {
        let taskid = match key {
            Some(key) => urlnorm::fingerprint(&key),
            None => item_key(&task.taskid, items.len()),
        };
        items.push(Item {
            taskid,
            url: task.url.clone(),
            data,
        });
    }
    output.items = items;

    for follow in out.follows {
        let url = follow.url.clone();
        let filter = script_filter(handler, &follow);
        let new = script_task(task, follow)?;
        match sink.admit(&base, &url, new.depth, &filter, &new.fetch, &[]) {
            Ok((url, taskid)) => sink.tasks.push(Task { url, taskid, ..new }),
            Err(skip) => logs.push(format!("script follow `{url}` skipped: {}", skip.reason())),
        }
    }
    Ok(())
}

/// The filter of a script's follow: that of the handler's first rule following the same
/// callback (a rule's defaults without one), with the call's `same_site` option over it.
fn script_filter<'h>(handler: &'h CompiledHandler, follow: &ScriptFollow) -> Cow<'h, FollowFilter> {
    let mut filter = handler
        .follows
        .iter()
        .find(|rule| rule.callback == follow.callback)
        .map_or_else(
            || Cow::Owned(FollowFilter::default()),
            |rule| Cow::Borrowed(&rule.filter),
        );
    if let Some(same_site) = follow.options.same_site
        && same_site != filter.same_site
    {
        filter.to_mut().same_site = same_site;
    }
    filter
}

/// The task of a script's `follow` call (URL and task id come from the sink).
fn script_task(parent: &Task, follow: ScriptFollow) -> Result<Task, String> {
    let o = follow.options;
    let age_ms = match &o.age {
        None => None,
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        Some(Value::String(s)) => Some(
            humantime::parse_duration(s)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|e| format!("follow(): invalid age \"{s}\": {e}"))?,
        ),
        Some(other) => {
            return Err(format!(
                "follow(): invalid age {other}; expected seconds or \"1d\""
            ));
        }
    };
    let fetch = FetchOptions {
        method: o.method.map(|m| m.to_ascii_uppercase()),
        headers: o.headers,
        body: o.body,
        form: o.form,
        mode: o.fetch.unwrap_or(FetchMode::Http),
        user_agent: o.user_agent,
        cookies: o.cookies,
        proxies: o.proxies,
        ..FetchOptions::default()
    };
    Ok(Task {
        project: parent.project.clone(),
        taskid: String::new(),
        url: String::new(),
        callback: follow.callback,
        priority: o.priority.unwrap_or(0),
        exetime: 0,
        age_ms,
        itag: o.itag,
        retries: 0,
        depth: parent.depth.saturating_add(1),
        force: o.force,
        fetch,
        save: o.save,
        order: 0,
    })
}

/// The URL relative references resolve against: the first `<base href>` if it makes an
/// http(s) URL, else the page URL (as browsers do).
fn document_base(page_url: &Url, base_href: Option<&str>) -> Url {
    base_href
        .and_then(|href| page_url.join(href.trim()).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .unwrap_or_else(|| page_url.clone())
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
