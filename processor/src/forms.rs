//! Submitting a form of the page as a browser does (`form = { css = "form#login", ... }`).
//!
//! [`submission`] reads the form's controls in document order (the HTML "constructing the
//! entry list" steps, simplified): named, enabled `input`, `select`, `textarea` and the
//! submitter button; checkboxes and radios only when checked (value `on` by default); a
//! `select` sends its selected options, or its first option when none is selected (and it is
//! not `multiple`); file inputs, reset and plain buttons send nothing; a `textarea` sends its
//! text. The submitter is the `submit` button of the rule, or the form's first submit button
//! (what pressing Enter presses); its name and value are sent when it has a name. `fill`
//! values replace the first control of their name (later ones of that name are dropped) or
//! are added at the end.
//!
//! The request: `action` resolved against the document's base URL (an empty or missing one is
//! the page's own URL), `method` GET (the fields replace the action's query) or POST (an
//! URL-encoded body, or `multipart/form-data` parts for such an `enctype`).

use scraper::ElementRef;
use spindle_common::FetchOptions;
use spindle_common::message::MultipartPart;
use url::Url;

/// A form ready to send: the raw URL (resolved later with every other link) and the fetch
/// options that carry its method and fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Submission {
    /// The URL to request, absolute.
    pub(crate) url: String,
    /// The rule's fetch options with the form's method and body.
    pub(crate) fetch: FetchOptions,
}

/// Whether an element is a submit button.
fn is_submit_button(e: &ElementRef<'_>) -> bool {
    let kind = e.attr("type").map(str::to_ascii_lowercase);
    match e.value().name() {
        "button" => matches!(kind.as_deref(), None | Some("submit")),
        "input" => matches!(kind.as_deref(), Some("submit" | "image")),
        _ => false,
    }
}

