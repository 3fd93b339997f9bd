//! What a script can call: page access (`css`, `json`, `resolve`, `regex_captures`, ...),
//! `join`, `parse_json`, `emit`, `follow` and `log`. docs/rules.md ("Script functions") documents each,
//! with examples that `reference_tests` runs.
//!
//! The engine is compiled once per project and shared across threads, so its functions
//! capture nothing. They reach the page being processed through [`RunState`], held in a
//! thread-local for the duration of one call: a script runs synchronously on the thread
//! that called it, and `scraper::Html` (which is not `Send`) never leaves that thread. The
//! [`StateGuard`] clears the slot when the call ends, however it ends.
//!
//! Every function here looks at the call's deadline before it starts, and the ones that
//! walk the page (`css`, `css_html`, `json`) look again every [`CLOCK_EVERY_ITEMS`] values:
//! one call on a big page can cost more than thousands of Rhai operations, so the engine's
//! progress hook alone (which reads the clock only every few hundred operations) would let a
//! loop of such calls run far past `script_timeout`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map as RhaiMap};
use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};
use spindle_common::message::FetchMode;
use url::Url;

use crate::value::normalized_text;

/// Longest regex program a script may compile (bytes of compiled size).
const SCRIPT_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How many values (elements, JSON values) a page function produces between two looks at
/// the clock.
const CLOCK_EVERY_ITEMS: usize = 256;

/// The page and the results of one script call.
pub(crate) struct RunState {
    /// The body.
    pub(crate) text: String,
    /// The parsed HTML, parsed on the first CSS call if the handler had not parsed it.
    pub(crate) html: Option<Html>,
    /// The body as JSON: `None` until asked; `Some(None)` when it is not JSON.
    pub(crate) json: Option<Option<Value>>,
    /// Base URL of relative links.
    pub(crate) base: Url,
    /// Handler names a follow may name.
    pub(crate) handlers: Vec<String>,
    /// When the call must stop.
    pub(crate) deadline: Instant,
    /// Whether the call was stopped by its deadline.
    pub(crate) timed_out: bool,
    /// `emit`ted items, with their key if given.
    pub(crate) emitted: Vec<(Option<String>, Map<String, Value>)>,
    /// `follow`ed links.
    pub(crate) follows: Vec<ScriptFollow>,
    /// `log` and `print` lines.
    pub(crate) logs: Vec<String>,
    selectors: HashMap<String, Selector>,
    regexes: HashMap<String, regex::Regex>,
}

impl RunState {
    /// The state of a call on a page.
    pub(crate) fn new(
        text: String,
        html: Option<Html>,
        base: Url,
        handlers: Vec<String>,
        deadline: Instant,
    ) -> Self {
        Self {
            text,
            html,
            json: None,
            base,
            handlers,
            deadline,
            timed_out: false,
            emitted: Vec::new(),
            follows: Vec::new(),
            logs: Vec::new(),
            selectors: HashMap::new(),
            regexes: HashMap::new(),
        }
    }

    /// Fails the call once it is past its deadline (and marks it timed out, so the task
    /// fails with the time-limit reason, whatever the script does with this error).
    fn check_deadline(&mut self) -> Result<(), String> {
        if Instant::now() >= self.deadline {
            return Err(self.time_out());
        }
        Ok(())
    }

    /// Marks the call timed out; the error a page function returns for it.
    fn time_out(&mut self) -> String {
        self.timed_out = true;
        "the script ran out of time".to_string()
    }

    fn selector(&mut self, css: &str) -> Result<Selector, String> {
        if let Some(sel) = self.selectors.get(css) {
            return Ok(sel.clone());
        }
        let sel = Selector::parse(css).map_err(|e| format!("invalid CSS selector `{css}`: {e}"))?;
        self.selectors.insert(css.to_string(), sel.clone());
        Ok(sel)
    }

    fn html(&mut self) -> &Html {
        let text = &self.text;
        self.html.get_or_insert_with(|| Html::parse_document(text))
    }

    fn json(&mut self) -> Result<&Value, String> {
        let text = &self.text;
        self.json
            .get_or_insert_with(|| serde_json::from_str(text).ok())
            .as_ref()
            .ok_or_else(|| "json(): the page is not JSON".to_string())
    }

