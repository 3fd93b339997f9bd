//! A sitemap task ([`FetchOptions::sitemap`]): the URLs its sitemap lists, as new tasks.
//!
//! The service fetches a sitemap task with [`Fetcher::fetch_raw`] (a `.xml.gz` is binary:
//! its decoded page would be empty), [`read`]s the body here, and publishes the tasks as
//! `NewTasks` in batches of [`TASKS_PER_MESSAGE`], then the task's outcome, so the scheduler
//! has queued them by the time it hears that the sitemap is done.
//!
//! The listed URLs are taken like start URLs:
//!
//! - resolved against the sitemap's URL (after redirects), http(s) only, normalized with the
//!   project's `keep_params`, at most [`DEFAULT_MAX_URL_LENGTH`] bytes;
//! - on the project's site ([`SitemapOptions::hosts`], same host or a subdomain, as for a
//!   follow's `same_site`): a sitemap lists the pages of its own site (sitemaps.org), and a
//!   crawl started from one does not wander off it;
//! - deduplicated within the sitemap (the scheduler dedupes against what it knows).
//!
//! A listed page becomes a task for the sitemap task's callback at depth 0, with default
//! options (the scheduler merges the project's in), as a start URL does. A listed child
//! sitemap becomes a sitemap task with the same options, callback and `force` (a forced
//! restart reads the whole tree again), one level deeper.
//!
//! Bounds of the work one sitemap task can make: its body is capped like any page
//! (`max_body`), inflated to at most [`sitemap::MAX_UNCOMPRESSED`] bytes, and lists at most
//! [`sitemap::MAX_URLS`] entries; sitemaps nest at most [`MAX_SITEMAP_DEPTH`] levels below
//! the project's own (the protocol allows none: an index lists only `<urlset>`s).
//!
//! [`FetchOptions::sitemap`]: spindle_common::message::FetchOptions::sitemap
//! [`Fetcher::fetch_raw`]: crate::Fetcher::fetch_raw

use std::collections::HashSet;

use spindle_common::Task;
use spindle_common::cpu::{CpuStage, measure};
use spindle_common::message::{ErrorKind, SitemapOptions, TaskError};
use spindle_common::project::{DEFAULT_MAX_URL_LENGTH, sitemap_task};
use spindle_common::urlnorm;
use url::Url;

use crate::error::task_error;
use crate::http::RawPage;
use crate::sitemap::{self, Sitemap, SitemapError};

/// Depth from which a sitemap's child sitemaps are no longer followed. The project's
/// sitemaps are at depth 0 and each child one deeper, so an index may list indexes (depth
/// 1), whose sitemaps (depth 2) are read for their pages only.
pub const MAX_SITEMAP_DEPTH: u32 = 2;

/// Most tasks in one `NewTasks` message: a sitemap lists up to 50 000 URLs, and the
/// scheduler admits one message at a time.
pub const TASKS_PER_MESSAGE: usize = 1_000;

/// The tasks a sitemap lists, and how many entries were left out and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    /// Child sitemaps first, then pages, each in document order.
    pub tasks: Vec<Task>,
    /// Child sitemap tasks among `tasks`.
    pub sitemaps: usize,
    /// Page tasks among `tasks`.
    pub pages: usize,
    /// Entries on another site than the project's.
    pub off_site: usize,
    /// Entries that are not usable http(s) URLs, or longer than the cap.
    pub unusable: usize,
    /// Entries listed twice (or a sitemap listing itself).
    pub repeated: usize,
    /// Child sitemaps not followed: the sitemap is [`MAX_SITEMAP_DEPTH`] deep already.
    pub too_deep: usize,
}

