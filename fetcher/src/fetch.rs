//! [`Fetcher`]: the fetch of one task, from its options to a page or a task error.
//!
//! Order of the checks, cheapest first, so a refused task costs no request:
//!
//! 1. the URL length cap, then `data:` URLs (decoded here, nothing else applies);
//! 2. the URL parses, has an http(s) scheme and no private IP literal (unless allowed);
//! 3. the options are valid (method, headers, proxy);
//! 4. robots.txt of the URL's origin allows it (unless `fetch.robots == Some(false)`),
//!    within the task's timeout;
//! 5. the host's `Crawl-delay` slot is waited for (see [`crate::politeness`]);
//! 6. the page is fetched over HTTP or rendered in the browser, within the task's timeout
//!    (a fresh one: the robots.txt request and the crawl-delay wait do not eat into it).
//!
//! [`Fetcher::fetch_raw`] takes steps 1 (without `data:` URLs) to 5 too, then fetches over
//! HTTP whatever the task's mode and keeps the body as bytes: for bodies the fetcher reads
//! itself (sitemaps).
//!
//! Every failure is a [`TaskError`] with a kind; nothing here panics or stops the fetcher.

use std::time::{Duration, Instant};

use reqwest::Client;
use std::sync::Arc;

use reqwest::header::{self, HeaderMap, HeaderValue};
use spindle_common::Task;
use spindle_common::message::{ErrorKind, FetchMode, FetchOptions, Page, TaskError};
use spindle_common::netrange::PrivateAccess;
use url::Url;

use crate::browser::BrowserPool;
use crate::config::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_REDIRECTS, DEFAULT_TIMEOUT, DEFAULT_VIEWPORT, FetcherConfig,
};
use crate::error::{FetcherError, task_error};
use crate::http::{self, Exchange, RawPage};
use crate::politeness::CrawlDelays;
use crate::proxy::{ClientKey, Clients};
use crate::render::{self, RenderRequest};
use crate::request::{self, Request};
use crate::robots::{self, RobotsCache};
use crate::session::{self, Sessions};
use crate::{charset, data_url, guard};

/// The fetch side of a fetcher: clients, robots.txt cache, crawl delays, cookie sessions and
/// the browser pool, shared by every task.
///
/// Build it once and share it (in an `Arc`). Call [`Fetcher::shutdown`] when done: it stops
/// the browser; dropping the fetcher does too, blocking for the reap.
#[derive(Debug)]
pub struct Fetcher {
    config: FetcherConfig,
    clients: Clients,
    robots: RobotsCache,
    delays: CrawlDelays,
    sessions: Sessions,
    browser: Arc<BrowserPool>,
}

impl Fetcher {
    /// Builds the HTTP clients from `config`. The browser starts on the first `js` task.
    pub fn new(config: &FetcherConfig) -> Result<Fetcher, FetcherError> {
        Ok(Fetcher {
            config: config.clone(),
            clients: Clients::new(config)?,
            robots: RobotsCache::new(config.robots_cache_capacity),
            delays: CrawlDelays::new(),
            sessions: Sessions::new(),
            browser: Arc::new(BrowserPool::new(
                config.chromium_path.clone(),
                config.max_tabs,
            )),
        })
    }

    /// Stops the browser, if one runs (its whole process group, reaped).
    pub async fn shutdown(&self) {
        self.browser.shutdown().await;
    }

    /// Process id (and process group id) of the running browser, if any: for diagnostics.
    pub fn browser_pid(&self) -> Option<u32> {
        self.browser.pid()
    }

