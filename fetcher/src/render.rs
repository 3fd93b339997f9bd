//! Rendering one task in a browser tab: navigate, wait, run the task's script, read the DOM.
//!
//! Steps, all through DevTools calls on a blocking thread:
//!
//! 1. Reset the tab for this task: user agent, extra headers, viewport, certificate checks,
//!    image blocking (Fetch interception of image requests), cookies for the page URL.
//! 2. Navigate and wait for the page's `load` lifecycle event (or `networkIdle` with
//!    `js.network_idle`: reached, or `js.wait_ms` passed, whichever first; a page that keeps
//!    polling is still rendered).
//! 3. With `js.wait_for`, wait until the selector matches (failing with `Timeout` after
//!    `js.wait_ms` or the task deadline).
//! 4. Run `js.script` (its value, awaited if a promise, becomes `Page::script_result`).
//! 5. Read `document.documentElement.outerHTML`, the final URL, the status of the main
//!    response, and a PNG screenshot if asked.
//!
//! Every wait polls the browser process too, so a crash is noticed within one poll and
//! reported as a `Browser` error; the caller decides whether the browser must be restarted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use headless_chrome::Tab;
use headless_chrome::browser::tab::RequestPausedDecision;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Fetch, Network, Page, Runtime, Security};
use serde_json::Value;
use spindle_common::message::{ErrorKind, JsOptions, TaskError};

use crate::browser::Instance;
use crate::error::task_error;

/// How often waits look at the page and the browser.
const POLL: Duration = Duration::from_millis(25);

/// Longest wait for `wait_for` / `network_idle` when the task sets no `wait_ms`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// What a render needs to know about the task.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// The page URL (already checked by the guard and robots.txt).
    pub url: String,
    /// `User-Agent` of the tab.
    pub user_agent: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Cookies for the page URL.
    pub cookies: Vec<(String, String)>,
    /// Browser options.
    pub js: JsOptions,
    /// Whether certificate errors fail the navigation.
    pub verify_tls: bool,
    /// Viewport used when the task sets none.
    pub default_viewport: (u32, u32),
    /// When the task's time is up.
    pub deadline: Instant,
    /// Whether the browser's cookies are read back after the render (for a session).
    pub keep_cookies: bool,
}

/// What a render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// URL after redirects and script navigation.
    pub url: String,
    /// Status of the main document's response (200 when the browser does not say).
    pub status: u16,
    /// `document.contentType`.
    pub content_type: String,
    /// `document.documentElement.outerHTML`.
    pub html: String,
    /// Value of the task's script.
    pub script_result: Option<Value>,
    /// Base64 PNG screenshot.
    pub screenshot_png_base64: Option<String>,
    /// Cookies the browser holds after the render (name, value, domain, path), when asked.
    pub cookies: Vec<(String, String, String, String)>,
}

/// The per-tab settings a render applies; kept with a pooled tab so that the next render
/// with the same settings sends no DevTools call for them (each call costs `headless_chrome`
/// up to ~100 ms of latency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabSettings {
    user_agent: String,
    headers: Vec<(String, String)>,
    viewport: (u32, u32),
    verify_tls: bool,
    block_images: bool,
}

impl TabSettings {
    /// The settings `request` needs.
    pub fn of(request: &RenderRequest) -> Self {
        Self {
            user_agent: request.user_agent.clone(),
            headers: request.headers.clone(),
            viewport: request.js.viewport.unwrap_or(request.default_viewport),
            verify_tls: request.verify_tls,
            block_images: request.js.block_images,
        }
    }
}

/// Renders `request` in `tab` of `instance`. Blocking.
///
/// `applied` is what the tab was last set up with (`None` for a new tab); it is updated to
/// what this render set up, or reset to `None` if setting up failed half-way.
pub fn render(
    tab: &Tab,
    instance: &Instance,
    request: &RenderRequest,
    applied: &mut Option<TabSettings>,
) -> Result<Rendered, TaskError> {
    let remaining = request.deadline.saturating_duration_since(Instant::now());
    tab.set_default_timeout(remaining);
    let wanted = TabSettings::of(request);
    if applied.as_ref() != Some(&wanted) {
        *applied = None;
        prepare(tab, &wanted)?;
        *applied = Some(wanted);
    }
    set_cookies(tab, request)?;

    // Lifecycle events of every loader, recorded before navigating so none is missed.
    let events: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = events.clone();
    let listener = tab
        .add_event_listener(Arc::new(move |event: &Event| {
            if let Event::PageLifecycleEvent(e) = event {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((e.params.loader_id.clone(), e.params.name.clone()));
            }
        }))
        .map_err(|err| browser_error("cannot listen to the tab", &err))?;
    let result = navigate_and_read(tab, instance, request, &events);
    let _ = tab.remove_event_listener(&listener);
    result
}

