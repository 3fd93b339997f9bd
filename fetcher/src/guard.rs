//! Refusal of URLs a crawler must not reach: other schemes and non-public addresses.
//!
//! A project fetches arbitrary URLs found on arbitrary pages, so without a guard any page
//! could point the fetcher at the machine's own services, the LAN or a cloud metadata
//! endpoint. Two checks close that, and both run on every redirect hop:
//!
//! - [`check_url`] before a request: the scheme must be http(s), and a host written as an IP
//!   literal must be public (the resolver is never asked about literals).
//! - [`Resolver`] during connect: a name is resolved here and only its public addresses are
//!   handed to the connector, so a name that resolves (or re-resolves, DNS rebinding) to a
//!   private address cannot be connected to.
//!
//! The resolver reports its failures as [`ResolveError`], which the error mapping finds in
//! reqwest's error chain to tell a DNS failure and a refusal from other connect errors.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use spindle_common::message::{ErrorKind, TaskError};
use spindle_common::netrange::PrivateAccess;
use url::{Host, Url};

/// Whether `ip` is not a public unicast address: unspecified, "this network", loopback,
/// private (RFC 1918), shared (CGNAT), link-local, unique-local, site-local, benchmarking,
/// IETF protocol assignments, multicast, reserved or broadcast. IPv6 forms that embed an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by the embedded address.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // unspecified and "this network" (0.0.0.0/8)
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space, 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, where cloud metadata endpoints live
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18.0.0/15
        || a >= 224 // multicast (224/4), reserved (240/4) and broadcast
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    let seg = ip.segments();
    // An IPv4 address reachable through an IPv6 form is as private as the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    if seg[..6] == [0; 6] {
        // IPv4-compatible (deprecated, ::a.b.c.d) and everything else in ::/96.
        return is_private_v4(embedded_v4(seg[6], seg[7]));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix: the gateway connects to the embedded address.
        return is_private_v4(embedded_v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        // 6to4: the relay sends to the IPv4 address in bits 16..48.
        return is_private_v4(embedded_v4(seg[1], seg[2]));
    }
    (seg[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (seg[0] & 0xff00) == 0xff00 // multicast
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Checks a URL before it is requested: http or https, with a host, and no non-public IP
/// literal as host unless `access` allows it. Failures are `Refused`, not retryable.
pub fn check_url(url: &Url, access: &PrivateAccess) -> Result<(), TaskError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(format!(
            "unsupported scheme `{}` in {url}",
            url.scheme()
        )));
    }
    let ip = match url.host() {
        None => return Err(refused(format!("no host in {url}"))),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    if is_private(ip) && !access.allows(url.host_str(), ip) {
        return Err(refused(format!(
            "{ip} is not a public address ({})",
            not_allowed(access)
        )));
    }
    Ok(())
}

/// Why a non-public address is refused, for messages.
fn not_allowed(access: &PrivateAccess) -> &'static str {
    match access {
        PrivateAccess::Only(_) => "outside the project's allow_private hosts and ranges",
        PrivateAccess::Nothing | PrivateAccess::All => {
            "the project does not allow private addresses"
        }
    }
}

fn refused(message: String) -> TaskError {
    TaskError {
        kind: ErrorKind::Refused,
        message,
        retryable: false,
    }
}

/// A failure of [`Resolver`]; found again in reqwest's error chain by the error mapping.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The lookup itself failed (unknown name, no DNS server, ...).
    #[error("DNS lookup of `{host}` failed: {source}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// What the system resolver said.
        source: io::Error,
    },
    /// The name exists but has no address.
    #[error("`{host}` has no address")]
    NoAddress {
        /// The name looked up.
        host: String,
    },
    /// Every address of the name is non-public and the project does not allow that.
    #[error(
        "`{host}` resolves to {addr}, not a public address (the project does not allow it: `allow_private`)"
    )]
    Private {
        /// The name looked up.
        host: String,
        /// One of its (non-public) addresses.
        addr: IpAddr,
    },
}