    fn regex(&mut self, pattern: &str) -> Result<regex::Regex, String> {
        if let Some(re) = self.regexes.get(pattern) {
            return Ok(re.clone());
        }
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(SCRIPT_REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regex `{pattern}`: {e}"))?;
        self.regexes.insert(pattern.to_string(), re.clone());
        Ok(re)
    }
}

/// A `follow(url, callback, options)` call.
pub(crate) struct ScriptFollow {
    pub(crate) url: String,
    pub(crate) callback: String,
    pub(crate) options: FollowOptions,
}

/// The options map of `follow`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FollowOptions {
    pub(crate) priority: Option<i32>,
    /// Seconds, or a duration such as "1d".
    pub(crate) age: Option<Value>,
    pub(crate) itag: Option<String>,
    #[serde(default)]
    pub(crate) force: bool,
    pub(crate) save: Option<Map<String, Value>>,
    pub(crate) method: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Option<String>,
    pub(crate) form: Option<BTreeMap<String, String>>,
    pub(crate) fetch: Option<FetchMode>,
    pub(crate) user_agent: Option<String>,
    #[serde(default)]
    pub(crate) cookies: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) proxies: Vec<String>,
    /// Overrides the `same_site` of the filter the follow takes from the handler's rules.
    pub(crate) same_site: Option<bool>,
}

thread_local! {
    static RUN: RefCell<Option<RunState>> = const { RefCell::new(None) };
}

/// Holds a [`RunState`] in this thread's slot; takes it back out on drop.
pub(crate) struct StateGuard(());

impl StateGuard {
    /// Puts `state` in this thread's slot for the duration of one call.
    pub(crate) fn install(state: RunState) -> Self {
        RUN.with(|cell| *cell.borrow_mut() = Some(state));
        StateGuard(())
    }

    /// Takes the state back (the call is over).
    pub(crate) fn finish(self) -> Option<RunState> {
        RUN.with(|cell| cell.borrow_mut().take())
    }
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        // Never leave a page behind in the slot, even when the call panicked.
        let _ = RUN.try_with(|cell| cell.try_borrow_mut().map(|mut s| s.take()));
    }
}

/// Runs `f` on the current call's state, unless the call is past its deadline.
fn with_state<R>(
    f: impl FnOnce(&mut RunState) -> Result<R, String>,
) -> Result<R, Box<EvalAltResult>> {
    RUN.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "the page is busy".to_string())?;
        let state = slot
            .as_mut()
            .ok_or_else(|| "no page is being processed".to_string())?;
        state.check_deadline()?;
        f(state)
    })
    .map_err(Into::into)
}

/// Whether the current call is past its deadline (marks it timed out). Called by the
/// engine's progress hook, outside any of the functions here.
pub(crate) fn past_deadline() -> bool {
    RUN.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => slot
            .as_mut()
            .is_some_and(|state| state.check_deadline().is_err()),
        Err(_) => false,
    })
}

/// Appends a log line to the current call (print, debug, log).
pub(crate) fn push_log(line: String) {
    let _ = with_state(|s| {
        s.logs.push(line);
        Ok(())
    });
}

fn to_dynamic(value: &Value) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

fn to_json(value: &Dynamic, what: &str) -> Result<Value, String> {
    rhai::serde::from_dynamic::<Value>(value).map_err(|e| format!("{what}: {e}"))
}

/// The call ran past its deadline while producing values.
struct TimedOut;

/// Collects `values`, looking at the clock every [`CLOCK_EVERY_ITEMS`] values.
fn collect_before(
    deadline: Instant,
    values: impl Iterator<Item = Dynamic>,
) -> Result<Array, TimedOut> {
    let mut out = Array::new();
    for (i, value) in values.enumerate() {
        if i % CLOCK_EVERY_ITEMS == CLOCK_EVERY_ITEMS - 1 && Instant::now() >= deadline {
            return Err(TimedOut);
        }
        out.push(value);
    }
    Ok(out)
}

