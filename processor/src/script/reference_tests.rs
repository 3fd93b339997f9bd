//! The script function reference of docs/rules.md, run: every example there goes through the
//! real handler path (project parser, sandboxed engine, page API) and must give the result the
//! page states, so the reference cannot drift from what scripts actually get.
//!
//! In the section `## Script functions` of docs/rules.md, a fenced `html` or `json` block is
//! the body of the page the following examples run on (at [`PAGE_URL`]); each line of a
//! `rhai` block is one example, `code // → result`: `result` is a Rhai expression whose value
//! (type and debug form) the code's must equal, or `error: text` for a call that fails the
//! task with a reason containing `text`.

use std::collections::BTreeSet;

use crate::testutil::{json_page, page, rules, task};

/// The reference, as published.
const RULES_MD: &str = include_str!("../../../docs/rules.md");

/// The page API's source, for the names it registers.
const API_RS: &str = include_str!("api.rs");

/// The heading of the reference section.
const SECTION: &str = "## Script functions";

/// Where the examples' page is (the reference says so too).
const PAGE_URL: &str = "https://shop.example/books/";

/// Rhai built-ins the reference must show, the ones most used in scraping.
const BUILT_INS: &[&str] = &[
    "parse_int",
    "parse_float",
    "type_of",
    "to_string",
    "replace",
    "split",
    "trim",
    "contains",
    "starts_with",
    "sub_string",
    "to_upper",
    "to_lower",
    "len",
    "index_of",
    "push",
    "map",
    "filter",
    "reduce",
    "join",
    "keys",
    "values",
    "print",
];

/// One example of the reference.
struct Example {
    /// Line in docs/rules.md.
    line: usize,
    code: String,
    expected: Expected,
    /// The page it runs on.
    body: Body,
}

enum Expected {
    /// A Rhai expression of the same type and value.
    Value(String),
    /// Part of the task's failure reason.
    Error(String),
}

#[derive(Clone)]
enum Body {
    Html(String),
    Json(String),
}

/// The examples of the reference section, in order.
fn examples() -> Vec<Example> {
    let start = RULES_MD
        .find(&format!("\n{SECTION}\n"))
        .expect("docs/rules.md has the script function reference");
    let section = &RULES_MD[start + 1..];
    let end = section[SECTION.len()..]
        .find("\n## ")
        .map_or(section.len(), |i| i + SECTION.len());
    let first_line = RULES_MD[..start + 1].lines().count() + 1;

    let mut out = Vec::new();
    let mut body: Option<Body> = None;
    let mut block: Option<(String, String)> = None;
    for (i, line) in section[..end].lines().enumerate() {
        let line_no = first_line + i;
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            match block.take() {
                None => block = Some((fence.trim().to_string(), String::new())),
                Some((kind, text)) => match kind.as_str() {
                    "html" => body = Some(Body::Html(text)),
                    "json" => body = Some(Body::Json(text)),
                    _ => {}
                },
            }
            continue;
        }
        let Some((kind, text)) = block.as_mut() else {
            continue;
        };
        if kind != "rhai" {
            text.push_str(line);
            text.push('\n');
            continue;
        }
        let code = line.trim();
        if code.is_empty() || code.starts_with("//") {
            continue;
        }
        let (code, result) = code
            .split_once("// →")
            .unwrap_or_else(|| panic!("docs/rules.md:{line_no}: an example without `// →`"));
        let result = result.trim();
        let expected = match result.strip_prefix("error:") {
            Some(reason) => Expected::Error(reason.trim().to_string()),
            None => Expected::Value(result.to_string()),
        };
        out.push(Example {
            line: line_no,
            code: code.trim().to_string(),
            expected,
            body: body
                .clone()
                .unwrap_or_else(|| panic!("docs/rules.md:{line_no}: an example before any page")),
        });
    }
    out
}

/// A project whose handler `start` runs `script` (and a second handler to follow to).
fn project(script: &str) -> String {
    format!("name = \"shop\"\n[handlers.start]\nscript = '''\n{script}\n'''\n[handlers.detail]\n")
}

/// Runs `script` on `body`: the script's log lines, or the task's failure reason.
fn run(script: &str, body: &Body) -> Result<Vec<String>, String> {
    let rules = rules(&project(script));
    let page = match body {
        Body::Html(html) => page(PAGE_URL, html),
        Body::Json(json) => json_page(PAGE_URL, json),
    };
    crate::run_handler(&rules, &task("start", PAGE_URL), &page)
        .map(|out| out.logs)
        .map_err(|e| e.to_string())
}

/// What an example is checked on: `type debug-form`.
fn logged(value: &str) -> String {
    format!("log(type_of({value}) + \" \" + to_debug({value}));")
}

/// Every example of the reference gives the result it states.
#[test]
fn every_example_of_the_script_reference_gives_its_stated_result() {
    let examples = examples();
    assert!(examples.len() > 40, "only {} examples", examples.len());
    let mut wrong = Vec::new();
    for ex in &examples {
        let code = &ex.code;
        match &ex.expected {
            Expected::Value(want) => {
                let script = format!(
                    "let got = {{ {code} }};\nlet want = {{ {want} }};\n{}\n{}",
                    logged("got"),
                    logged("want")
                );
                match run(&script, &ex.body) {
                    Ok(logs) => {
                        // The last two lines: an example may `print` or `log` itself.
                        let (got, want) = match logs.as_slice() {
                            [.., got, want] => (got.as_str(), want.as_str()),
                            _ => ("", "(nothing logged)"),
                        };
                        if got != want {
                            wrong.push(format!(
                                "docs/rules.md:{}: `{code}`\n  states {want}\n  gives  {got}",
                                ex.line
                            ));
                        }
                    }
                    Err(err) => {
                        wrong.push(format!("docs/rules.md:{}: `{code}` fails: {err}", ex.line))
                    }
                }
            }
            Expected::Error(reason) => match run(&format!("let got = {{ {code} }};"), &ex.body) {
                Err(err) if err.contains(reason.as_str()) => {}
                Err(err) => wrong.push(format!(
                    "docs/rules.md:{}: `{code}`\n  states error: {reason}\n  fails with {err}",
                    ex.line
                )),
                Ok(logs) => wrong.push(format!(
                    "docs/rules.md:{}: `{code}` does not fail (logs {logs:?})",
                    ex.line
                )),
            },
        }
    }
    assert!(wrong.is_empty(), "\n{}\n", wrong.join("\n"));
}

/// The names of the functions [`super::api::register`] registers.
fn registered_names() -> BTreeSet<String> {
    API_RS
        .split(".register_fn(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"'))
        .filter_map(|rest| rest.split_once('"'))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Every function Spindle registers, and every common built-in, has an example.
#[test]
fn the_script_reference_shows_every_spindle_function_and_the_common_built_ins() {
    let registered = registered_names();
    assert!(registered.contains("css") && registered.contains("follow"));
    let examples = examples();
    let shown = |name: &str| {
        examples.iter().any(|ex| {
            let code = ex.code.as_bytes();
            ex.code.match_indices(name).any(|(at, _)| {
                let before = at.checked_sub(1).map(|i| code[i]);
                let after = code.get(at + name.len()).copied();
                let word =
                    |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
                !word(before) && after == Some(b'(')
            })
        })
    };
    let missing: Vec<&str> = registered
        .iter()
        .map(String::as_str)
        .chain(BUILT_INS.iter().copied())
        .filter(|name| !shown(name))
        .collect();
    assert!(missing.is_empty(), "no example calls {missing:?}");
}