impl ResolveError {
    /// The task failure this resolver failure means.
    pub fn to_task_error(&self) -> TaskError {
        match self {
            ResolveError::Lookup { .. } | ResolveError::NoAddress { .. } => TaskError {
                kind: ErrorKind::Dns,
                message: self.to_string(),
                retryable: true,
            },
            ResolveError::Private { .. } => refused(self.to_string()),
        }
    }
}

/// The DNS resolver of both HTTP clients: the system resolver (on tokio's blocking pool),
/// keeping public addresses and the non-public ones `access` allows.
#[derive(Debug, Clone)]
pub struct Resolver {
    access: PrivateAccess,
}

impl Resolver {
    /// A resolver that keeps the non-public addresses `access` allows.
    pub fn new(access: PrivateAccess) -> Self {
        Self { access }
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let access = self.access.clone();
        Box::pin(async move {
            let looked_up = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<SocketAddr>>);
            let addrs = match looked_up {
                Ok(addrs) => addrs,
                Err(source) => return Err(ResolveError::Lookup { host, source }.into()),
            };
            let addrs = filter_addrs(&host, addrs, &access)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Resolves `url`'s host (when it is a name) and refuses it unless some address is allowed:
/// the check for clients that resolve names themselves, such as the browser. A name can
/// still re-resolve differently by the time the browser looks it up (DNS rebinding); the
/// HTTP clients, which connect to what [`Resolver`] returned, do not have that gap.
pub async fn check_resolved(url: &Url, access: &PrivateAccess) -> Result<(), TaskError> {
    check_url(url, access)?;
    if access.is_all() {
        return Ok(());
    }
    let Some(Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    let looked_up = tokio::net::lookup_host((host, 0))
        .await
        .map(Iterator::collect::<Vec<SocketAddr>>)
        .map_err(|source| {
            ResolveError::Lookup {
                host: host.to_owned(),
                source,
            }
            .to_task_error()
        })?;
    filter_addrs(host, looked_up, access)
        .map(|_| ())
        .map_err(|err| err.to_task_error())
}

/// Keeps the addresses the policy allows. Dropping the private ones of a mixed answer (rather
/// than failing) is safe: the connector only ever sees what is returned here.
fn filter_addrs(
    host: &str,
    addrs: Vec<SocketAddr>,
    access: &PrivateAccess,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let Some(first) = addrs.first().copied() else {
        return Err(ResolveError::NoAddress {
            host: host.to_owned(),
        });
    };
    if access.is_all() {
        return Ok(addrs);
    }
    let public: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| !is_private(addr.ip()) || access.allows(Some(host), addr.ip()))
        .collect();
    if public.is_empty() {
        return Err(ResolveError::Private {
            host: host.to_owned(),
            addr: first.ip(),
        });
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address parses")
    }

    #[test]
    fn non_public_addresses_are_private() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_private(ip(s)), "{s} should be private");
        }
    }

