//! Running one handler on one page.
//!
//! [`run_handler`] reads only what the handler needs: the HTML (parsed once, walked once in
//! document order to record CSS links and the `<base href>`), its XPath view, or the body as
//! JSON. Then it builds the items ([`crate::extract`]) and follows ([`crate::links`]), and
//! finally runs the handler's script ([`crate::script`]), which sees the items and may
//! change them, emit more, and follow more links. It is synchronous and CPU-bound, and
//! `scraper::Html` is not `Send`, so the service runs it on the blocking pool.

use scraper::{ElementRef, Html};
use serde::Serialize;
use serde_json::Value;
use spindle_common::message::FetchMode;
use spindle_common::{FetchOptions, Item, Page, Task, urlnorm};
use url::Url;

use crate::error::ProcessorError;
use crate::extract::{PageCtx, build_items, item_key};
use crate::links::{FollowSink, LinkMatches, build_follows};
use crate::rules::{CompiledHandler, Rules};
use crate::script::ScriptInput;
use crate::script::api::ScriptFollow;
use crate::xpath::XmlPage;

/// What a handler produced from one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HandlerOutput {
    /// New tasks for the scheduler: filtered links, deduplicated.
    pub follows: Vec<Task>,
    /// The page's items: one per page, one per `each` match, and what the script emitted.
    pub items: Vec<Item>,
    /// Items dropped because a `required` field (or the `key` field) came out empty; each
    /// drop is logged with its reason.
    pub dropped: usize,
    /// Notes for the debugger: what each rule matched, why a field came out null, what the
    /// script logged.
    pub logs: Vec<String>,
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
    let html = handler.needs.html.then(|| Html::parse_document(&page.text));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let mut logs = Vec::new();
    let (base, mut output) = {
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
        let ctx = PageCtx {
            task,
            page,
            base: &base,
            html: html.as_ref(),
            xml: xml.as_ref(),
            json: json.as_ref(),
            project: &rules.project().name,
            now: &now,
        };
        let (items, dropped) = build_items(handler, &ctx, &mut logs);
        let mut sink = FollowSink::new(rules, task);
        build_follows(&mut sink, &handler.follows, &links, &ctx, &mut logs);
        let follows = std::mem::take(&mut sink.tasks);
        (
            base,
            HandlerOutput {
                follows,
                items,
                dropped,
                logs: Vec::new(),
            },
        )
    };

    if handler.script.is_some() {
        run_script(
            rules,
            handler,
            task,
            page,
            base,
            html,
            &mut output,
            &mut logs,
        )
        .map_err(ProcessorError::Script)?;
    }
    output.logs = logs;
    Ok(output)
}

/// Runs the handler's script and merges what it produced into `output`.
#[allow(clippy::too_many_arguments)]
fn run_script(
    rules: &Rules,
    handler: &CompiledHandler,
    task: &Task,
    page: &Page,
    base: Url,
    html: Option<Html>,
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

    let mut sink = FollowSink::new(rules, task);
    for follow in out.follows {
        let url = follow.url.clone();
        let same_site = follow.options.same_site.unwrap_or(true);
        let new = script_task(task, follow)?;
        match sink.add_script_follow(&base, &url, same_site, new) {
            Ok(()) => {}
            Err(reason) => logs.push(format!("script follow `{url}` skipped: {reason}")),
        }
    }
    // Declarative follows came first; a script follow of the same URL is a repeat.
    for t in sink.tasks {
        if !output.follows.iter().any(|f| f.taskid == t.taskid) {
            output.follows.push(t);
        }
    }
    Ok(())
}

/// The task of a script's `follow` call (URL and task id are filled in by the sink).
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