/// Values of the elements matching `css`, one per element, made by `value`.
fn css_map(
    css: &str,
    limit: usize,
    value: impl Fn(scraper::ElementRef<'_>) -> Dynamic,
) -> Result<Array, Box<EvalAltResult>> {
    with_state(|s| {
        let selector = s.selector(css)?;
        let deadline = s.deadline;
        let found = collect_before(
            deadline,
            crate::extract::select_page(s.html(), &selector)
                .take(limit)
                .map(value),
        );
        found.map_err(|TimedOut| s.time_out())
    })
}

/// Element texts (or attribute values, `()` where missing) matching `css`.
fn css_values(css: &str, attr: Option<&str>, limit: usize) -> Result<Array, Box<EvalAltResult>> {
    css_map(css, limit, |e| match attr {
        Some(a) => e
            .attr(a)
            .map_or(Dynamic::UNIT, |v| Dynamic::from(v.to_string())),
        None => Dynamic::from(normalized_text(e)),
    })
}

fn first(values: Array) -> Dynamic {
    values.into_iter().next().unwrap_or(Dynamic::UNIT)
}

fn json_values(path: &str, limit: usize) -> Result<Array, Box<EvalAltResult>> {
    with_state(|s| {
        let path = serde_json_path::JsonPath::parse(path)
            .map_err(|e| format!("invalid JSONPath `{path}`: {e}"))?;
        let deadline = s.deadline;
        let json = s.json()?;
        let found = collect_before(
            deadline,
            path.query(json)
                .all()
                .into_iter()
                .take(limit)
                .map(to_dynamic),
        );
        found.map_err(|TimedOut| s.time_out())
    })
}

fn follow_with(
    url: &str,
    callback: &str,
    options: Option<&RhaiMap>,
) -> Result<(), Box<EvalAltResult>> {
    let options = match options {
        Some(map) => {
            let json = to_json(&Dynamic::from_map(map.clone()), "follow() options")?;
            serde_json::from_value::<FollowOptions>(json)
                .map_err(|e| format!("follow() options: {e}"))?
        }
        None => FollowOptions::default(),
    };
    with_state(|s| {
        if !s.handlers.iter().any(|h| h == callback) {
            return Err(format!(
                "follow(): callback `{callback}` names no handler; expected one of {}",
                s.handlers.join(", ")
            ));
        }
        s.follows.push(ScriptFollow {
            url: url.to_string(),
            callback: callback.to_string(),
            options,
        });
        Ok(())
    })
}

fn emit_with(data: &RhaiMap, key: Option<String>) -> Result<(), Box<EvalAltResult>> {
    let Value::Object(data) = to_json(&Dynamic::from_map(data.clone()), "emit()")? else {
        return Err("emit(): expected an object map such as #{ title: \"x\" }".into());
    };
    with_state(|s| {
        s.emitted.push((key, data));
        Ok(())
    })
}

/// The elements of `items` as text (`()` as an empty string), separated by `separator`.
fn join(items: Array, separator: &str) -> String {
    let texts: Vec<String> = items
        .iter()
        .map(|item| {
            if item.is_unit() {
                String::new()
            } else {
                item.to_string()
            }
        })
        .collect();
    texts.join(separator)
}

/// Registers the page API on `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine
        .register_fn("css", |css: &str| css_values(css, None, usize::MAX))
        .register_fn("css", |css: &str, attr: &str| {
            css_values(css, Some(attr), usize::MAX)
        })
        .register_fn("css_first", |css: &str| css_values(css, None, 1).map(first))
        .register_fn("css_first", |css: &str, attr: &str| {
            css_values(css, Some(attr), 1).map(first)
        })
        .register_fn(
            "css_html",
            |css: &str| -> Result<Array, Box<EvalAltResult>> {
                css_map(css, usize::MAX, |e| Dynamic::from(e.html()))
            },
        )
        .register_fn("json", |path: &str| json_values(path, usize::MAX))
        .register_fn("json_first", |path: &str| json_values(path, 1).map(first))
        .register_fn(
            "resolve",
            |href: &str| -> Result<Dynamic, Box<EvalAltResult>> {
                with_state(|s| {
                    Ok(s.base
                        .join(href.trim())
                        .map_or(Dynamic::UNIT, |u| Dynamic::from(u.to_string())))
                })
            },
        )
        .register_fn(
            "regex_captures",
            |text: &str, pattern: &str| -> Result<Array, Box<EvalAltResult>> {
                with_state(|s| {
                    let re = s.regex(pattern)?;
                    Ok(re.captures(text).map_or_else(Array::new, |caps| {
                        caps.iter()
                            .map(|m| {
                                m.map_or(Dynamic::UNIT, |m| Dynamic::from(m.as_str().to_string()))
                            })
                            .collect()
                    }))
                })
            },
        )
        .register_fn("fingerprint", |text: &str| {
            spindle_common::urlnorm::fingerprint(text)
        })
        // Rhai 1.x has no array `join`, the first thing a script reaches for after `css`.
        .register_fn("join", join)
        // Rhai's own `parse_json` evaluates its text as a Rhai expression (a page's
        // `{"a": follow(..)}` would run), takes objects only and refuses JSON's `\/`; this
        // one, registered over it, is a JSON parser.
        .register_fn(
            "parse_json",
            |text: &str| -> Result<Dynamic, Box<EvalAltResult>> {
                with_state(|_| {
                    serde_json::from_str::<Value>(text)
                        .map(|value| to_dynamic(&value))
                        .map_err(|e| format!("parse_json(): invalid JSON: {e}"))
                })
            },
        )
        .register_fn("emit", |data: RhaiMap| emit_with(&data, None))
        .register_fn("emit", |data: RhaiMap, key: ImmutableString| {
            emit_with(&data, Some(key.to_string()))
        })
        .register_fn("follow", |url: &str, callback: &str| {
            follow_with(url, callback, None)
        })
        .register_fn("follow", |url: &str, callback: &str, options: RhaiMap| {
            follow_with(url, callback, Some(&options))
        })
        .register_fn("log", |value: Dynamic| {
            push_log(if value.is_string() {
                value.to_string()
            } else {
                format!("{value:?}")
            });
        });
}
