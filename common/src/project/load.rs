//! Loading a project file from disk: [`super::Project::load`].
//!
//! A handler may keep its script in a file of its own (`script_file = "list.rhai"`, relative
//! to the project file's folder). Processors read projects from the store, not from disk, so
//! the loaded project's [`super::Project::source`] has each `script_file = "..."` replaced by
//! the equivalent inline `script = '''...'''`: the stored definition is self-contained and
//! parses the same anywhere.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Project, ProjectError, parse};

/// Why a project file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid project.
    #[error("{}:{}:{}: {}", path.display(), error.line, error.column, error.message)]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where and why.
        error: ProjectError,
    },
}

/// Reads, parses and validates the project file at `path`, inlining its script files.
pub(super) fn load(path: &Path) -> Result<Project, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |error| LoadError::Invalid {
        path: path.to_path_buf(),
        error,
    };
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let read: Mutex<Vec<(Range<usize>, String)>> = Mutex::new(Vec::new());
    let reader = |file: &str, span: Range<usize>| -> Result<String, String> {
        let script = std::fs::read_to_string(folder.join(file))
            .map_err(|e| format!("cannot read {}: {e}", folder.join(file).display()))?;
        read.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((span, script.clone()));
        Ok(script)
    };
    let project = parse::parse(&text, Some(&reader)).map_err(invalid)?;
    let scripts = read
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if scripts.is_empty() {
        return Ok(project);
    }
    let inlined = inline_scripts(&text, scripts);
    // The scripts were checked where they were written; this parse only re-reads them.
    parse::parse(&inlined, None).map_err(invalid)
}

/// `text` with each `script_file = "..."` (value at the given span) replaced by an inline
/// `script` holding the file's content.
fn inline_scripts(text: &str, mut scripts: Vec<(Range<usize>, String)>) -> String {
    scripts.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = text.to_string();
    for (span, script) in scripts {
        // The key is on the line of its value, before the `=`.
        let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let Some(key) = text[line_start..span.start].rfind("script_file") else {
            continue;
        };
        let key_start = line_start + key;
        let replacement = format!("script = {}", toml_multiline(&script));
        out.replace_range(key_start..span.end, &replacement);
    }
    out
}

/// `script` as a TOML multi-line string: a literal string when it can be one (exact
/// positions), else a basic string with escapes.
fn toml_multiline(script: &str) -> String {
    if !script.contains("'''") && !script.ends_with('\'') {
        return format!("'''\n{script}'''");
    }
    let mut out = String::from("\"\"\"\n");
    for c in script.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push('\n'),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push_str("\"\"\"");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::ScriptOrigin;

    #[test]
    fn script_files_are_read_next_to_the_project_and_inlined() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("hook.rhai"),
            "let n = 1;\nemit(#{ n: n, q: \"'''\" });\n",
        )
        .expect("write script");
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "name = \"p\"\n[handlers.a]\nscript_file = \"hook.rhai\"\nscript_timeout = \"1s\"\n",
        )
        .expect("write project");
        let p = Project::load(&path).expect("loads");
        let script = p.handlers["a"].script.as_ref().expect("script");
        assert_eq!(script.source, "let n = 1;\nemit(#{ n: n, q: \"'''\" });\n");
        assert!(matches!(script.origin, ScriptOrigin::Inline { .. }));
        assert!(!p.source.contains("script_file"), "{}", p.source);
        // The stored definition parses on its own, to the same script.
        let again = Project::parse(&p.source).expect("self-contained");
        assert_eq!(again.handlers["a"].script, p.handlers["a"].script);
    }

    #[test]
    fn script_file_errors_name_the_file_and_position() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("bad.rhai"), "let x = 1;\nlet = ;\n").expect("write");
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "name = \"p\"\n[handlers.a]\nscript_file = \"bad.rhai\"\n",
        )
        .expect("write");
        let err = Project::load(&path).expect_err("syntax error");
        let text = err.to_string();
        assert!(
            text.contains(":3:15: script syntax error in bad.rhai, line 2"),
            "{text}"
        );

        std::fs::write(
            &path,
            "name = \"p\"\n[handlers.a]\nscript_file = \"missing.rhai\"\n",
        )
        .expect("write");
        let err = Project::load(&path).expect_err("missing file");
        assert!(err.to_string().contains("cannot read"), "{err}");
        // Parsed from text alone, a script file cannot be read.
        let err = Project::parse("name = \"p\"\n[handlers.a]\nscript_file = \"x.rhai\"\n")
            .expect_err("no folder");
        assert!(
            err.message.contains("load the project from its file"),
            "{err}"
        );
    }
}