/// Reads the fetched body of sitemap task `task` and lists its tasks; the parse runs on the
/// blocking pool (a sitemap may inflate to 50 MiB of XML). A body that is not a readable
/// sitemap fails the task: retryably when it is corrupt (a sitemap being rewritten, or cut
/// short, reads so; the next attempt may see it whole), for good when it is too big.
pub async fn read(
    task: &Task,
    options: &SitemapOptions,
    page: RawPage,
) -> Result<Listed, TaskError> {
    let (task, options) = (task.clone(), options.clone());
    let work = move || {
        measure(CpuStage::Fetch, || {
            let content_type = Some(page.content_type.as_str()).filter(|t| !t.is_empty());
            let sitemap = sitemap::parse(&page.body, content_type).map_err(parse_error)?;
            // The final URL (after redirects) is what relative entries are relative to.
            let base = Url::parse(&page.url)
                .or_else(|_| Url::parse(&task.url))
                .map_err(|err| {
                    task_error(ErrorKind::Refused, false, format!("invalid URL: {err}"))
                })?;
            Ok(list(&task, &options, &base, sitemap))
        })
    };
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|err| {
            Err(task_error(
                ErrorKind::Process,
                false,
                format!("reading the sitemap failed: {err}"),
            ))
        })
}

/// The task error of a body that is no readable sitemap.
fn parse_error(err: SitemapError) -> TaskError {
    match err {
        SitemapError::TooBig => task_error(ErrorKind::TooBig, false, err.to_string()),
        SitemapError::Gzip(_) | SitemapError::Xml { .. } => task_error(
            ErrorKind::Process,
            true,
            format!("unreadable sitemap: {err}"),
        ),
    }
}

/// The tasks `sitemap` lists, read for sitemap task `task` whose final URL is `base`.
pub fn list(task: &Task, options: &SitemapOptions, base: &Url, sitemap: Sitemap) -> Listed {
    let hosts: Vec<String> = if options.hosts.is_empty() {
        base.host_str().map(str::to_owned).into_iter().collect()
    } else {
        options.hosts.clone()
    };
    let mut listed = Listed::default();
    // The sitemap itself counts as seen: an index listing itself is no loop.
    let mut seen: HashSet<String> = HashSet::from([task.taskid.clone()]);
    let admit = |raw: &str, listed: &mut Listed| -> Option<String> {
        let Some(url) = urlnorm::resolve(base, raw, &options.keep_params) else {
            listed.unusable += 1;
            return None;
        };
        if !urlnorm::same_site(&url, &hosts) {
            listed.off_site += 1;
            return None;
        }
        let url = String::from(url);
        if url.len() > DEFAULT_MAX_URL_LENGTH {
            listed.unusable += 1;
            return None;
        }
        Some(url)
    };

    if task.depth >= MAX_SITEMAP_DEPTH {
        listed.too_deep = sitemap.sitemaps.len();
    } else {
        for raw in &sitemap.sitemaps {
            let Some(url) = admit(raw, &mut listed) else {
                continue;
            };
            let mut child = sitemap_task(&task.project, &url, &task.callback, options.clone());
            child.depth = task.depth + 1;
            child.force = task.force;
            if seen.insert(child.taskid.clone()) {
                listed.tasks.push(child);
                listed.sitemaps += 1;
            } else {
                listed.repeated += 1;
            }
        }
    }
    for raw in &sitemap.urls {
        let Some(url) = admit(raw, &mut listed) else {
            continue;
        };
        let page = Task::new(&task.project, &url, &task.callback);
        if !seen.insert(page.taskid.clone()) {
            listed.repeated += 1;
            continue;
        }
        listed.tasks.push(page);
        listed.pages += 1;
    }
    listed
}

#[cfg(test)]
mod tests {
    use spindle_common::message::FetchOptions;

    use super::*;

    fn options() -> SitemapOptions {
        SitemapOptions {
            hosts: vec!["shop.example".into()],
            keep_params: vec!["ref".into()],
        }
    }

    fn root() -> Task {
        sitemap_task(
            "shop",
            "https://shop.example/sitemap.xml",
            "start",
            options(),
        )
    }

