//! `spindle serve-hosts` (hidden): the many-host bench site as a process of its own, which
//! `spindle bench --hosts` spawns.

use std::process::ExitCode;
use std::time::Duration;

use crate::site::hosts::{HostsSite, HostsSpec};

/// Serves `hosts` loopback hosts of `products` products each, every answer after `delay`,
/// on one port of every address, printing the port first (the parent reads it).
pub async fn command(hosts: u32, products: u32, delay: Duration) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=64_770).contains(&hosts),
        "--hosts must be from 1 to 64770 (127.0.1.1 to 127.0.255.254)"
    );
    // Every address: one port serves every 127.0.x.y; the site refuses other peers.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
    let port = listener.local_addr()?.port();
    println!("{port}");
    let site = HostsSite::new(
        HostsSpec {
            hosts,
            products,
            delay,
        },
        port,
    );
    axum::serve(
        listener,
        site.router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