    #[test]
    fn public_addresses_are_not_private() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.2.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(!is_private(ip(s)), "{s} should be public");
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL parses")
    }

    #[test]
    fn check_url_refuses_other_schemes_and_private_literals() {
        let access = |allow: bool| {
            if allow {
                PrivateAccess::All
            } else {
                PrivateAccess::Nothing
            }
        };
        for (u, allow) in [
            ("ftp://example.com/", true),
            ("file:///etc/passwd", true),
            ("http://127.0.0.1/", false),
            ("http://[::1]:8080/", false),
            ("http://[::ffff:7f00:1]/", false),
            ("http://0x7f.1/", false),
            ("https://169.254.169.254/latest/meta-data", false),
        ] {
            let err = check_url(&url(u), &access(allow)).expect_err(u);
            assert_eq!(err.kind, ErrorKind::Refused, "{u}");
            assert!(!err.retryable);
        }
        for (u, allow) in [
            ("http://example.com/", false),
            ("https://8.8.8.8/", false),
            ("http://127.0.0.1:3000/", true),
            ("http://localhost/", false), // names are the resolver's job
        ] {
            assert!(check_url(&url(u), &access(allow)).is_ok(), "{u}");
        }
    }

    #[test]
    fn ranges_open_only_their_addresses() {
        let only = PrivateAccess::from_options(false, &["127.0.0.1/32".into()]);
        assert!(check_url(&url("http://127.0.0.1:3000/"), &only).is_ok());
        for u in [
            "http://127.0.0.2/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
        ] {
            let err = check_url(&url(u), &only).expect_err(u);
            assert_eq!(err.kind, ErrorKind::Refused, "{u}");
            assert!(
                err.message.contains("allow_private hosts and ranges"),
                "{}",
                err.message
            );
        }
        let mixed = vec![sock("127.0.0.1"), sock("10.0.0.1"), sock("8.8.8.8")];
        assert_eq!(
            filter_addrs("h", mixed, &only).expect("allowed ones kept"),
            vec![sock("127.0.0.1"), sock("8.8.8.8")]
        );
        let err = filter_addrs("h", vec![sock("169.254.169.254")], &only).expect_err("metadata");
        assert_eq!(err.to_task_error().kind, ErrorKind::Refused);
        let named = PrivateAccess::from_options(false, &["localhost".into()]);
        assert_eq!(
            filter_addrs("LOCALHOST", vec![sock("127.0.0.1")], &named).expect("by name"),
            vec![sock("127.0.0.1")]
        );
        assert!(filter_addrs("other", vec![sock("127.0.0.1")], &named).is_err());
    }

    fn sock(s: &str) -> SocketAddr {
        SocketAddr::new(ip(s), 0)
    }

    #[test]
    fn resolver_filter_keeps_only_public_addresses() {
        let mixed = vec![sock("127.0.0.1"), sock("8.8.8.8")];
        assert_eq!(
            filter_addrs("h", mixed.clone(), &PrivateAccess::Nothing).expect("public one kept"),
            vec![sock("8.8.8.8")]
        );
        assert_eq!(
            filter_addrs("h", mixed.clone(), &PrivateAccess::All).expect("all kept"),
            mixed
        );
        let err = filter_addrs("h", vec![sock("10.0.0.1")], &PrivateAccess::Nothing)
            .expect_err("all private");
        assert_eq!(err.to_task_error().kind, ErrorKind::Refused);
        let err = filter_addrs("h", Vec::new(), &PrivateAccess::All).expect_err("empty");
        assert_eq!(err.to_task_error().kind, ErrorKind::Dns);
        assert!(err.to_task_error().retryable);
    }

    #[tokio::test]
    async fn resolved_names_are_checked_for_other_clients() {
        let err = check_resolved(&url("http://localhost:9/"), &PrivateAccess::Nothing)
            .await
            .expect_err("localhost is loopback");
        assert_eq!(err.kind, ErrorKind::Refused);
        check_resolved(&url("http://localhost:9/"), &PrivateAccess::All)
            .await
            .expect("allowed");
        let err = check_resolved(
            &url("http://no-such-host.invalid/"),
            &PrivateAccess::Nothing,
        )
        .await
        .expect_err("no such name");
        assert_eq!(err.kind, ErrorKind::Dns);
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_allowed() {
        let name: Name = "localhost".parse().expect("valid name");
        let err = match Resolver::new(PrivateAccess::Nothing).resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(err) => err,
        };
        let err = err
            .downcast_ref::<ResolveError>()
            .expect("resolver error type");
        assert!(matches!(err, ResolveError::Private { .. }), "{err}");

        let name: Name = "localhost".parse().expect("valid name");
        let addrs: Vec<SocketAddr> = Resolver::new(PrivateAccess::All)
            .resolve(name)
            .await
            .expect("localhost resolves")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
