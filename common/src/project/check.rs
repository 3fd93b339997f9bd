//! The checks of one handler (and of `[on_finished]`) that span several values: callbacks
//! name handlers, each field's source fits where it is used (`each`, `each_xpath`,
//! `each_json`, `each_jsonld`, page level, `save`), the items `key` names a field, and the script compiles,
//! its syntax errors mapped to their line and column in the project file.

use std::ops::Range;

use indexmap::IndexMap;

use super::ProjectError;
use super::field::{Field, Source};
use super::finished::{OnFinished, allowed_on_finished};
use super::follow::{LinkSource, ReadFollow, TemplatePart};
use super::handler::{Each, Handler, ItemsRule, Script, ScriptOrigin};
use super::parse::{RawHandler, RawItems, RawOnFinished, ScriptReader};
use super::script::{check_script, offset_in_file};

/// Checks that a follow's callback names a handler.
fn check_callback(text: &str, names: &[&str], follow: &ReadFollow) -> Result<(), ProjectError> {
    let callback = &follow.rule.callback;
    if names.contains(&callback.as_str()) {
        return Ok(());
    }
    Err(ProjectError::spanned(
        text,
        follow.callback_span.clone(),
        format!(
            "callback \"{callback}\" names no handler; expected one of {}",
            quoted_list(names)
        ),
    ))
}

/// One handler: follows, fields in their context, items, script.
pub(super) fn build_handler(
    text: &str,
    names: &[&str],
    raw: &RawHandler,
    scripts: Option<ScriptReader<'_>>,
) -> Result<Handler, ProjectError> {
    let err = |span: Range<usize>, message: String| ProjectError::spanned(text, span, message);
    let mut follow = Vec::with_capacity(raw.follow.len());
    for rule in &raw.follow {
        // A value without a source outside `each` is refused when the rule is read.
        check_callback(text, names, rule)?;
        follow.push(rule.rule.clone());
    }

    let items = match &raw.items {
        Some(items) => Some(build_items(text, raw, items.get_ref(), items.span())?),
        None => None,
    };

    let mut item = IndexMap::with_capacity(raw.item.len());
    for (name, field) in &raw.item {
        if let Some(source) = field.get_ref().source() {
            let allowed = match &items {
                Some(rule) => rule.each.allows(source),
                None if *source == Source::Element => Err(
                    "expected a source: `css`, `xpath`, `json`, `value`, `jsonld`, `itemprop` or `meta` (a field without one reads the element of an `each` block)"
                        .to_string(),
                ),
                None => Ok(()),
            };
            allowed.map_err(|message| err(field.span(), message))?;
            if let (Some(ItemsRule { each, .. }), Field::Extract(rule)) = (&items, field.get_ref())
                && !matches!(each, Each::Css(_))
                && rule.html.is_some()
            {
                return Err(err(
                    field.span(),
                    "`html` reads HTML elements: use it inside `each` (CSS) or with `css`"
                        .to_string(),
                ));
            }
        }
        item.insert(name.0.clone(), field.get_ref().clone());
    }

    let script = build_script(text, raw, scripts)?;
    Ok(Handler {
        follow,
        item,
        items,
        script,
    })
}

/// `[handlers.<name>.items]`: exactly one `each`, and a `key` that names a field.
fn build_items(
    text: &str,
    handler: &RawHandler,
    raw: &RawItems,
    span: Range<usize>,
) -> Result<ItemsRule, ProjectError> {
    let each = match (&raw.each, &raw.each_xpath, &raw.each_json, &raw.each_jsonld) {
        (Some(css), None, None, None) => Each::Css(css.0.clone()),
        (None, Some(xpath), None, None) => Each::XPath(xpath.0.clone()),
        (None, None, Some(json), None) => Each::Json(json.0.clone()),
        (None, None, None, Some(jsonld)) => Each::JsonLd(jsonld.0.clone()),
        _ => {
            return Err(ProjectError::spanned(
                text,
                span,
                "expected exactly one of `each` (CSS), `each_xpath`, `each_json` and `each_jsonld`",
            ));
        }
    };
    if let Some(key) = &raw.key
        && !handler.item.keys().any(|k| k.0 == *key.get_ref())
    {
        let fields: Vec<&str> = handler.item.keys().map(|k| k.0.as_str()).collect();
        return Err(ProjectError::spanned(
            text,
            key.span(),
            format!(
                "key \"{}\" names no item field; expected one of {}",
                key.get_ref(),
                quoted_list(&fields)
            ),
        ));
    }
    Ok(ItemsRule {
        each,
        key: raw.key.as_ref().map(|k| k.get_ref().clone()),
    })
}

