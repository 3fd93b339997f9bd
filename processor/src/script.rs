//! Script hooks: a handler's Rhai script, run after its declarative rules.
//!
//! The engine is common's [`sandboxed_engine`] (no `import`, no `eval`, no module resolver;
//! operation, size and depth limits) plus the page API of [`api`] and a progress hook that
//! stops a call past its wall-clock deadline. A script sees:
//!
//! - `page`: `#{ url, status, headers, content_type, text, taskid, depth, save, project,
//!   callback, js, screenshot }` (a constant; `js` is the value of the browser script and
//!   `screenshot` the base64 PNG of the rendered page, `()` when there is none);
//! - `items`: the declarative items' data, an array of maps it may change, reorder or empty;
//! - functions: `css(sel)`, `css(sel, attr)`, `css_first(..)`, `css_html(sel)`,
//!   `json(path)`, `json_first(path)`, `resolve(href)`, `regex_captures(text, pattern)`,
//!   `fingerprint(text)`, `join(array, separator)`, `parse_json(text)`, `emit(map)`,
//!   `emit(map, key)`,
//!   `follow(url, callback)`, `follow(url, callback, options)`, `log(value)` (and `print`).
//!
//! A runaway script (an endless loop, a huge string, endless recursion) stops with a clear
//! reason naming the limit it hit and fails its task; it never blocks the processor much
//! longer than its timeout. The clock is read by the progress hook every [`CLOCK_EVERY_OPS`]
//! operations, and by the page functions themselves (see [`api`]), whose single call can
//! cost far more than an operation.

pub(crate) mod api;
#[cfg(test)]
mod reference_tests;

use std::time::{Duration, Instant};

use rhai::{AST, Dynamic, EvalAltResult, Scope};
use serde_json::{Map, Value, json};
use spindle_common::project::{ScriptLimits, sandboxed_engine};
use spindle_common::{Page, Task};

use api::{RunState, StateGuard};

/// How often (in operations) the progress hook looks at the clock.
const CLOCK_EVERY_OPS: u64 = 256;

/// The engine of one project's scripts, with the page API registered.
pub(crate) struct ScriptEngine {
    engine: rhai::Engine,
    /// The limits the engine was built with, for error messages.
    limits: ScriptLimits,
}

/// A handler's script, compiled.
pub(crate) struct CompiledScript {
    pub(crate) ast: AST,
    /// Wall-clock limit of one call.
    pub(crate) timeout: Duration,
    /// Line of the project file where an inline script starts.
    pub(crate) first_line: Option<usize>,
}

/// What the script gets.
pub(crate) struct ScriptInput<'a> {
    pub(crate) task: &'a Task,
    pub(crate) page: &'a Page,
    pub(crate) project: &'a str,
    pub(crate) base: url::Url,
    pub(crate) html: Option<scraper::Html>,
    pub(crate) handlers: Vec<String>,
    pub(crate) items: Vec<Map<String, Value>>,
}

/// What the script produced.
pub(crate) struct ScriptOutput {
    /// The `items` variable at the end of the call.
    pub(crate) items: Vec<Map<String, Value>>,
    /// `emit`ted items, with their key if given.
    pub(crate) emitted: Vec<(Option<String>, Map<String, Value>)>,
    /// `follow` calls.
    pub(crate) follows: Vec<api::ScriptFollow>,
    /// `log` and `print` lines.
    pub(crate) logs: Vec<String>,
}

impl ScriptEngine {
    /// An engine with `limits`.
    pub(crate) fn new(limits: &ScriptLimits) -> Self {
        let mut engine = sandboxed_engine(limits);
        api::register(&mut engine);
        engine
            .on_print(|text| api::push_log(text.to_string()))
            .on_debug(|text, _, pos| api::push_log(format!("debug {pos}: {text}")))
            .on_progress(|ops| {
                // Looking at the clock costs more than an operation: only now and then.
                (ops % CLOCK_EVERY_OPS == 0 && api::past_deadline()).then_some(Dynamic::UNIT)
            });
        Self {
            engine,
            limits: *limits,
        }
    }