fn navigate_and_read(
    tab: &Tab,
    instance: &Instance,
    request: &RenderRequest,
    events: &Mutex<Vec<(String, String)>>,
) -> Result<Rendered, TaskError> {
    let navigated = tab
        .call_method(Page::Navigate {
            url: request.url.clone(),
            referrer: None,
            transition_Type: None,
            frame_id: None,
            referrer_policy: None,
        })
        .map_err(|err| browser_error("navigation failed", &err))?;
    if let Some(error) = navigated.error_text {
        return Err(navigation_error(&error));
    }
    let wait = request
        .js
        .wait_ms
        .map_or(DEFAULT_WAIT, Duration::from_millis);
    // A same-document navigation has no loader and no load event to wait for.
    if let Some(loader) = navigated.loader_id {
        let seen = |name: &str| {
            events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|(l, n)| *l == loader && n == name)
        };
        wait_until(instance, request.deadline, "the page to load", || {
            Ok(seen("load"))
        })?;
        if request.js.network_idle {
            let until = request.deadline.min(Instant::now() + wait);
            // Best effort: a page that never goes quiet is rendered as it is.
            let _ = wait_until(instance, until, "network idle", || Ok(seen("networkIdle")));
            if instance.is_broken() {
                return Err(crashed());
            }
        }
    }
    if let Some(selector) = &request.js.wait_for {
        let until = request.deadline.min(Instant::now() + wait);
        let probe = format!("!!document.querySelector({})", json_string(selector));
        wait_until(instance, until, &format!("selector `{selector}`"), || {
            Ok(evaluate(tab, &probe, false)? == Value::Bool(true))
        })?;
    }
    let script_result = match &request.js.script {
        Some(script) => Some(evaluate(tab, script, true)?),
        None => None,
    };
    let snapshot = evaluate(
        tab,
        "({html: document.documentElement ? document.documentElement.outerHTML : '', \
          url: location.href, type: document.contentType || '', \
          status: ((performance.getEntriesByType('navigation')[0] || {}).responseStatus) || 0})",
        false,
    )?;
    let text = |key: &str| {
        snapshot
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let status = snapshot
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| *s > 0)
        .unwrap_or(200);
    let screenshot_png_base64 = if request.js.screenshot {
        let png = tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .map_err(|err| browser_error("screenshot failed", &err))?;
        Some(base64::engine::general_purpose::STANDARD.encode(png))
    } else {
        None
    };
    let cookies = if request.keep_cookies {
        tab.get_cookies()
            .map(|cookies| {
                cookies
                    .into_iter()
                    .map(|c| (c.name, c.value, c.domain, c.path))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Rendered {
        url: text("url"),
        status,
        content_type: text("type"),
        html: text("html"),
        script_result,
        screenshot_png_base64,
        cookies,
    })
}

/// Sets the tab up with `settings` (a reused tab keeps the previous task's otherwise).
fn prepare(tab: &Tab, settings: &TabSettings) -> Result<(), TaskError> {
    let fail = |what: &str, err: &dyn std::fmt::Display| browser_error(what, err);
    tab.set_user_agent(&settings.user_agent, None, None)
        .map_err(|err| fail("cannot set the user agent", &err))?;
    let headers: HashMap<&str, &str> = settings
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tab.set_extra_http_headers(headers)
        .map_err(|err| fail("cannot set headers", &err))?;
    let (width, height) = settings.viewport;
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width,
        height,
        device_scale_factor: 1.0,
        mobile: false,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .map_err(|err| fail("cannot set the viewport", &err))?;
    tab.call_method(Security::SetIgnoreCertificateErrors {
        ignore: !settings.verify_tls,
    })
    .map_err(|err| fail("cannot set certificate checks", &err))?;
    if settings.block_images {
        tab.enable_request_interception(Arc::new(
            |_transport, _session, event: Fetch::events::RequestPausedEvent| {
                if event.params.resource_Type == Network::ResourceType::Image {
                    RequestPausedDecision::Fail(Fetch::FailRequest {
                        request_id: event.params.request_id,
                        error_reason: Network::ErrorReason::BlockedByClient,
                    })
                } else {
                    RequestPausedDecision::Continue(None)
                }
            },
        ))
        .map_err(|err| fail("cannot intercept requests", &err))?;
        let images = Fetch::RequestPattern {
            url_pattern: None,
            resource_Type: Some(Network::ResourceType::Image),
            request_stage: Some(Fetch::RequestStage::Request),
        };
        tab.enable_fetch(Some(&[images]), None)
            .map_err(|err| fail("cannot block images", &err))?;
    } else {
        tab.disable_fetch()
            .map_err(|err| fail("cannot unblock images", &err))?;
    }
    Ok(())
}

/// Gives the browser the task's cookies for the page URL (one call, only when there are
/// some). Browser cookies live as long as the browser, like a user's session.
fn set_cookies(tab: &Tab, request: &RenderRequest) -> Result<(), TaskError> {
    let fail = |what: &str, err: &dyn std::fmt::Display| browser_error(what, err);
    if !request.cookies.is_empty() {
        let cookies = request
            .cookies
            .iter()
            .map(|(name, value)| Network::CookieParam {
                name: name.clone(),
                value: value.clone(),
                url: Some(request.url.clone()),
                domain: None,
                path: None,
                secure: None,
                http_only: None,
                same_site: None,
                expires: None,
                priority: None,
                same_party: None,
                source_scheme: None,
                source_port: None,
                partition_key: None,
            })
            .collect();
        tab.set_cookies(cookies)
            .map_err(|err| fail("cannot set cookies", &err))?;
    }
    Ok(())
}

/// Evaluates `expression` in the page and returns its value (awaited if `await_promise`).
/// A thrown exception fails the task, not retryable: it is the script's doing.
fn evaluate(tab: &Tab, expression: &str, await_promise: bool) -> Result<Value, TaskError> {
    let answer = tab
        .call_method(Runtime::Evaluate {
            expression: expression.to_owned(),
            object_group: None,
            include_command_line_api: None,
            silent: Some(true),
            context_id: None,
            return_by_value: Some(true),
            generate_preview: None,
            user_gesture: None,
            await_promise: Some(await_promise),
            throw_on_side_effect: None,
            timeout: None,
            disable_breaks: None,
            repl_mode: None,
            allow_unsafe_eval_blocked_by_csp: None,
            unique_context_id: None,
            serialization_options: None,
        })
        .map_err(|err| browser_error("evaluating in the page failed", &err))?;
    if let Some(exception) = answer.exception_details {
        let detail = exception
            .exception
            .and_then(|e| e.description)
            .unwrap_or(exception.text);
        return Err(task_error(
            ErrorKind::Other,
            false,
            format!("script failed: {detail}"),
        ));
    }
    Ok(answer.result.value.unwrap_or(Value::Null))
}

/// Polls `done` every [`POLL`] until it says yes, the browser dies, or `until` passes.
fn wait_until(
    instance: &Instance,
    until: Instant,
    what: &str,
    mut done: impl FnMut() -> Result<bool, TaskError>,
) -> Result<(), TaskError> {
    let started = Instant::now();
    loop {
        if instance.is_broken() {
            return Err(crashed());
        }
        if done()? {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(task_error(
                ErrorKind::Timeout,
                true,
                format!(
                    "timed out after {} ms waiting for {what}",
                    started.elapsed().as_millis()
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

fn crashed() -> TaskError {
    task_error(
        ErrorKind::Browser,
        true,
        "the browser exited during the render",
    )
}

/// A failed DevTools call: the browser's fault until a health check says otherwise.
fn browser_error(what: &str, err: &dyn std::fmt::Display) -> TaskError {
    task_error(ErrorKind::Browser, true, format!("{what}: {err:#}"))
}

/// The task error of a failed navigation (`net::ERR_*` names from Chromium).
fn navigation_error(error: &str) -> TaskError {
    let kind = if error.contains("NAME_NOT_RESOLVED") || error.contains("NAME_RESOLUTION") {
        ErrorKind::Dns
    } else if error.contains("TIMED_OUT") {
        ErrorKind::Timeout
    } else if error.contains("CERT") || error.contains("SSL") {
        ErrorKind::Tls
    } else if error.contains("CONNECTION")
        || error.contains("ADDRESS")
        || error.contains("EMPTY_RESPONSE")
    {
        ErrorKind::Connect
    } else if error.contains("TOO_MANY_REDIRECTS") {
        ErrorKind::Redirect
    } else {
        ErrorKind::Other
    };
    let retryable = matches!(
        kind,
        ErrorKind::Dns | ErrorKind::Timeout | ErrorKind::Connect
    );
    task_error(kind, retryable, format!("navigation failed: {error}"))
}

/// `s` as a JavaScript string literal.
fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_errors_map_to_kinds() {
        let cases = [
            ("net::ERR_NAME_NOT_RESOLVED", ErrorKind::Dns, true),
            ("net::ERR_CONNECTION_REFUSED", ErrorKind::Connect, true),
            ("net::ERR_TIMED_OUT", ErrorKind::Timeout, true),
            ("net::ERR_CERT_AUTHORITY_INVALID", ErrorKind::Tls, false),
            ("net::ERR_TOO_MANY_REDIRECTS", ErrorKind::Redirect, false),
            ("net::ERR_ABORTED", ErrorKind::Other, false),
        ];
        for (text, kind, retryable) in cases {
            let err = navigation_error(text);
            assert_eq!((err.kind, err.retryable), (kind, retryable), "{text}");
            assert!(err.message.contains(text));
        }
    }

    #[test]
    fn selectors_are_quoted_as_js_strings() {
        assert_eq!(json_string("a[href=\"x\"]"), "\"a[href=\\\"x\\\"]\"");
    }
}
