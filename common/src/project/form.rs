//! Forms a follow rule submits: `form = { ... }`.
//!
//! Two shapes share the key:
//!
//! - **fields written in the file**: `form = { q = "rust", token = { css = "input[name=t]",
//!   attr = "value" }, from = "$url" }`. A value is a constant, a page value (`"$url"`,
//!   `"$save.<key>"`, ...) or a field rule (a table, as in `item.<field>`). A form whose values
//!   are all constants is the follow's `fetch.form` as before; one with page values or rules
//!   is a [`FormFields`], evaluated for each link on the page.
//! - **a form found on the page**: `form = { css = "form#login", fill = { email = "..." },
//!   submit = "button[name=go]" }` ([`PageForm`]): the form's own controls (hidden fields
//!   such as CSRF tokens and view-state included), its `action` and its `method`, as a
//!   browser submits it, with `fill` over its values. A table with the key `css` is this
//!   shape; its other keys can only be `fill` and `submit`.
//!
//! A string value that starts with `$` but names no page value (`"$ecret"`) was sent as
//! written before page values existed in forms, and still is, so old files keep working; it
//! is a [`FormValue::Literal`], and every one sent is counted (the handler's output, the
//! debugger, the crawl summary), since it is more often a typo of a page value than a
//! password. `"$$"` is a literal `$`, as in fields.

use indexmap::IndexMap;
use serde::Deserialize;

use super::field::{Field, PageValue, unescape};
use super::values::check_selector;

/// One value of a form.
// Built once per project and read in place, as `Field` is: a box would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FormValue {
    /// A constant, a page value or a field rule, evaluated on the page.
    Field(Field),
    /// Text starting with `$` that names no page value: sent as written, and counted.
    Literal(String),
}

/// The fields of a form written in the file, some of them read from the page.
pub type FormFields = IndexMap<String, FormValue>;

/// A form found on the page, submitted as a browser does.
#[derive(Debug, Clone, PartialEq)]
pub struct PageForm {
    /// The `<form>` elements to submit (relative to the `each` element inside `each`); each
    /// matching form makes one request.
    pub css: String,
    /// Values set over the form's own (a name the form lacks is added).
    pub fill: FormFields,
    /// The submit button whose name and value are sent (CSS inside the form); without it, the
    /// form's first submit button with a name, as pressing Enter in a browser does.
    pub submit: Option<String>,
}

/// What a follow rule's `form` key holds, once read.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ReadForm {
    /// Every value is a constant: the follow's fixed `fetch.form`.
    Constant(std::collections::BTreeMap<String, String>),
    /// Some values come from the page.
    Fields(FormFields),
    /// A form found on the page.
    Page(PageForm),
}

/// Reads the `form` table of a follow rule.
pub(super) fn read_form(value: toml::Value) -> Result<ReadForm, String> {
    let toml::Value::Table(table) = value else {
        return Err(format!(
            "`form`: expected a table of fields ({{ q = \"rust\" }}) or a form of the page ({{ css = \"form#login\", fill = {{ ... }} }}), found {}",
            value.type_str()
        ));
    };
    if table.contains_key("css") {
        return read_page_form(table).map(ReadForm::Page);
    }
    let fields = read_fields(table, "form")?;
    let constants: Option<std::collections::BTreeMap<String, String>> = fields
        .iter()
        .map(|(name, value)| match value {
            FormValue::Field(Field::Const(text)) => Some((name.clone(), text.clone())),
            _ => None,
        })
        .collect();
    Ok(match constants {
        Some(constants) => ReadForm::Constant(constants),
        None => ReadForm::Fields(fields),
    })
}

/// `form = { css, fill, submit }`.
fn read_page_form(table: toml::Table) -> Result<PageForm, String> {
    let mut css = None;
    let mut fill = FormFields::new();
    let mut submit = None;
    for (key, value) in table {
        match key.as_str() {
            "css" => css = Some(selector(value, "form.css")?),
            "submit" => submit = Some(selector(value, "form.submit")?),
            "fill" => match value {
                toml::Value::Table(t) => fill = read_fields(t, "form.fill")?,
                other => {
                    return Err(format!(
                        "`form.fill`: expected a table of values such as {{ email = \"me@example.com\" }}, found {}",
                        other.type_str()
                    ));
                }
            },
            other => {
                return Err(format!(
                    "a form of the page (`form = {{ css = ... }}`) takes `css`, `fill` and `submit`; found `{other}`: put the values to send in `fill`"
                ));
            }
        }
    }
    Ok(PageForm {
        css: css.unwrap_or_default(),
        fill,
        submit,
    })
}

