//! Spindle's fetcher: takes tasks from the bus, downloads or renders them, and passes pages on.
//!
//! - [`fetch`]: [`Fetcher`], the fetch of one task: checks, robots.txt, then HTTP or browser.
//! - [`http`]: one HTTP exchange (manual redirects, cookies per hop, a capped body).
//! - [`request`]: the first request from the task's options (method, headers, user agent,
//!   conditional validators, raw, form or multipart body).
//! - [`proxy`]: HTTP clients per policy (proxy, certificate checks, connect timeout) and the
//!   proxy rotation over retries.
//! - [`session`]: cookies, and the per-project cookie jars.
//! - [`redirect`]: the next request of a redirect, with browser method and header rules.
//! - [`guard`]: refusal of other schemes and of loopback/private addresses, on every hop.
//! - [`robots`]: robots.txt rules, cached per origin; [`politeness`]: its crawl delay.
//! - [`browser`]: the owned Chromium process and its tab pool; [`render`]: one render.
//! - [`charset`]: choosing the body's encoding and decoding it to UTF-8.
//! - [`data_url`]: `data:` URLs decoded locally; [`sitemap`]: sitemap parsing;
//!   [`sitemap_task`]: a sitemap task's listed URLs as new tasks.
//! - [`service`]: [`run`], the bus loop with bounded concurrency and graceful shutdown.
//! - [`error`]: [`FetcherError`] for the component, [`TaskError`]s for one task.
//!
//! The fetcher never decides what a page means: any HTTP status comes back from
//! [`Fetcher::fetch`] as a page, and the service reports what is not worth processing. The
//! one body it reads itself is a sitemap's, for a sitemap task.
//!
//! It owns every network exchange with the sites (HTTP and Chromium), and nothing of state: it
//! depends on `spindle-common` only and must never depend on a store, a bus backend or
//! another role.

#![warn(missing_docs)]

pub mod browser;
pub mod charset;
pub mod config;
pub mod data_url;
pub mod error;
pub mod fetch;
pub mod guard;
pub mod http;
pub mod politeness;
pub mod proxy;
pub mod redirect;
pub mod render;
pub mod request;
pub mod robots;
pub mod service;
pub mod session;
pub mod sitemap;
pub mod sitemap_task;

pub use config::FetcherConfig;
pub use error::FetcherError;
pub use fetch::Fetcher;
pub use service::run;
pub use spindle_common::message::TaskError;
