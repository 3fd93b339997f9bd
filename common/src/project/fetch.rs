//! Fetch options in a project file: the keys shared by `[defaults]` and each follow rule, and
//! how a task's own options are merged over the project's defaults.
//!
//! serde's `flatten` cannot be combined with `deny_unknown_fields` and loses the spans the
//! errors need, so the shared keys are spliced into both raw structs by [`with_fetch_keys!`]
//! and moved out of them with the generated `take_fetch`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::exprs::ProxyUrl;
use super::values::{ByteSize, Count, CssSelector, Dur, HeaderName, HeaderValue, PositiveDur};
use crate::message::{FetchMode, FetchOptions, JsOptions, MultipartPart};

/// Declares a raw struct of the file with the fetch keys shared by `[defaults]` and follow
/// rules appended, and `take_fetch`, which moves those keys into a [`FetchKeys`].
macro_rules! with_fetch_keys {
    ($(#[$meta:meta])* struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        struct $name {
            $($body)*
            #[serde(default)]
            headers: std::collections::BTreeMap<super::values::HeaderName, super::values::HeaderValue>,
            timeout: Option<super::values::PositiveDur>,
            max_body: Option<super::values::ByteSize>,
            max_redirects: Option<super::values::Count>,
            fetch: Option<crate::message::FetchMode>,
            js: Option<super::fetch::RawJs>,
            user_agent: Option<super::values::HeaderValue>,
            #[serde(default)]
            cookies: std::collections::BTreeMap<super::values::HeaderName, super::values::HeaderValue>,
            #[serde(default)]
            session: bool,
            #[serde(default)]
            proxies: Vec<super::exprs::ProxyUrl>,
            verify_tls: Option<bool>,
            follow_redirects: Option<bool>,
            connect_timeout: Option<super::values::PositiveDur>,
            robots: Option<bool>,
            #[serde(default)]
            content_types: Vec<super::values::NonEmpty>,
        }

        impl $name {
            /// Moves the shared fetch keys out.
            fn take_fetch(&mut self) -> super::fetch::FetchKeys {
                super::fetch::FetchKeys {
                    headers: std::mem::take(&mut self.headers),
                    timeout: self.timeout.take(),
                    max_body: self.max_body.take(),
                    max_redirects: self.max_redirects.take(),
                    fetch: self.fetch.take(),
                    js: self.js.take(),
                    user_agent: self.user_agent.take(),
                    cookies: std::mem::take(&mut self.cookies),
                    session: self.session,
                    proxies: std::mem::take(&mut self.proxies),
                    verify_tls: self.verify_tls.take(),
                    follow_redirects: self.follow_redirects.take(),
                    connect_timeout: self.connect_timeout.take(),
                    robots: self.robots.take(),
                    content_types: std::mem::take(&mut self.content_types),
                }
            }
        }
    };
}
pub(super) use with_fetch_keys;

/// The shared fetch keys, as read.
pub(super) struct FetchKeys {
    pub headers: BTreeMap<HeaderName, HeaderValue>,
    pub timeout: Option<PositiveDur>,
    pub max_body: Option<ByteSize>,
    pub max_redirects: Option<Count>,
    pub fetch: Option<FetchMode>,
    pub js: Option<RawJs>,
    pub user_agent: Option<HeaderValue>,
    pub cookies: BTreeMap<HeaderName, HeaderValue>,
    pub session: bool,
    pub proxies: Vec<ProxyUrl>,
    pub verify_tls: Option<bool>,
    pub follow_redirects: Option<bool>,
    pub connect_timeout: Option<PositiveDur>,
    pub robots: Option<bool>,
    pub content_types: Vec<super::values::NonEmpty>,
}

/// Browser options (`js = { ... }`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJs {
    wait_for: Option<CssSelector>,
    #[serde(default)]
    network_idle: bool,
    wait: Option<Dur>,
    script: Option<String>,
    viewport: Option<(u32, u32)>,
    #[serde(default)]
    block_images: bool,
    #[serde(default)]
    screenshot: bool,
}

/// One part of a multipart body (`multipart = [{ name, value, filename, content_type }]`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPart {
    name: String,
    value: String,
    filename: Option<String>,
    content_type: Option<String>,
}

