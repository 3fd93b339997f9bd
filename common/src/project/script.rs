//! Script hooks: the sandboxed Rhai engine and the syntax check of `script` / `script_file`.
//!
//! Rhai is an embedded scripting language written in pure Rust: it has no file, network or
//! process access of its own, only what the host registers. [`sandboxed_engine`] is the one
//! place that configures the sandbox, used both by `spindle check` (through
//! [`super::Project::parse`]) and by the processor, so a script that compiles here is
//! compiled by the same rules there:
//!
//! - `import` (the only way Rhai reaches the file system, through a module resolver) and
//!   `eval` are disabled symbols, and the module resolver is a dummy that resolves nothing;
//! - operations, call depth, expression depth, string, array and map sizes are limited
//!   ([`ScriptLimits`]); the wall-clock limit is the processor's (an `on_progress` check);
//! - the `unchecked` feature, which would drop every limit, is never enabled.

use std::time::Duration;

use rhai::Engine;
use rhai::module_resolvers::DummyModuleResolver;

/// Resource limits of one script call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Rhai operations per call.
    pub max_operations: u64,
    /// Wall-clock time per call.
    pub timeout: Duration,
    /// Longest string, in bytes (above the largest page body, so `page.text` fits).
    pub max_string_size: usize,
    /// Largest array.
    pub max_array_size: usize,
    /// Largest object map.
    pub max_map_size: usize,
    /// Deepest function call nesting.
    pub max_call_levels: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 50_000_000,
            timeout: Duration::from_secs(5),
            max_string_size: 64 * 1024 * 1024,
            max_array_size: 1_000_000,
            max_map_size: 100_000,
            max_call_levels: 64,
        }
    }
}

/// A Rhai engine with the sandbox of this module and the given limits (no host functions
/// registered yet: the processor adds the page API).
pub fn sandboxed_engine(limits: &ScriptLimits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_module_resolver(DummyModuleResolver::new())
        .disable_symbol("import")
        .disable_symbol("eval")
        .set_max_operations(limits.max_operations)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(128, 64)
        // Output goes nowhere unless the processor routes it into the handler's logs.
        .on_print(|_| {})
        .on_debug(|_, _, _| {});
    engine
}

/// A syntax error of a script: 1-based line and column within the script text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSyntaxError {
    /// Line in the script.
    pub line: usize,
    /// Column in the script.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Compiles `source` with the sandboxed engine; the error gives the script line and column.
pub fn check_script(source: &str) -> Result<(), ScriptSyntaxError> {
    let engine = sandboxed_engine(&ScriptLimits::default());
    engine.compile(source).map(drop).map_err(|err| {
        let position = err.position();
        ScriptSyntaxError {
            line: position.line().unwrap_or(1),
            column: position.position().unwrap_or(1),
            message: err.err_type().to_string(),
        }
    })
}

/// Byte offset in the project file of script line `line`, column `column`, for a script
/// written inline whose string value starts at byte `value_start` of `text`.
///
/// The script's text starts after the opening quote (or the three quotes of a multi-line
/// string, and the line break TOML trims right after them). For literal strings (`'''`)
/// the mapping is exact; escapes in basic strings (`"""`) can shift the column.
pub(super) fn offset_in_file(text: &str, value_start: usize, line: usize, column: usize) -> usize {
    let value = text.get(value_start..).unwrap_or_default();
    let mut start = value_start;
    if value.starts_with("'''") || value.starts_with("\"\"\"") {
        start += 3;
        let after = &text[start..];
        if after.starts_with("\r\n") {
            start += 2;
        } else if after.starts_with('\n') {
            start += 1;
        }
    } else if value.starts_with('\'') || value.starts_with('"') {
        start += 1;
    }
    let mut offset = start;
    for _ in 1..line {
        match text[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[offset..];
    let column_bytes: usize = line_text
        .chars()
        .take(column.saturating_sub(1))
        .take_while(|c| *c != '\n')
        .map(char::len_utf8)
        .sum();
    offset + column_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_have_script_positions() {
        assert!(check_script("let x = 1;\nx + 1").is_ok());
        let err = check_script("let x = 1;\nlet = 2;").expect_err("bad let");
        assert_eq!(err.line, 2);
        assert!(err.column >= 4, "{err:?}");
    }

    #[test]
    fn import_and_eval_are_refused_at_check_time() {
        let err = check_script("import \"/etc/passwd\" as p;").expect_err("import");
        assert_eq!(err.line, 1);
        assert!(err.message.contains("import"), "{err:?}");
        assert!(check_script("eval(\"1\")").is_err());
    }

    #[test]
    fn offsets_map_script_positions_to_the_file() {
        let text = "a = 1\nscript = '''\nlet x = 1;\n  bad here\n'''\n";
        let start = text.find("'''").expect("value");
        let offset = offset_in_file(text, start, 2, 3);
        assert_eq!(&text[offset..offset + 3], "bad");
        let text = "script = \"let = 1\"";
        let offset = offset_in_file(text, 9, 1, 5);
        assert_eq!(&text[offset..offset + 1], "=");
    }
}