/// A CSS selector value.
fn selector(value: toml::Value, key: &str) -> Result<String, String> {
    match value {
        toml::Value::String(css) => {
            check_selector(&css).map_err(|e| format!("`{key}`: {e}"))?;
            Ok(css)
        }
        other => Err(format!(
            "`{key}`: expected a CSS selector, found {}",
            other.type_str()
        )),
    }
}

/// The values of a form table, in file order.
fn read_fields(table: toml::Table, key: &str) -> Result<FormFields, String> {
    let mut fields = FormFields::with_capacity(table.len());
    for (name, value) in table {
        let value = read_value(value).map_err(|e| format!("`{key}.{name}`: {e}"))?;
        fields.insert(name, value);
    }
    Ok(fields)
}

/// One form value: a string (constant, page value, or literal `$...`), a number or boolean
/// (its text), or a field rule.
fn read_value(value: toml::Value) -> Result<FormValue, String> {
    match value {
        toml::Value::String(text) => Ok(match PageValue::parse(&text) {
            Ok(Some(page)) => FormValue::Field(Field::Page(page)),
            Ok(None) => FormValue::Field(Field::Const(unescape(&text).to_string())),
            Err(_) => FormValue::Literal(text),
        }),
        toml::Value::Integer(n) => Ok(FormValue::Field(Field::Const(n.to_string()))),
        toml::Value::Float(n) => Ok(FormValue::Field(Field::Const(n.to_string()))),
        toml::Value::Boolean(b) => Ok(FormValue::Field(Field::Const(b.to_string()))),
        table @ toml::Value::Table(_) => {
            // Where its source may be (inside `each` or on the page) is checked with the rule.
            let field = Field::deserialize(table).map_err(|e| e.message().to_string())?;
            Ok(FormValue::Field(field))
        }
        other => Err(format!(
            "expected a string, a page value such as \"$url\", or a field rule such as {{ css = \"input[name=token]\", attr = \"value\" }}, found {}",
            other.type_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::{FieldRule, Source};
    use super::*;

    fn read(text: &str) -> Result<ReadForm, String> {
        let doc: toml::Table = toml::from_str(&format!("form = {text}")).expect("toml");
        read_form(doc["form"].clone())
    }

    #[test]
    fn a_form_of_constants_is_a_fixed_form_as_before() {
        assert_eq!(
            read(r#"{ q = "rust", page = 2, lit = "$$x" }"#),
            Ok(ReadForm::Constant(
                [("q", "rust"), ("page", "2"), ("lit", "$x")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            ))
        );
    }

    #[test]
    fn form_values_may_be_page_values_rules_or_literals() {
        let Ok(ReadForm::Fields(fields)) = read(
            r#"{ from = "$url", token = { css = "input[name=t]", attr = "value" }, pw = "$ecret", q = "x" }"#,
        ) else {
            panic!("fields expected");
        };
        assert_eq!(
            fields["from"],
            FormValue::Field(Field::Page(PageValue::Url))
        );
        assert_eq!(
            fields["token"],
            FormValue::Field(Field::Extract(FieldRule {
                attr: Some("value".into()),
                ..FieldRule::new(Source::Css("input[name=t]".into()))
            }))
        );
        assert_eq!(fields["pw"], FormValue::Literal("$ecret".into()));
        assert_eq!(fields["q"], FormValue::Field(Field::Const("x".into())));
    }

    #[test]
    fn a_table_with_css_is_a_form_of_the_page() {
        let Ok(ReadForm::Page(form)) = read(
            r#"{ css = "form#login", fill = { email = "a@b.example", back = "$url" }, submit = "button.go" }"#,
        ) else {
            panic!("page form expected");
        };
        assert_eq!(form.css, "form#login");
        assert_eq!(form.submit.as_deref(), Some("button.go"));
        assert_eq!(form.fill.len(), 2);
        assert_eq!(
            form.fill["back"],
            FormValue::Field(Field::Page(PageValue::Url))
        );
    }

    #[test]
    fn bad_forms_say_what_was_expected() {
        for (bad, why) in [
            (r#""q=rust""#, "expected a table"),
            (
                r#"{ css = "form", email = "x" }"#,
                "put the values to send in `fill`",
            ),
            (r#"{ css = "form[" }"#, "invalid CSS selector"),
            (
                r#"{ css = "form", fill = "x" }"#,
                "`form.fill`: expected a table",
            ),
            (r#"{ q = [1] }"#, "`form.q`: expected a string"),
            (r#"{ q = { css = "a", atr = "x" } }"#, "unknown field `atr`"),
        ] {
            let err = read(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
