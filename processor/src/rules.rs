//! A project compiled for execution.
//!
//! [`Rules::compile`] turns every CSS selector, JSONPath, regex, URL template and script of a
//! [`Project`] into its compiled form once, so running a handler on a page never parses one
//! again (XPath excepted: sxd-xpath's compiled form is not `Sync`, see [`crate::xpath`]). A
//! `Rules` is immutable and `Send + Sync`: one instance is shared (behind an `Arc`) by every
//! job of its project until the project's definition changes.

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use scraper::Selector;
use serde_json::Value;
use serde_json_path::JsonPath;
use spindle_common::FetchOptions;
use spindle_common::Project;
use spindle_common::project::{
    Each, Field, FieldRule, FollowRule, FormFields, FormValue, HtmlPart, LinkSource, PageValue,
    ScriptLimits, ScriptOrigin, Source, TemplatePart,
};

use crate::error::ProcessorError;
use crate::links::FollowFilter;
use crate::script::{CompiledScript, ScriptEngine};
use crate::value::Transform;

/// A project compiled for execution.
pub struct Rules {
    project: Arc<Project>,
    handlers: HashMap<String, CompiledHandler>,
    start_hosts: Vec<String>,
    engine: Option<ScriptEngine>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("project", &self.project.name)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One handler, compiled.
pub(crate) struct CompiledHandler {
    /// Follow rules, in file order (the first rule to yield a URL wins it).
    pub(crate) follows: Vec<CompiledFollow>,
    /// Item fields, in file order.
    pub(crate) fields: Vec<(String, CompiledField)>,
    /// Many items per page: what each item is.
    pub(crate) each: Option<CompiledEach>,
    /// Field keying each item of `each`.
    pub(crate) key: Option<String>,
    /// The script hook.
    pub(crate) script: Option<CompiledScript>,
    /// What of the page this handler reads.
    pub(crate) needs: Needs,
}

/// What of the page a handler reads, so nothing else is parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// The HTML tree.
    pub(crate) html: bool,
    /// The XPath view of the HTML tree.
    pub(crate) xpath: bool,
    /// The body as JSON.
    pub(crate) json: bool,
    /// The page's JSON-LD blocks (read from the HTML tree).
    pub(crate) jsonld: bool,
}

/// What makes one item, for many items per page.
pub(crate) enum CompiledEach {
    /// Elements matching a selector.
    Css(Selector),
    /// Nodes selected by an XPath expression.
    XPath(String),
    /// Values selected by a JSONPath.
    Json(JsonPath),
    /// JSON-LD nodes selected by a JSONPath.
    JsonLd(JsonPath),
}

/// A field, compiled.
pub(crate) struct CompiledField {
    /// The source as written, for logs.
    pub(crate) label: String,
    pub(crate) source: CompiledSource,
    pub(crate) attr: Option<String>,
    pub(crate) html: Option<HtmlPart>,
    /// What an element's text puts between its blocks and cells.
    pub(crate) separator: String,
    pub(crate) transform: Transform,
    pub(crate) all: bool,
    pub(crate) default: Option<Value>,
    pub(crate) required: bool,
}

/// Where a field's raw values come from.
pub(crate) enum CompiledSource {
    Css(Selector),
    XPath(String),
    Json(JsonPath),
    Page(PageValue),
    Const(String),
    Element,
    JsonLd(JsonPath),
    Microdata {
        prop: String,
        itemtype: Option<String>,
    },
    /// The `<meta>` name, lower-cased.
    Meta(String),
}

/// A follow rule, compiled.
pub(crate) struct CompiledFollow {
    /// The source as written, for logs.
    pub(crate) label: String,
    pub(crate) links: CompiledLinks,
    pub(crate) callback: String,
    pub(crate) priority: i32,
    pub(crate) age_ms: Option<i64>,
    pub(crate) itag: Option<CompiledField>,
    pub(crate) force: bool,
    pub(crate) fetch: FetchOptions,
    pub(crate) save: Vec<(String, CompiledField)>,
    /// Elements each of which makes links with values of its own (`each`).
    pub(crate) each: Option<Selector>,
    /// Form fields read from the page, evaluated for each link (`form` with page values or
    /// rules).
    pub(crate) form: Option<Vec<(String, CompiledFormValue)>>,
    /// Request headers whose values are part of the task id.
    pub(crate) identity_headers: Vec<String>,
    /// What a link must pass: `same_site`, `allow`, `deny`, `max_depth`, `max_url_length`
    /// (also the filter of the handler's script follows with this callback).
    pub(crate) filter: FollowFilter,
}