/// The handler's script, compiled once to report syntax errors at their place in the file.
fn build_script(
    text: &str,
    raw: &RawHandler,
    scripts: Option<ScriptReader<'_>>,
) -> Result<Option<Script>, ProjectError> {
    let timeout = raw.script_timeout.map(|t| t.0);
    match (&raw.script, &raw.script_file) {
        (Some(_), Some(file)) => Err(ProjectError::spanned(
            text,
            file.span(),
            "expected `script` or `script_file`, not both",
        )),
        (Some(source), None) => {
            let start = source.span().start;
            if let Err(e) = check_script(source.get_ref()) {
                let offset = offset_in_file(text, start, e.line, e.column);
                return Err(ProjectError::at(
                    text,
                    offset,
                    format!("script syntax error: {}", e.message),
                ));
            }
            let first_line = ProjectError::at(text, offset_in_file(text, start, 1, 1), "").line;
            Ok(Some(Script {
                source: source.get_ref().clone(),
                origin: ScriptOrigin::Inline { line: first_line },
                timeout,
            }))
        }
        (None, Some(file)) => {
            let path = file.get_ref();
            let Some(read) = scripts else {
                return Err(ProjectError::spanned(
                    text,
                    file.span(),
                    format!(
                        "script_file \"{path}\" is read next to the project file: load the project from its file, or write the script inline (script = '''...''')"
                    ),
                ));
            };
            let source = read(path, file.span()).map_err(|e| {
                ProjectError::spanned(text, file.span(), format!("script_file \"{path}\": {e}"))
            })?;
            if let Err(e) = check_script(&source) {
                return Err(ProjectError::spanned(
                    text,
                    file.span(),
                    format!(
                        "script syntax error in {path}, line {}, column {}: {}",
                        e.line, e.column, e.message
                    ),
                ));
            }
            Ok(Some(Script {
                source,
                origin: ScriptOrigin::File(path.clone()),
                timeout,
            }))
        }
        (None, None) => Ok(None),
    }
}

/// `[on_finished]`: only values known without a page.
pub(super) fn build_on_finished(
    text: &str,
    names: &[&str],
    raw: &RawOnFinished,
) -> Result<OnFinished, ProjectError> {
    let mut item = IndexMap::new();
    for (name, field) in &raw.item {
        let ok = match field.get_ref() {
            Field::Const(_) => true,
            Field::Page(v) => allowed_on_finished(v),
            Field::Extract(_) => false,
        };
        if !ok {
            return Err(ProjectError::spanned(
                text,
                field.span(),
                "on_finished has no page: expected a constant, \"$project\" or \"$now\"",
            ));
        }
        item.insert(name.0.clone(), field.get_ref().clone());
    }
    let mut follow = Vec::new();
    for rule in &raw.follow {
        check_callback(text, names, rule)?;
        let ok = match &rule.rule.links {
            LinkSource::Url(t) => t.parts.iter().all(|p| match p {
                TemplatePart::Literal(_) => true,
                TemplatePart::Page(v) => allowed_on_finished(v),
                TemplatePart::Json(_) => false,
            }),
            _ => false,
        };
        if !ok || !rule.rule.save.is_empty() || rule.rule.each.is_some() || rule.rule.form.is_some()
        {
            return Err(ProjectError::spanned(
                text,
                rule.callback_span.clone(),
                "on_finished has no page: its follows are `url` templates whose placeholders are {$project} or {$now}, without `save`, `each` or form values read from a page",
            ));
        }
        follow.push(rule.rule.clone());
    }
    Ok(OnFinished { item, follow })
}

/// `"a", "b", "c"`, or `(none are defined)` for an empty list.
pub(super) fn quoted_list(names: &[&str]) -> String {
    if names.is_empty() {
        return "(none are defined)".to_string();
    }
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