impl From<RawPart> for MultipartPart {
    fn from(raw: RawPart) -> Self {
        MultipartPart {
            name: raw.name,
            value: raw.value,
            filename: raw.filename,
            content_type: raw.content_type,
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl FetchKeys {
    /// The options these keys set; everything they do not set stays at its default.
    pub(super) fn into_options(self) -> FetchOptions {
        // A `js` table alone means a rendered fetch: it would be ignored otherwise.
        let mode = match (self.fetch, &self.js) {
            (Some(mode), _) => mode,
            (None, Some(_)) => FetchMode::Js,
            (None, None) => FetchMode::Http,
        };
        FetchOptions {
            headers: self.headers.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
            timeout_ms: self.timeout.map(|t| millis(t.0)),
            max_body: self.max_body.map(|b| b.0),
            max_redirects: self.max_redirects.map(|n| n.0),
            mode,
            js: self.js.map(|js| JsOptions {
                wait_for: js.wait_for.map(|s| s.0),
                network_idle: js.network_idle,
                wait_ms: js.wait.map(|w| millis(w.0)),
                script: js.script,
                viewport: js.viewport,
                block_images: js.block_images,
                screenshot: js.screenshot,
            }),
            user_agent: self.user_agent.map(|u| u.0),
            cookies: self.cookies.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
            session: self.session,
            proxies: self.proxies.into_iter().map(|p| p.0).collect(),
            verify_tls: self.verify_tls,
            follow_redirects: self.follow_redirects,
            connect_timeout_ms: self.connect_timeout.map(|t| millis(t.0)),
            robots: self.robots,
            content_types: self.content_types.into_iter().map(|c| c.0).collect(),
            ..FetchOptions::default()
        }
    }
}

/// `own` merged over `defaults`: every option `own` sets wins; maps (headers, cookies) are
/// merged key by key with `own` winning; lists (proxies, content types) are taken whole from
/// `own` when it has any; `session` and a rendered mode are on when either side turns them
/// on (the wire format cannot tell "plain HTTP" from "not said", so a default `fetch = "js"`
/// applies to every request). `sitemap` is the task's own: a default never makes a request a
/// sitemap task.
pub fn merge_fetch(defaults: &FetchOptions, own: &FetchOptions) -> FetchOptions {
    let mut out = own.clone();
    for (k, v) in &defaults.headers {
        // Header names are case-insensitive: a task's `user-agent` overrides a default
        // `User-Agent`.
        if !out.headers.keys().any(|own| own.eq_ignore_ascii_case(k)) {
            out.headers.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &defaults.cookies {
        out.cookies.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if out.method.is_none() {
        out.method.clone_from(&defaults.method);
    }
    if out.body.is_none() && out.form.is_none() && out.multipart.is_empty() {
        out.body.clone_from(&defaults.body);
    }
    out.timeout_ms = out.timeout_ms.or(defaults.timeout_ms);
    out.max_body = out.max_body.or(defaults.max_body);
    out.max_redirects = out.max_redirects.or(defaults.max_redirects);
    out.allow_private = out.allow_private || defaults.allow_private;
    if out.allow_private_ranges.is_empty() {
        out.allow_private_ranges
            .clone_from(&defaults.allow_private_ranges);
    }
    if out.mode == FetchMode::Http {
        out.mode = defaults.mode;
    }
    if out.js.is_none() {
        out.js.clone_from(&defaults.js);
    }
    if out.user_agent.is_none() {
        out.user_agent.clone_from(&defaults.user_agent);
    }
    out.session = out.session || defaults.session;
    if out.proxies.is_empty() {
        out.proxies.clone_from(&defaults.proxies);
    }
    out.verify_tls = out.verify_tls.or(defaults.verify_tls);
    out.follow_redirects = out.follow_redirects.or(defaults.follow_redirects);
    out.connect_timeout_ms = out.connect_timeout_ms.or(defaults.connect_timeout_ms);
    out.robots = out.robots.or(defaults.robots);
    if out.content_types.is_empty() {
        out.content_types.clone_from(&defaults.content_types);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_options_win_and_maps_merge() {
        let defaults = FetchOptions {
            headers: BTreeMap::from([
                ("User-Agent".to_string(), "d".to_string()),
                ("Accept".to_string(), "text/html".to_string()),
            ]),
            cookies: BTreeMap::from([("a".to_string(), "1".to_string())]),
            timeout_ms: Some(30_000),
            mode: FetchMode::Js,
            proxies: vec!["http://p:1".into()],
            robots: Some(true),
            allow_private: true,
            ..FetchOptions::default()
        };
        let own = FetchOptions {
            headers: BTreeMap::from([("user-agent".to_string(), "own".to_string())]),
            cookies: BTreeMap::from([("b".to_string(), "2".to_string())]),
            timeout_ms: Some(5_000),
            robots: Some(false),
            ..FetchOptions::default()
        };
        let merged = merge_fetch(&defaults, &own);
        assert_eq!(
            merged.headers,
            BTreeMap::from([
                ("user-agent".to_string(), "own".to_string()),
                ("Accept".to_string(), "text/html".to_string()),
            ])
        );
        assert_eq!(merged.cookies.len(), 2);
        assert_eq!(merged.timeout_ms, Some(5_000));
        assert_eq!(merged.mode, FetchMode::Js);
        assert_eq!(merged.proxies, ["http://p:1"]);
        assert_eq!(merged.robots, Some(false));
        assert!(merged.allow_private);
    }
}