/// Where a follow rule's links come from.
pub(crate) enum CompiledLinks {
    Css {
        selector: Selector,
        attr: String,
    },
    XPath {
        xpath: String,
        attr: String,
    },
    Json(JsonPath),
    Url(Vec<CompiledPart>),
    /// The `each` element itself.
    Element {
        attr: String,
    },
    /// Forms of the page.
    Form(CompiledPageForm),
}

/// A form of the page to submit, compiled.
pub(crate) struct CompiledPageForm {
    /// The `<form>` elements.
    pub(crate) form: Selector,
    /// Values over the form's own.
    pub(crate) fill: Vec<(String, CompiledFormValue)>,
    /// The submit button sent (default: the form's first).
    pub(crate) submit: Option<Selector>,
}

/// One form value, compiled.
pub(crate) enum CompiledFormValue {
    /// Evaluated on the page (boxed: a field is large, a literal small).
    Field(Box<CompiledField>),
    /// `$...` naming no page value: sent as written, counted.
    Literal(String),
}

/// A part of a URL template.
pub(crate) enum CompiledPart {
    Literal(String),
    Page(PageValue),
    Json(JsonPath),
}

/// Compiles the pieces of one project, naming the project in errors.
struct Compiler<'a> {
    project: &'a str,
}

impl Compiler<'_> {
    fn error(&self, message: String) -> ProcessorError {
        ProcessorError::Rules {
            project: self.project.to_string(),
            message,
        }
    }

    fn selector(&self, css: &str) -> Result<Selector, ProcessorError> {
        Selector::parse(css).map_err(|e| self.error(format!("invalid CSS selector `{css}`: {e}")))
    }

    fn json_path(&self, path: &str) -> Result<JsonPath, ProcessorError> {
        JsonPath::parse(path).map_err(|e| self.error(format!("invalid JSONPath `{path}`: {e}")))
    }

    fn regex(&self, pattern: &str, what: &str) -> Result<Regex, ProcessorError> {
        Regex::new(pattern).map_err(|e| self.error(format!("invalid regex of {what}: {e}")))
    }

    fn field(
        &self,
        name: &str,
        field: &Field,
        needs: &mut Needs,
    ) -> Result<CompiledField, ProcessorError> {
        let rule = match field {
            Field::Page(v) => FieldRule::new(Source::Page(v.clone())),
            Field::Const(c) => FieldRule::new(Source::Const(c.clone())),
            Field::Extract(rule) => rule.clone(),
        };
        let (source, label) = match &rule.source {
            Source::Css(css) => {
                needs.html = true;
                (CompiledSource::Css(self.selector(css)?), format!("`{css}`"))
            }
            Source::XPath(xpath) => {
                needs.html = true;
                needs.xpath = true;
                (
                    CompiledSource::XPath(xpath.clone()),
                    format!("xpath `{xpath}`"),
                )
            }
            Source::Json(path) => {
                needs.json = true;
                (
                    CompiledSource::Json(self.json_path(path)?),
                    format!("json `{path}`"),
                )
            }
            Source::Page(v) => (CompiledSource::Page(v.clone()), "page value".to_string()),
            Source::Const(c) => (CompiledSource::Const(c.clone()), "constant".to_string()),
            Source::Element => (CompiledSource::Element, "the element".to_string()),
            Source::JsonLd(path) => {
                needs.html = true;
                needs.jsonld = true;
                (
                    CompiledSource::JsonLd(self.json_path(path)?),
                    format!("jsonld `{path}`"),
                )
            }
            Source::Microdata { prop, itemtype } => {
                needs.html = true;
                let label = match itemtype {
                    Some(t) => format!("itemprop `{prop}` of itemtype `{t}`"),
                    None => format!("itemprop `{prop}`"),
                };
                (
                    CompiledSource::Microdata {
                        prop: prop.clone(),
                        itemtype: itemtype.clone(),
                    },
                    label,
                )
            }
            Source::Meta(name) => {
                needs.html = true;
                (
                    CompiledSource::Meta(name.to_ascii_lowercase()),
                    format!("meta `{name}`"),
                )
            }
        };
        Ok(CompiledField {
            label,
            source,
            attr: rule.attr.clone(),
            html: rule.html,
            separator: rule.separator.clone().unwrap_or_else(|| " ".to_string()),
            transform: Transform {
                regex: match &rule.regex {
                    Some(p) => Some(self.regex(p, &format!("field `{name}`"))?),
                    None => None,
                },
                kind: rule.kind,
                format: rule.format.clone(),
                unit: rule.unit,
                expr: rule.expr.clone(),
            },
            all: rule.all,
            default: rule.default.clone(),
            required: rule.required,
        })
    }

    fn form_values(
        &self,
        fields: &FormFields,
        needs: &mut Needs,
    ) -> Result<Vec<(String, CompiledFormValue)>, ProcessorError> {
        let mut out = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            out.push((
                name.clone(),
                match value {
                    FormValue::Field(field) => CompiledFormValue::Field(Box::new(self.field(
                        &format!("form.{name}"),
                        field,
                        needs,
                    )?)),
                    FormValue::Literal(text) => CompiledFormValue::Literal(text.clone()),
                },
            ));
        }
        Ok(out)
    }

    fn follow(
        &self,
        rule: &FollowRule,
        needs: &mut Needs,
    ) -> Result<CompiledFollow, ProcessorError> {
        let (links, label) = match &rule.links {
            LinkSource::Css { css, attr } => {
                needs.html = true;
                let selector = self.selector(css)?;
                (
                    CompiledLinks::Css {
                        selector,
                        attr: attr.clone(),
                    },
                    format!("`{css}`"),
                )
            }
            LinkSource::XPath { xpath, attr } => {
                needs.html = true;
                needs.xpath = true;
                (
                    CompiledLinks::XPath {
                        xpath: xpath.clone(),
                        attr: attr.clone(),
                    },
                    format!("xpath `{xpath}`"),
                )
            }
            LinkSource::Json(path) => {
                needs.json = true;
                (
                    CompiledLinks::Json(self.json_path(path)?),
                    format!("json `{path}`"),
                )
            }
            LinkSource::Url(template) => {
                let mut parts = Vec::with_capacity(template.parts.len());
                for part in &template.parts {
                    parts.push(match part {
                        TemplatePart::Literal(l) => CompiledPart::Literal(l.clone()),
                        TemplatePart::Page(v) => CompiledPart::Page(v.clone()),
                        TemplatePart::Json(p) => {
                            needs.json = true;
                            CompiledPart::Json(self.json_path(p)?)
                        }
                    });
                }
                (
                    CompiledLinks::Url(parts),
                    format!("url `{}`", template.text),
                )
            }
            LinkSource::Element { attr } => (
                CompiledLinks::Element { attr: attr.clone() },
                format!("the element's `{attr}`"),
            ),
            LinkSource::Form(form) => {
                needs.html = true;
                (
                    CompiledLinks::Form(CompiledPageForm {
                        form: self.selector(&form.css)?,
                        fill: self.form_values(&form.fill, needs)?,
                        submit: match &form.submit {
                            Some(css) => Some(self.selector(css)?),
                            None => None,
                        },
                    }),
                    format!("form `{}`", form.css),
                )
            }
        };
        let each = match &rule.each {
            Some(css) => {
                needs.html = true;
                Some(self.selector(css)?)
            }
            None => None,
        };
        let label = match &rule.each {
            Some(css) => format!("{label} in each `{css}`"),
            None => label,
        };
        let form = match &rule.form {
            Some(fields) => Some(self.form_values(fields, needs)?),
            None => None,
        };
        let mut save = Vec::with_capacity(rule.save.len());
        for (key, field) in &rule.save {
            save.push((
                key.clone(),
                self.field(&format!("save.{key}"), field, needs)?,
            ));
        }
        let patterns = |list: &[String], what: &str| -> Result<Vec<Regex>, ProcessorError> {
            list.iter().map(|p| self.regex(p, what)).collect()
        };
        Ok(CompiledFollow {
            label,
            links,
            callback: rule.callback.clone(),
            priority: rule.priority,
            age_ms: rule
                .age
                .map(|a| i64::try_from(a.as_millis()).unwrap_or(i64::MAX)),
            itag: match &rule.itag {
                Some(field) => Some(self.field("itag", field, needs)?),
                None => None,
            },
            force: rule.force,
            fetch: rule.fetch.clone(),
            save,
            each,
            form,
            identity_headers: rule.identity_headers.clone(),
            filter: FollowFilter {
                same_site: rule.same_site,
                allow: patterns(&rule.allow, "allow")?,
                deny: patterns(&rule.deny, "deny")?,
                max_depth: rule.max_depth,
                max_url_length: rule.max_url_length,
            },
        })
    }
}