    /// Fetches one task. Never panics; every failure is a TaskError with a kind and message.
    ///
    /// Any HTTP status, 404 or 500 included, comes back as a [`Page`]. Redirects are followed
    /// up to `task.fetch.max_redirects` (unless `follow_redirects == Some(false)`: then the
    /// redirect response is the page), each hop checked like the first request.
    pub async fn fetch(&self, task: &Task) -> Result<Page, TaskError> {
        let started = Instant::now();
        let options = &task.fetch;
        self.check_length(task)?;
        let max_body = options.max_body.unwrap_or(DEFAULT_MAX_BODY);
        if data_url::is_data_url(&task.url) {
            return data_url::fetch(&task.url, max_body, &options.content_types);
        }
        if options.mode == FetchMode::Js && !options.proxies.is_empty() {
            // Chromium's proxy is per browser; silently going direct would leak the crawl.
            return Err(task_error(
                ErrorKind::Other,
                false,
                "proxies are not supported with mode js",
            ));
        }
        let Ready {
            url,
            request,
            client,
            timeout,
        } = self.ready(task).await?;

        // The task's own time starts now: robots.txt and the crawl delay are not its cost.
        let deadline = Instant::now() + timeout;
        let work = async {
            match options.mode {
                FetchMode::Http => {
                    let jar = self.sessions.for_fetch(&task.project, options.session);
                    let exchange = self.exchange(options, request, url, &jar);
                    http::fetch(&client, exchange, started).await
                }
                FetchMode::Js => {
                    let rendered = self.render(task, url, request, deadline).await?;
                    rendered_page(rendered, options, started)
                }
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(timed_out(timeout)))
    }

    /// Fetches one task over plain HTTP, whatever its mode, and returns the body as it came
    /// (not decoded, whatever its content type): for bodies the fetcher reads itself, such
    /// as sitemaps. Same checks, robots.txt, crawl delay, redirects, timeout and body cap as
    /// [`Fetcher::fetch`]; a `data:` URL is refused.
    pub async fn fetch_raw(&self, task: &Task) -> Result<RawPage, TaskError> {
        let started = Instant::now();
        self.check_length(task)?;
        let Ready {
            url,
            request,
            client,
            timeout,
        } = self.ready(task).await?;
        let work = async {
            let jar = self.sessions.for_fetch(&task.project, task.fetch.session);
            let exchange = self.exchange(&task.fetch, request, url, &jar);
            http::fetch_raw(&client, exchange, started).await
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(timed_out(timeout)))
    }

    /// Step 1: the URL length cap.
    fn check_length(&self, task: &Task) -> Result<(), TaskError> {
        if task.url.len() > self.config.max_url_len {
            return Err(task_error(
                ErrorKind::Refused,
                false,
                format!("URL longer than {} bytes", self.config.max_url_len),
            ));
        }
        Ok(())
    }

    /// Steps 2 to 5: the URL, the options, robots.txt and the crawl delay; what the request
    /// needs once they pass.
    async fn ready(&self, task: &Task) -> Result<Ready, TaskError> {
        let options = &task.fetch;
        let url = Url::parse(&task.url).map_err(|err| {
            task_error(
                ErrorKind::Refused,
                false,
                format!("invalid URL `{}`: {err}", task.url),
            )
        })?;
        let access = options.private_access();
        guard::check_url(&url, &access)?;
        let request = request::build(options)?;
        let key = ClientKey::for_task(
            options,
            task.retries,
            self.clients.default_connect_timeout(),
        )?;
        let client = self.clients.get(&key)?;
        let timeout = options
            .timeout_ms
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);

        if options.robots != Some(false) {
            let agent = user_agent(&request.headers, &self.config.user_agent);
            let check = self.check_robots(&client, &url, &agent, &access);
            let delay = tokio::time::timeout(timeout, check)
                .await
                .map_err(|_| timed_out(timeout))??;
            if let (Some(delay), Some(host)) = (delay, url.host_str()) {
                let delay = delay.min(self.config.max_crawl_delay);
                let port = url.port_or_known_default().unwrap_or(0);
                self.delays.wait(&format!("{host}:{port}"), delay).await;
            }
        }
        Ok(Ready {
            url,
            request,
            client,
            timeout,
        })
    }

    /// The HTTP exchange of a task's options.
    fn exchange<'a>(
        &self,
        options: &'a FetchOptions,
        request: Request,
        url: Url,
        jar: &'a reqwest::cookie::Jar,
    ) -> Exchange<'a> {
        Exchange {
            request,
            url,
            jar,
            access: options.private_access(),
            follow_redirects: options.follow_redirects.unwrap_or(true),
            max_redirects: options.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
            max_body: options.max_body.unwrap_or(DEFAULT_MAX_BODY),
            max_url_len: self.config.max_url_len,
            content_types: &options.content_types,
        }
    }

    /// robots.txt for `url`: Ok with the crawl delay to honour, or why the URL is refused.
    async fn check_robots(
        &self,
        client: &Client,
        url: &Url,
        user_agent: &str,
        access: &PrivateAccess,
    ) -> Result<Option<Duration>, TaskError> {
        let (ttl, error_ttl) = (self.config.robots_ttl, self.config.robots_error_ttl);
        let agent = robots::agent_token(user_agent);
        let fetch = async {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(user_agent) {
                headers.insert(header::USER_AGENT, value);
            }
            let (status, body) = http::get_small(
                client,
                robots::robots_url(url),
                headers,
                access,
                robots::MAX_ROBOTS_BYTES,
                robots::MAX_ROBOTS_REDIRECTS,
            )
            .await
            .map_err(|err| TaskError {
                message: format!("robots.txt unavailable: {}", err.message),
                ..err
            })?;
            Ok(robots::entry_from_response(
                status, &body, agent, ttl, error_ttl,
            ))
        };
        let entry = self.robots.entry(url, agent, fetch).await?;
        entry.check(url)?;
        Ok(entry.crawl_delay())
    }

    /// Renders `task` in the browser pool by `deadline`.
    ///
    /// The render runs in a task of its own that always returns its tab (or closes it) and
    /// checks the browser's health after a failure, even when the caller gave up waiting.
    async fn render(
        &self,
        task: &Task,
        url: Url,
        request: Request,
        deadline: Instant,
    ) -> Result<render::Rendered, TaskError> {
        let options = &task.fetch;
        // Chromium resolves names itself: check them here, as the HTTP resolver would.
        guard::check_resolved(&url, &options.private_access()).await?;
        let jar = self.sessions.for_fetch(&task.project, options.session);
        let cookies: Vec<(String, String)> = session::header_for(&jar, &url, &request.cookies)
            .and_then(|value| value.to_str().ok().map(session::parse_pairs))
            .unwrap_or_default();
        let render_request = RenderRequest {
            url: url.to_string(),
            user_agent: user_agent(&request.headers, &self.config.user_agent),
            headers: request
                .headers
                .iter()
                .filter(|(name, _)| *name != header::USER_AGENT)
                .filter_map(|(name, value)| {
                    let value = value.to_str().ok()?;
                    Some((name.as_str().to_owned(), value.to_owned()))
                })
                .collect(),
            cookies,
            js: options.js.clone().unwrap_or_default(),
            verify_tls: options.verify_tls.unwrap_or(true),
            default_viewport: DEFAULT_VIEWPORT,
            deadline,
            keep_cookies: options.session,
        };
        let pool = self.browser.clone();
        let rendering = tokio::spawn(async move { render_in_pool(&pool, render_request).await });
        let rendered = rendering.await.unwrap_or_else(|err| {
            Err(task_error(
                ErrorKind::Browser,
                true,
                format!("render failed: {err}"),
            ))
        })?;
        if options.session {
            for (name, value, domain, path) in &rendered.cookies {
                let cookie = format!("{name}={value}; Domain={domain}; Path={path}");
                jar.add_cookie_str(&cookie, &url);
            }
        }
        Ok(rendered)
    }
}

