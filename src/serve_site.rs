//! `spindle serve-site` (hidden): the generated bench site as a process of its own, which
//! `spindle bench` spawns so the site's CPU time and memory are not counted as the
//! crawler's.

use std::process::ExitCode;
use std::sync::Arc;

use crate::site::{Hits, PageSize, Site, SiteSpec};

/// Serves a site of `products` products with `pages`-sized detail pages on `bind`, printing
/// its base URL first (the parent reads it), until Ctrl-C or SIGTERM.
pub async fn command(products: u32, pages: PageSize, bind: &str) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("http://{}", listener.local_addr()?);
    let site = Arc::new(Site::new(SiteSpec::bench_sized(products, pages)));
    // It may be a container's only process: SIGTERM stops it (PID 1 has no default
    // handler).
    crate::site::serve(
        site,
        Arc::new(Hits::default()),
        listener,
        crate::shutdown::signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