impl Rules {
    /// Compiles every handler of `project`.
    pub fn compile(project: Arc<Project>) -> Result<Rules, ProcessorError> {
        Self::compile_with_limits(project, ScriptLimits::default())
    }

    /// Compiles every handler of `project`, with these limits for its scripts (a script's
    /// own `script_timeout` still wins over `limits.timeout`).
    pub fn compile_with_limits(
        project: Arc<Project>,
        limits: ScriptLimits,
    ) -> Result<Rules, ProcessorError> {
        let c = Compiler {
            project: &project.name,
        };
        let has_scripts = project.handlers.values().any(|h| h.script.is_some());
        let engine = has_scripts.then(|| ScriptEngine::new(&limits));
        let mut handlers = HashMap::with_capacity(project.handlers.len());
        for (name, handler) in &project.handlers {
            let mut needs = Needs::default();
            let mut follows = Vec::with_capacity(handler.follow.len());
            for rule in &handler.follow {
                follows.push(c.follow(rule, &mut needs)?);
            }
            let mut fields = Vec::with_capacity(handler.item.len());
            for (field_name, field) in &handler.item {
                fields.push((field_name.clone(), c.field(field_name, field, &mut needs)?));
            }
            let each = match handler.items.as_ref().map(|i| &i.each) {
                Some(Each::Css(css)) => {
                    needs.html = true;
                    Some(CompiledEach::Css(c.selector(css)?))
                }
                Some(Each::XPath(xpath)) => {
                    needs.html = true;
                    needs.xpath = true;
                    Some(CompiledEach::XPath(xpath.clone()))
                }
                Some(Each::Json(path)) => {
                    needs.json = true;
                    Some(CompiledEach::Json(c.json_path(path)?))
                }
                Some(Each::JsonLd(path)) => {
                    needs.html = true;
                    needs.jsonld = true;
                    Some(CompiledEach::JsonLd(c.json_path(path)?))
                }
                None => None,
            };
            let script = match (&handler.script, &engine) {
                (Some(script), Some(engine)) => {
                    let ast = engine
                        .compile(&script.source)
                        .map_err(|e| c.error(format!("script of handler `{name}`: {e}")))?;
                    Some(CompiledScript {
                        ast,
                        timeout: script.timeout.unwrap_or(limits.timeout),
                        first_line: match script.origin {
                            ScriptOrigin::Inline { line } => Some(line),
                            ScriptOrigin::File(_) => None,
                        },
                    })
                }
                _ => None,
            };
            handlers.insert(
                name.clone(),
                CompiledHandler {
                    follows,
                    fields,
                    each,
                    key: handler.items.as_ref().and_then(|i| i.key.clone()),
                    script,
                    needs,
                },
            );
        }
        let start_hosts = project.start_hosts();
        Ok(Rules {
            project,
            handlers,
            start_hosts,
            engine,
        })
    }

