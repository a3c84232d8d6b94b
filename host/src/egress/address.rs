//! Which IP addresses egress may connect to, and the DNS resolver that enforces it.
//!
//! A plugin names hosts; DNS (which the plugin's author may control) turns them into addresses.
//! Only public unicast addresses are reachable, unless the operator configured the exact origin
//! (a provider base URL or `SWITCHYARD_EGRESS_ORIGINS`). The check runs inside the resolver that
//! the HTTP client connects with, on the very addresses it then connects to, so a name cannot
//! resolve to a public address when checked and to a private one when used (DNS rebinding).
//! IP-literal URLs skip DNS in the client; [`is_public`] is checked for them before sending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 ranges that are not the public internet (IANA special-purpose registry, RFC 6890 and
/// successors) plus cloud metadata services that sit on otherwise public addresses.
const BLOCKED_V4: &[Ipv4Net] = &[
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", unspecified
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8), // private
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10), // CGNAT (Alibaba metadata 100.100.100.200)
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),   // loopback
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16), // link-local (AWS/GCP/Azure 169.254.169.254)
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),  // private
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments (Oracle 192.0.0.192)
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), // private
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4),  // multicast
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4),  // reserved, broadcast
    Ipv4Net::new_assert(Ipv4Addr::new(168, 63, 129, 16), 32), // Azure WireServer
];

/// IPv6 ranges that are not the public internet. Ranges that embed an IPv4 address
/// (IPv4-mapped, NAT64, 6to4) are judged by the embedded address instead, in [`is_public`].
const BLOCKED_V6: &[Ipv6Net] = &[
    Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128),
    Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128),
    Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // IPv4-compatible (deprecated)
    Ipv6Net::new_assert(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local (AWS fd00:ec2::254)
    Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    Ipv6Net::new_assert(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// NAT64 well-known prefix (RFC 6052): the last 32 bits are an IPv4 address.
const NAT64: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
/// Local-use NAT64 prefix (RFC 8215): translated to whatever the operator's network routes.
const NAT64_LOCAL: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48);
/// 6to4 (RFC 3056): bits 16..48 are an IPv4 address.
const SIX_TO_FOUR: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);

/// True when `ip` is a public unicast address egress may connect to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !BLOCKED_V4.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if NAT64.contains(&v6) {
                return is_public(IpAddr::V4(embedded_v4(s[6], s[7])));
            }
            if SIX_TO_FOUR.contains(&v6) {
                return is_public(IpAddr::V4(embedded_v4(s[1], s[2])));
            }
            !NAT64_LOCAL.contains(&v6) && !BLOCKED_V6.iter().any(|net| net.contains(&v6))
        }
    }
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Why the resolver gave the client no address: every address of the name is non-public.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to addresses egress may not reach (private, loopback, link-local or metadata)"
)]
pub struct AddressRefused {
    /// The name that was resolved.
    pub host: String,
}

/// Keep the public addresses of `host`; refuse when none is left.
pub fn keep_public(
    host: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, AddressRefused> {
    let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public(a.ip())).collect();
    if public.is_empty() {
        return Err(AddressRefused {
            host: host.to_string(),
        });
    }
    Ok(public)
}

/// The system resolver, filtered by [`keep_public`]: the client connects only to what it returns.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: the client puts the URL's port on every address it gets back.
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public = keep_public(&host, found)?;
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn internal_and_metadata_ranges_are_refused() {
        for s in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "168.63.129.16",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.192",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for s in [
            "157.240.22.35",
            "54.172.60.0",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2a03:2880:f12f:83:face:b00c:0:25de",
            "::ffff:157.240.22.35",
            "64:ff9b::9df0:1623",
            "2002:9df0:1623::",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn a_name_that_resolves_to_both_keeps_only_the_public_address() {
        // A rebinding answer: one public and one loopback address for the same name.
        let answer = [
            SocketAddr::new(ip("127.0.0.1"), 443),
            SocketAddr::new(ip("157.240.22.35"), 443),
            SocketAddr::new(ip("::ffff:169.254.169.254"), 443),
        ];
        let kept = keep_public("rebind.example", answer).expect("one public");
        assert_eq!(kept, vec![SocketAddr::new(ip("157.240.22.35"), 443)]);
        let err = keep_public("evil.example", [SocketAddr::new(ip("10.0.0.5"), 443)])
            .expect_err("only private");
        assert_eq!(err.host, "evil.example");
    }
}