/// A task's request once its checks passed, robots.txt allowed it and its crawl delay was
/// waited for.
struct Ready {
    url: Url,
    request: Request,
    client: Client,
    timeout: Duration,
}

/// The error of a task that ran out of `timeout`.
fn timed_out(timeout: Duration) -> TaskError {
    task_error(
        ErrorKind::Timeout,
        true,
        format!("timed out after {} ms", timeout.as_millis()),
    )
}

/// How long past its deadline a render may stay in a DevTools call before the browser's
/// health is checked.
const STUCK_GRACE: Duration = Duration::from_secs(1);

/// One render: a tab from the pool, the render on the blocking pool, the tab given back.
/// A failure that the browser's health check confirms restarts the browser and becomes a
/// retryable `Browser` error.
async fn render_in_pool(
    pool: &BrowserPool,
    request: RenderRequest,
) -> Result<render::Rendered, TaskError> {
    let mut lease = pool.lease().await?;
    let (tab, instance) = (lease.tab.clone(), lease.instance.clone());
    let mut settings = lease.settings.take();
    let deadline = tokio::time::Instant::from_std(request.deadline) + STUCK_GRACE;
    let mut rendering = tokio::task::spawn_blocking(move || {
        let outcome = render::render(&tab, &instance, &request, &mut settings);
        (outcome, settings)
    });
    let outcome = tokio::select! {
        outcome = &mut rendering => outcome,
        () = tokio::time::sleep_until(deadline) => {
            // Past its deadline the render is stuck in a DevTools call that only the
            // browser can end. A browser that does not answer a ping is hung: killing it
            // ends the call at once. One that answers has a hung page: the call ends at its
            // own timeout, holding this slot until then.
            if !pool.healthy(&lease.instance).await {
                pool.discard(&lease.instance).await;
            }
            rendering.await
        }
    };
    let outcome = match outcome {
        Ok((outcome, settings)) => {
            lease.settings = settings;
            outcome
        }
        Err(err) => Err(task_error(
            ErrorKind::Browser,
            true,
            format!("render failed: {err}"),
        )),
    };
    let instance = lease.instance.clone();
    match outcome {
        Ok(rendered) => {
            pool.give_back(lease, true).await;
            Ok(rendered)
        }
        Err(error) => {
            pool.give_back(lease, false).await;
            if pool.healthy(&instance).await {
                return Err(error);
            }
            pool.discard(&instance).await;
            Err(task_error(
                ErrorKind::Browser,
                true,
                format!(
                    "browser crashed or hung ({}); it is restarted",
                    error.message
                ),
            ))
        }
    }
}

/// The page of a render.
fn rendered_page(
    rendered: render::Rendered,
    options: &FetchOptions,
    started: Instant,
) -> Result<Page, TaskError> {
    let max_body = options.max_body.unwrap_or(DEFAULT_MAX_BODY);
    let body_len = rendered.html.len() as u64;
    if body_len > max_body {
        return Err(task_error(
            ErrorKind::TooBig,
            false,
            format!("body larger than {max_body} bytes"),
        ));
    }
    let content_type = rendered.content_type.to_ascii_lowercase();
    let text = if charset::is_extractable(&content_type, &options.content_types) {
        rendered.html
    } else {
        String::new()
    };
    Ok(Page {
        url: rendered.url,
        status: rendered.status,
        headers: vec![("content-type".to_owned(), content_type.clone())],
        content_type,
        encoding: "UTF-8".to_owned(),
        text,
        body_len,
        fetch_ms: http::elapsed_ms(started),
        script_result: rendered.script_result,
        screenshot_png_base64: rendered.screenshot_png_base64,
    })
}

/// The `User-Agent` a request sends: the task's, else the fetcher's default.
fn user_agent(headers: &HeaderMap, default: &str) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default)
        .to_owned()
}
