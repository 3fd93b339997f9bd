//! Which non-public addresses a project may reach: `allow_private = true` (all of them), or a
//! list of hosts and CIDR ranges (`allow_private = ["127.0.0.1/32", "intranet.local"]`).
//!
//! The fetcher's guard asks [`PrivateAccess::allows`] about every non-public address it meets
//! (an IP literal in a URL, every address a name resolves to, on every redirect hop). Public
//! addresses never need this: they are always allowed. An entry is either a CIDR range (or a
//! single address, taken as /32 or /128), which allows the addresses inside it whatever the
//! name, or a host name, which allows whatever addresses that exact name (ASCII case ignored,
//! a trailing dot ignored) resolves to. So a test that serves on 127.0.0.1 can allow
//! `127.0.0.1/32` and still refuse a link to 169.254.169.254.
//!
//! Invariant: [`parse_entry`] accepts exactly what the project file accepts, and a list that
//! reaches the fetcher with an entry it does not parse ignores that entry (fails closed).

use std::net::IpAddr;

/// One entry of an `allow_private` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrivateRange {
    /// Addresses whose first `prefix` bits are those of `addr` (host bits cleared).
    Net {
        /// The network address.
        addr: IpAddr,
        /// Length of the prefix in bits: at most 32 for IPv4, 128 for IPv6.
        prefix: u8,
    },
    /// Whatever this host name (lower-case, no trailing dot) resolves to.
    Host(String),
}

impl PrivateRange {
    /// Whether `ip`, reached through the name `host` (the URL's host), is inside this entry.
    pub fn contains(&self, host: Option<&str>, ip: IpAddr) -> bool {
        match self {
            PrivateRange::Net { addr, prefix } => in_net(*addr, *prefix, ip),
            PrivateRange::Host(name) => host.is_some_and(|h| {
                let h = h.trim_end_matches('.');
                h.eq_ignore_ascii_case(name)
            }),
        }
    }
}

impl std::fmt::Display for PrivateRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateRange::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            PrivateRange::Host(name) => f.write_str(name),
        }
    }
}

/// Reads one entry: `a.b.c.d/len`, `v6::addr/len`, a bare address (its /32 or /128), or a host
/// name (letters, digits, `-`, `.`, `_`). The error says what was expected.
pub fn parse_entry(text: &str) -> Result<PrivateRange, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "expected a host name or a CIDR range such as \"127.0.0.1/32\", found an empty string"
                .into(),
        );
    }
    if let Some((addr, prefix)) = text.split_once('/') {
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR range \"{text}\": `{addr}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            format!("invalid CIDR range \"{text}\": expected a prefix length from 0 to {max}")
        })?;
        return Ok(PrivateRange::Net {
            addr: mask(addr, prefix),
            prefix,
        });
    }
    if let Ok(addr) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Ok(PrivateRange::Net { addr, prefix });
    }
    let name = text.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(format!(
            "invalid entry \"{text}\": expected a host name or a CIDR range such as \"127.0.0.1/32\""
        ));
    }
    Ok(PrivateRange::Host(name))
}

/// What a fetch may reach besides public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum PrivateAccess {
    /// Public addresses only (`allow_private = false`, the default).
    #[default]
    Nothing,
    /// Every address (`allow_private = true`).
    All,
    /// The non-public addresses inside these entries (`allow_private = [...]`).
    Only(Vec<PrivateRange>),
}

impl PrivateAccess {
    /// From the wire form: `all` (`FetchOptions::allow_private`) wins; else the entries of
    /// `ranges` that parse (one that does not is ignored, which refuses more, never less).
    pub fn from_options(all: bool, ranges: &[String]) -> PrivateAccess {
        if all {
            return PrivateAccess::All;
        }
        let entries: Vec<PrivateRange> =
            ranges.iter().filter_map(|r| parse_entry(r).ok()).collect();
        if entries.is_empty() {
            PrivateAccess::Nothing
        } else {
            PrivateAccess::Only(entries)
        }
    }

    /// Whether the non-public address `ip`, reached through the name `host`, may be fetched.
    pub fn allows(&self, host: Option<&str>, ip: IpAddr) -> bool {
        match self {
            PrivateAccess::Nothing => false,
            PrivateAccess::All => true,
            PrivateAccess::Only(entries) => entries.iter().any(|e| e.contains(host, ip)),
        }
    }

    /// Whether every address is allowed (no check is needed at all).
    pub fn is_all(&self) -> bool {
        matches!(self, PrivateAccess::All)
    }
}

/// `addr` with the bits after `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// Whether `ip` is in `net/prefix`; an IPv4-mapped IPv6 address is judged as its IPv4 address.
fn in_net(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => mask(ip, prefix) == net,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address parses")
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let only = PrivateAccess::from_options(
            false,
            &[
                "127.0.0.1/32".into(),
                "10.1.0.0/16".into(),
                "fd00::/8".into(),
            ],
        );
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "10.1.255.255",
            "fd12::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(only.allows(None, ip(s)), "{s}");
        }
        for s in ["127.0.0.2", "169.254.169.254", "10.2.0.1", "fe80::1", "::1"] {
            assert!(!only.allows(Some("x.test"), ip(s)), "{s}");
        }
        assert!(PrivateAccess::All.allows(None, ip("169.254.169.254")));
        assert!(!PrivateAccess::Nothing.allows(None, ip("127.0.0.1")));
    }

    #[test]
    fn host_entries_allow_what_that_name_resolves_to() {
        let only = PrivateAccess::from_options(false, &["Intranet.Local.".into()]);
        assert!(only.allows(Some("intranet.local"), ip("10.0.0.5")));
        assert!(only.allows(Some("INTRANET.local."), ip("10.0.0.5")));
        assert!(!only.allows(Some("other.local"), ip("10.0.0.5")));
        assert!(!only.allows(None, ip("10.0.0.5")));
    }

    #[test]
    fn entries_parse_or_say_what_was_expected() {
        assert_eq!(
            parse_entry("192.168.1.77/24"),
            Ok(PrivateRange::Net {
                addr: ip("192.168.1.0"),
                prefix: 24
            })
        );
        assert_eq!(
            parse_entry("::1"),
            Ok(PrivateRange::Net {
                addr: ip("::1"),
                prefix: 128
            })
        );
        assert_eq!(
            parse_entry("0.0.0.0/0").map(|r| r.to_string()),
            Ok("0.0.0.0/0".into())
        );
        assert_eq!(
            parse_entry("localhost"),
            Ok(PrivateRange::Host("localhost".into()))
        );
        for (bad, says) in [
            ("127.0.0.1/33", "prefix length from 0 to 32"),
            ("::1/129", "from 0 to 128"),
            ("300.0.0.1/8", "not an IP address"),
            ("a b", "host name or a CIDR range"),
            ("", "empty string"),
        ] {
            let err = parse_entry(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        // An entry that does not parse allows nothing.
        assert_eq!(
            PrivateAccess::from_options(false, &["nope/1".into()]),
            PrivateAccess::Nothing
        );
        assert_eq!(PrivateAccess::from_options(true, &[]), PrivateAccess::All);
    }
}