    /// Compiles a script.
    pub(crate) fn compile(&self, source: &str) -> Result<AST, String> {
        self.engine.compile(source).map_err(|e| e.to_string())
    }

    /// Runs `script` on a page; the error is the reason the task fails.
    pub(crate) fn run(
        &self,
        script: &CompiledScript,
        input: ScriptInput<'_>,
    ) -> Result<ScriptOutput, String> {
        let page = input.page;
        let headers: Map<String, Value> = page
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let page_map = json!({
            "url": input.task.url,
            "status": page.status,
            "headers": headers,
            "content_type": page.content_type,
            "text": page.text,
            "taskid": input.task.taskid,
            "depth": input.task.depth,
            "save": input.task.save.clone().unwrap_or_default(),
            "project": input.project,
            "callback": input.task.callback,
            "js": page.script_result,
            "screenshot": page.screenshot_png_base64,
        });
        let mut scope = Scope::new();
        scope.push_constant(
            "page",
            rhai::serde::to_dynamic(&page_map).map_err(|e| e.to_string())?,
        );
        let items: rhai::Array = input
            .items
            .iter()
            .map(|item| rhai::serde::to_dynamic(item).unwrap_or(Dynamic::UNIT))
            .collect();
        scope.push("items", items);

        let state = RunState::new(
            page.text.clone(),
            input.html,
            input.base,
            input.handlers,
            Instant::now() + script.timeout,
        );
        let guard = StateGuard::install(state);
        let result = self.engine.run_ast_with_scope(&mut scope, &script.ast);
        let state = guard.finish();
        let timed_out = state.as_ref().is_some_and(|s| s.timed_out);
        match result {
            Err(err) => return Err(self.describe(script, &err, timed_out)),
            // A page function refused to run past the deadline and the script caught its
            // error and ended: what it produced may lack what that call would have found.
            Ok(_) if timed_out => return Err(time_limit_reason(script)),
            Ok(_) => {}
        }
        let state = state.ok_or_else(|| "the script's page state was lost".to_string())?;
        let items = match scope.get_value::<rhai::Array>("items") {
            Some(array) => {
                let mut out = Vec::with_capacity(array.len());
                for (i, value) in array.iter().enumerate() {
                    match rhai::serde::from_dynamic::<Value>(value) {
                        Ok(Value::Object(map)) => out.push(map),
                        _ => return Err(format!("script: items[{i}] is not an object map")),
                    }
                }
                out
            }
            None => return Err("script: `items` is no longer an array".to_string()),
        };
        Ok(ScriptOutput {
            items,
            emitted: state.emitted,
            follows: state.follows,
            logs: state.logs,
        })
    }

    /// Why a call failed, with the line in the project file for an inline script.
    fn describe(&self, script: &CompiledScript, err: &EvalAltResult, timed_out: bool) -> String {
        if timed_out {
            return time_limit_reason(script);
        }
        let limits = &self.limits;
        match err.unwrap_inner() {
            EvalAltResult::ErrorTooManyOperations(_) => {
                return format!(
                    "script stopped: it ran more than {} operations (an endless loop?)",
                    limits.max_operations
                );
            }
            // Rhai names the value: "Length of string", "Size of array", "Size of object map".
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                return format!(
                    "script stopped: a value grew past its size limit ({what} too large; \
                     limits: strings {} bytes, arrays {} items, maps {} entries)",
                    limits.max_string_size, limits.max_array_size, limits.max_map_size
                );
            }
            EvalAltResult::ErrorStackOverflow(_) => {
                return format!(
                    "script stopped: function calls nested deeper than {} levels \
                     (endless recursion?)",
                    limits.max_call_levels
                );
            }
            _ => {}
        }
        let position = err.position();
        match (script.first_line, position.line()) {
            (Some(first), Some(line)) => format!(
                "script error at line {} of the project file: {err}",
                first + line - 1
            ),
            _ => format!("script error: {err}"),
        }
    }
}

/// Why a call that ran past its deadline failed.
fn time_limit_reason(script: &CompiledScript) -> String {
    format!(
        "script stopped: it ran longer than its time limit of {:?} (an endless loop?)",
        script.timeout
    )
}