    /// The project these rules were compiled from.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The compiled handler for `callback`.
    pub(crate) fn handler(&self, callback: &str) -> Option<&CompiledHandler> {
        self.handlers.get(callback)
    }

    /// Hosts of the project's start URLs: the site follows are kept within.
    pub(crate) fn start_hosts(&self) -> &[String] {
        &self.start_hosts
    }

    /// The script engine, when the project has scripts.
    pub(crate) fn engine(&self) -> Option<&ScriptEngine> {
        self.engine.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use spindle_common::project::{FieldRule, Handler};

    use super::*;

    fn project() -> Project {
        Project::parse(
            r#"
name = "p"
start = ["http://www.a.example/", "http://b.example/x"]
[handlers.start]
follow = [{ css = "a", callback = "detail" }]
[handlers.detail]
item.title = { css = "h1", regex = '(\w+)' }
item.url = "$url"
[handlers.api]
item.name = { json = "$.name" }
[handlers.x]
item.cell = { xpath = "//td" }
"#,
        )
        .expect("valid project")
    }

    #[test]
    fn every_handler_is_compiled_with_what_it_reads() {
        let rules = Rules::compile(Arc::new(project())).expect("compiles");
        assert_eq!(rules.project().name, "p");
        let start = rules.handler("start").expect("start handler");
        assert_eq!(start.follows.len(), 1);
        assert_eq!(
            start.needs,
            Needs {
                html: true,
                xpath: false,
                json: false,
                jsonld: false
            }
        );
        let detail = rules.handler("detail").expect("detail handler");
        assert_eq!(detail.fields.len(), 2);
        assert!(detail.fields[0].1.transform.regex.is_some());
        assert_eq!(
            rules.handler("api").expect("api").needs,
            Needs {
                html: false,
                xpath: false,
                json: true,
                jsonld: false
            }
        );
        assert_eq!(
            rules.handler("x").expect("x").needs,
            Needs {
                html: true,
                xpath: true,
                json: false,
                jsonld: false
            }
        );
        assert!(rules.handler("nope").is_none());
        assert!(rules.engine().is_none());
        assert_eq!(rules.start_hosts(), ["www.a.example", "b.example"]);
    }

    #[test]
    fn page_value_only_handlers_read_nothing() {
        let mut p = project();
        p.handlers.insert(
            "meta".into(),
            Handler {
                item: [("u".to_string(), Field::Page(PageValue::Url))]
                    .into_iter()
                    .collect(),
                ..Handler::default()
            },
        );
        let rules = Rules::compile(Arc::new(p)).expect("compiles");
        assert_eq!(
            rules.handler("meta").expect("handler").needs,
            Needs::default()
        );
    }

    #[test]
    fn a_project_built_by_hand_with_bad_rules_is_refused() {
        let mut p = project();
        let bad_field = |rule: FieldRule| Handler {
            item: [("x".to_string(), Field::Extract(rule))]
                .into_iter()
                .collect(),
            ..Handler::default()
        };
        p.handlers.insert(
            "bad".into(),
            bad_field(FieldRule::new(Source::Css("a[".into()))),
        );
        let err = Rules::compile(Arc::new(p.clone())).expect_err("bad selector");
        assert!(matches!(err, ProcessorError::Rules { .. }), "{err}");
        assert!(err.to_string().contains("`a[`"), "{err}");

        p.handlers.insert(
            "bad".into(),
            bad_field(FieldRule {
                regex: Some("(".into()),
                ..FieldRule::new(Source::Css("p".into()))
            }),
        );
        let err = Rules::compile(Arc::new(p.clone())).expect_err("bad regex");
        assert!(err.to_string().contains("field `x`"), "{err}");

        p.handlers.insert(
            "bad".into(),
            bad_field(FieldRule::new(Source::Json("$[".into()))),
        );
        let err = Rules::compile(Arc::new(p)).expect_err("bad json path");
        assert!(err.to_string().contains("invalid JSONPath"), "{err}");
    }

    #[test]
    fn rules_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Rules>();
    }
}