/// The form's entries, in document order, `submitter` included when it has a name.
fn entries(form: ElementRef<'_>, submitter: Option<ElementRef<'_>>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in form.descendants().filter_map(ElementRef::wrap) {
        let Some(name) = e.attr("name").filter(|n| !n.is_empty()) else {
            continue;
        };
        if e.attr("disabled").is_some() {
            continue;
        }
        let value = e.attr("value").unwrap_or_default();
        match e.value().name() {
            "input" => {
                let kind = e.attr("type").unwrap_or("text").to_ascii_lowercase();
                match kind.as_str() {
                    "submit" | "image" if submitter.is_some_and(|s| s.id() == e.id()) => {
                        out.push((name.to_string(), value.to_string()));
                    }
                    "checkbox" | "radio" if e.attr("checked").is_some() => {
                        let value = e.attr("value").unwrap_or("on");
                        out.push((name.to_string(), value.to_string()));
                    }
                    "submit" | "image" | "reset" | "button" | "file" | "checkbox" | "radio" => {}
                    _ => out.push((name.to_string(), value.to_string())),
                }
            }
            "button" if submitter.is_some_and(|s| s.id() == e.id()) => {
                out.push((name.to_string(), value.to_string()));
            }
            "textarea" => out.push((name.to_string(), e.text().collect())),
            "select" => {
                let options: Vec<ElementRef<'_>> = e
                    .descendants()
                    .filter_map(ElementRef::wrap)
                    .filter(|o| o.value().name() == "option" && o.attr("disabled").is_none())
                    .collect();
                let option_value = |o: &ElementRef<'_>| {
                    o.attr("value").map_or_else(
                        || o.text().collect::<String>().trim().to_string(),
                        str::to_string,
                    )
                };
                let selected: Vec<&ElementRef<'_>> = options
                    .iter()
                    .filter(|o| o.attr("selected").is_some())
                    .collect();
                if selected.is_empty() {
                    if e.attr("multiple").is_none()
                        && let Some(first) = options.first()
                    {
                        out.push((name.to_string(), option_value(first)));
                    }
                } else {
                    for o in selected {
                        out.push((name.to_string(), option_value(o)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The request that submits `form` with `fill` over its values; `page_url` stands for an
/// empty action, `base` resolves the others. `None` when the action is not a URL.
pub(crate) fn submission(
    form: ElementRef<'_>,
    submit: Option<&scraper::Selector>,
    fill: &[(String, String)],
    page_url: &str,
    base: &Url,
    rule_fetch: &FetchOptions,
) -> Option<Submission> {
    let submitter = match submit {
        Some(selector) => form.select(selector).next(),
        None => form
            .descendants()
            .filter_map(ElementRef::wrap)
            .find(is_submit_button),
    };
    let mut pairs = entries(form, submitter);
    for (name, value) in fill {
        match pairs.iter().position(|(n, _)| n == name) {
            Some(first) => {
                pairs[first].1.clone_from(value);
                let mut i = 0;
                pairs.retain(|(n, _)| {
                    let keep = n != name || i == first;
                    i += 1;
                    keep
                });
            }
            None => pairs.push((name.clone(), value.clone())),
        }
    }
    let action = form.attr("action").map(str::trim).unwrap_or_default();
    let mut url = if action.is_empty() {
        Url::parse(page_url).ok()?
    } else {
        base.join(action).ok()?
    };
    let post = form
        .attr("method")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("post"));
    let mut fetch = rule_fetch.clone();
    if post {
        fetch.method = Some("POST".to_string());
        let multipart = form
            .attr("enctype")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
        if multipart {
            fetch.multipart = pairs
                .into_iter()
                .map(|(name, value)| MultipartPart {
                    name,
                    value,
                    filename: None,
                    content_type: None,
                })
                .collect();
        } else {
            fetch.body = Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&pairs)
                    .finish(),
            );
            if !fetch
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                fetch.headers.insert(
                    "Content-Type".to_string(),
                    "application/x-www-form-urlencoded".to_string(),
                );
            }
        }
    } else {
        url.set_fragment(None);
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(&pairs);
        }
    }
    Some(Submission {
        url: url.to_string(),
        fetch,
    })
}

#[cfg(test)]
mod tests {
    use scraper::{Html, Selector};

    use super::*;

    fn submit_first(html: &str, submit: Option<&str>, fill: &[(&str, &str)]) -> Submission {
        let doc = Html::parse_document(html);
        let form = doc
            .select(&Selector::parse("form").expect("selector"))
            .next()
            .expect("a form");
        let submit = submit.map(|s| Selector::parse(s).expect("selector"));
        let fill: Vec<(String, String)> = fill
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let base = Url::parse("http://site.example/account/login?next=1").expect("url");
        submission(
            form,
            submit.as_ref(),
            &fill,
            base.as_str(),
            &base,
            &FetchOptions::default(),
        )
        .expect("a submission")
    }

    const LOGIN: &str = r#"<form id="login" method="post" action="/session">
        <input type="hidden" name="csrf" value="t0k3n">
        <input name="email" value="">
        <input type="password" name="password">
        <input type="checkbox" name="remember" checked>
        <input type="checkbox" name="spam" value="yes">
        <input name="off" value="x" disabled>
        <input type="file" name="avatar">
        <select name="lang"><option value="en">English</option><option value="fr" selected>Français</option></select>
        <select name="size"><option>S</option><option>M</option></select>
        <textarea name="note">hi there</textarea>
        <button type="button" name="help" value="1">?</button>
        <button name="go" value="in">Sign in</button>
        <input type="submit" name="alt" value="other">
    </form>"#;

    #[test]
    fn a_post_form_keeps_its_hidden_fields_action_and_method() {
        let s = submit_first(
            LOGIN,
            None,
            &[("email", "me@x.example"), ("password", "pw")],
        );
        assert_eq!(s.url, "http://site.example/session");
        assert_eq!(s.fetch.method.as_deref(), Some("POST"));
        assert_eq!(
            s.fetch.body.as_deref(),
            Some(
                "csrf=t0k3n&email=me%40x.example&password=pw&remember=on&lang=fr&size=S&note=hi+there&go=in"
            )
        );
        assert_eq!(
            s.fetch.headers.get("Content-Type").map(String::as_str),
            Some("application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn the_submit_button_can_be_chosen_and_fill_adds_missing_names() {
        let s = submit_first(LOGIN, Some("input[name=alt]"), &[("extra", "1")]);
        let body = s.fetch.body.expect("body");
        assert!(body.ends_with("&alt=other&extra=1"), "{body}");
        assert!(!body.contains("go=in"), "{body}");
    }

    #[test]
    fn a_get_form_puts_its_fields_in_the_query_of_its_action() {
        let s = submit_first(
            r#"<form action="search?old=1#x"><input name="q" value="a b"><input type="submit" value="Go"></form>"#,
            None,
            &[],
        );
        assert_eq!(s.url, "http://site.example/account/search?q=a+b");
        assert_eq!(s.fetch, FetchOptions::default());
        let s = submit_first(
            r#"<form><input type="hidden" name="p" value="2"></form>"#,
            None,
            &[],
        );
        assert_eq!(
            s.url, "http://site.example/account/login?p=2",
            "no action: the page"
        );
    }

    #[test]
    fn a_multipart_form_sends_parts() {
        let s = submit_first(
            r#"<form method="POST" enctype="multipart/form-data"><input name="a" value="1"></form>"#,
            None,
            &[("b", "2")],
        );
        assert_eq!(s.fetch.method.as_deref(), Some("POST"));
        assert_eq!(
            s.fetch
                .multipart
                .iter()
                .map(|p| (p.name.as_str(), p.value.as_str()))
                .collect::<Vec<_>>(),
            [("a", "1"), ("b", "2")]
        );
        assert!(s.fetch.body.is_none());
    }

    #[test]
    fn fill_replaces_every_control_of_its_name_once() {
        let s = submit_first(
            r#"<form method="post"><input name="t" value="1"><input name="u" value="x"><input name="t" value="2"></form>"#,
            None,
            &[("t", "9")],
        );
        assert_eq!(s.fetch.body.as_deref(), Some("t=9&u=x"));
    }
}