    fn base() -> Url {
        Url::parse("https://shop.example/sitemap.xml").expect("URL")
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pages_become_start_tasks_and_child_sitemaps_sitemap_tasks() {
        let mut task = root();
        task.force = true;
        let sitemap = Sitemap {
            urls: strings(&[
                "https://shop.example/a?utm_source=x&ref=1#top",
                "/b",
                "https://www.shop.example/c",
                "https://shop.example/a?ref=1",
                "https://elsewhere.example/d",
                "ftp://shop.example/e",
                &format!(
                    "https://shop.example/{}",
                    "x".repeat(DEFAULT_MAX_URL_LENGTH)
                ),
            ]),
            sitemaps: strings(&[
                "https://shop.example/products.xml.gz",
                "https://shop.example/sitemap.xml",
                "https://cdn.elsewhere.example/s.xml",
            ]),
        };
        let listed = list(&task, &options(), &base(), sitemap);
        let urls: Vec<&str> = listed.tasks.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://shop.example/products.xml.gz",
                "https://shop.example/a?ref=1",
                "https://shop.example/b",
                "https://www.shop.example/c",
            ]
        );
        assert_eq!((listed.sitemaps, listed.pages, listed.off_site), (1, 3, 2));
        assert_eq!(
            (listed.unusable, listed.repeated, listed.too_deep),
            (2, 2, 0)
        );

        let child = &listed.tasks[0];
        assert_eq!(
            child.taskid,
            urlnorm::fingerprint("sitemap:https://shop.example/products.xml.gz")
        );
        assert_eq!(child.fetch.sitemap, Some(options()));
        assert_eq!((child.depth, child.force), (1, true));
        assert_eq!(child.callback, "start");

        let page = &listed.tasks[1];
        assert_eq!(page.taskid, urlnorm::fingerprint(&page.url));
        assert_eq!(page.callback, "start");
        assert_eq!((page.depth, page.force), (0, false));
        assert_eq!(page.fetch, FetchOptions::default());
        assert_eq!(page.project, "shop");
    }

    #[test]
    fn nesting_stops_at_the_depth_limit() {
        let mut task = root();
        task.depth = MAX_SITEMAP_DEPTH;
        let sitemap = Sitemap {
            urls: strings(&["https://shop.example/p"]),
            sitemaps: strings(&["https://shop.example/deeper.xml"]),
        };
        let listed = list(&task, &options(), &base(), sitemap);
        assert_eq!((listed.sitemaps, listed.pages, listed.too_deep), (0, 1, 1));
    }

    #[test]
    fn without_hosts_the_sitemap_is_the_site() {
        let no_hosts = SitemapOptions::default();
        let sitemap = Sitemap {
            urls: strings(&["https://shop.example/p", "https://other.example/q"]),
            sitemaps: Vec::new(),
        };
        let listed = list(&root(), &no_hosts, &base(), sitemap);
        assert_eq!((listed.pages, listed.off_site), (1, 1));
    }

    #[tokio::test]
    async fn unreadable_bodies_fail_the_task() {
        let page = |body: &[u8]| RawPage {
            url: "https://shop.example/sitemap.xml".into(),
            status: 200,
            headers: Vec::new(),
            content_type: "application/xml".into(),
            body: body.to_vec(),
            fetch_ms: 1,
        };
        let err = read(&root(), &options(), page(b"<urlset><url><loc>x</url>"))
            .await
            .expect_err("malformed");
        assert_eq!((err.kind, err.retryable), (ErrorKind::Process, true));
        assert!(err.message.starts_with("unreadable sitemap: "), "{err:?}");

        let err = read(&root(), &options(), page(&[0x1f, 0x8b, 8, 0, 1]))
            .await
            .expect_err("corrupt gzip");
        assert_eq!(err.kind, ErrorKind::Process);

        let listed = read(
            &root(),
            &options(),
            page(b"<urlset><url><loc>/a</loc></url></urlset>"),
        )
        .await
        .expect("readable");
        assert_eq!(listed.tasks[0].url, "https://shop.example/a");
    }
}
