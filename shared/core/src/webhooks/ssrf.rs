//! Which webhook URLs and addresses Orrery will call. Customers choose the URL, so a webhook is
//! a request from inside our network to wherever they point it: only public `https` endpoints
//! are allowed. The URL is checked at registration, and every address its host resolves to is
//! checked again at delivery (DNS rebinding). Local development reaches loopback receivers only
//! through explicit settings, off by default: `ORRERY_WEBHOOK_ALLOW_HTTP=true` and
//! `ORRERY_WEBHOOK_ALLOWLIST=<CIDR>,<CIDR>`; everything outside the allow-list stays refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

/// The longest URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    pub const fn v6(segments: [u16; 8], prefix: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

/// What may be called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Plain `http` too (local development only).
    pub allow_http: bool,
    /// Addresses allowed although they are not public (e.g. `127.0.0.0/8` for a local receiver).
    pub allowlist: Vec<Cidr>,
}

impl UrlPolicy {
    /// `ORRERY_WEBHOOK_ALLOW_HTTP` (`true`/`false`, default false) and `ORRERY_WEBHOOK_ALLOWLIST`
    /// (comma-separated CIDRs or addresses, default none).
    pub fn from_env() -> Result<Self, (&'static str, String)> {
        let allow_http = match std::env::var("ORRERY_WEBHOOK_ALLOW_HTTP") {
            Err(_) => false,
            Ok(value) => match value.trim() {
                "" | "false" | "0" => false,
                "true" | "1" => true,
                other => {
                    return Err((
                        "ORRERY_WEBHOOK_ALLOW_HTTP",
                        format!("{other:?} is not true or false"),
                    ));
                }
            },
        };
        let allowlist = match std::env::var("ORRERY_WEBHOOK_ALLOWLIST") {
            Err(_) => Vec::new(),
            Ok(value) => value
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(Cidr::from_str)
                .collect::<Result<_, _>>()
                .map_err(|reason| ("ORRERY_WEBHOOK_ALLOWLIST", reason))?,
        };
        Ok(Self {
            allow_http,
            allowlist,
        })
    }
}

/// Why a URL or address is refused; the message is safe to show the customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL is malformed: {0}")]
    Malformed(String),
    #[error("only https URLs are allowed")]
    Scheme,
    #[error("URLs with credentials (user:password@) are not allowed")]
    Credentials,
    #[error("{0}")]
    Host(String),
    #[error("{ip} is a {kind} address; webhooks only go to public addresses")]
    Address { ip: IpAddr, kind: &'static str },
}

/// Special-purpose IPv4 ranges (IANA registry) that are never called, with their kind.
const REFUSED_V4: [(Cidr, &str); 16] = [
    (Cidr::v4(0, 0, 0, 0, 8), "\"this network\""),
    (Cidr::v4(10, 0, 0, 0, 8), "private"),
    (Cidr::v4(100, 64, 0, 0, 10), "shared (CGNAT)"),
    (Cidr::v4(127, 0, 0, 0, 8), "loopback"),
    (Cidr::v4(169, 254, 0, 0, 16), "link-local"),
    (Cidr::v4(172, 16, 0, 0, 12), "private"),
    (Cidr::v4(192, 0, 0, 0, 24), "IETF protocol assignment"),
    (Cidr::v4(192, 0, 2, 0, 24), "documentation"),
    (Cidr::v4(192, 88, 99, 0, 24), "6to4 relay"),
    (Cidr::v4(192, 168, 0, 0, 16), "private"),
    (Cidr::v4(198, 18, 0, 0, 15), "benchmarking"),
    (Cidr::v4(198, 51, 100, 0, 24), "documentation"),
    (Cidr::v4(203, 0, 113, 0, 24), "documentation"),
    (Cidr::v4(224, 0, 0, 0, 4), "multicast"),
    (Cidr::v4(240, 0, 0, 0, 4), "reserved"),
    (Cidr::v4(255, 255, 255, 255, 32), "broadcast"),
];

/// Global unicast IPv6 is 2000::/3; these special ranges inside it are refused too.
const GLOBAL_V6: Cidr = Cidr::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
const REFUSED_V6: [(Cidr, &str); 4] = [
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignment (Teredo, benchmarking)",
    ),
    (
        Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation",
    ),
    (Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4"),
    (Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
];
/// NAT64 (RFC 6052): the last 32 bits are an IPv4 address, judged as such.
const NAT64: Cidr = Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

fn kind_of(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => REFUSED_V4
            .iter()
            .find(|(range, _)| range.contains(IpAddr::V4(v4)))
            .map(|(_, kind)| *kind),
        IpAddr::V6(v6) => {
            if NAT64.contains(IpAddr::V6(v6)) {
                let [.., a, b, c, d] = v6.octets();
                return kind_of(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            if v6.is_loopback() {
                return Some("loopback");
            }
            if v6.is_unspecified() {
                return Some("unspecified");
            }
            if v6.is_unicast_link_local() {
                return Some("link-local");
            }
            if v6.is_unique_local() {
                return Some("unique-local (private)");
            }
            if v6.is_multicast() {
                return Some("multicast");
            }
            if !GLOBAL_V6.contains(IpAddr::V6(v6)) {
                return Some("non-global");
            }
            REFUSED_V6
                .iter()
                .find(|(range, _)| range.contains(IpAddr::V6(v6)))
                .map(|(_, kind)| *kind)
        }
    }
}

/// Whether a resolved address may be called.
pub fn check_ip(ip: IpAddr, policy: &UrlPolicy) -> Result<(), Refusal> {
    let canonical = ip.to_canonical();
    if policy
        .allowlist
        .iter()
        .any(|range| range.contains(canonical) || range.contains(ip))
    {
        return Ok(());
    }
    match kind_of(ip) {
        None => Ok(()),
        Some(kind) => Err(Refusal::Address {
            ip: canonical,
            kind,
        }),
    }
}

/// Host names that are internal by definition, whatever they resolve to.
fn internal_name(domain: &str) -> Option<&'static str> {
    let name = domain.trim_end_matches('.').to_ascii_lowercase();
    let is = |suffix: &str| name == suffix || name.ends_with(&format!(".{suffix}"));
    if is("localhost") {
        Some("localhost is not a public host")
    } else if is("local") || is("internal") || is("localdomain") || is("home.arpa") {
        Some("internal (.local, .internal, .localdomain, .home.arpa) hosts are not allowed")
    } else if !name.contains('.') {
        Some("single-label host names are not public; use a fully qualified name")
    } else {
        None
    }
}

/// Checks a webhook URL at registration (and before each delivery): the scheme, no
/// credentials, a public host. Names are resolved only at delivery, where every address is
/// checked with [`check_ip`].
pub fn check_url(text: &str, policy: &UrlPolicy) -> Result<Url, Refusal> {
    if text.len() > MAX_URL_BYTES {
        return Err(Refusal::Malformed(format!(
            "longer than {MAX_URL_BYTES} bytes"
        )));
    }
    // The URL parser silently drops tabs and newlines and reads `\` as `/`: a URL that needs
    // them is not what it looks like.
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(Refusal::Malformed(
            "whitespace, control characters and backslashes are not allowed".into(),
        ));
    }
    let url = Url::parse(text).map_err(|e| Refusal::Malformed(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(Refusal::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    // For http(s) the parser normalises numeric hosts (`0x7f000001`, `2130706433`,
    // `0177.0.0.1`, `127.1`) to the address they mean, so the check below sees them.
    match url.host() {
        None => return Err(Refusal::Malformed("no host".into())),
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), policy)?,
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), policy)?,
        Some(Host::Domain(domain)) => {
            if let Some(reason) = internal_name(domain) {
                return Err(Refusal::Host(reason.into()));
            }
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Hostile URLs (`shared/core/data/webhooks/hostile-urls.json`), each refused by default.
    pub(crate) fn hostile_urls() -> Vec<String> {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../data/webhooks/hostile-urls.json")).unwrap();
        doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["urls"].as_array().unwrap().iter())
            .map(|url| url.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn hostile_urls_are_refused() {
        let policy = UrlPolicy::default();
        let hostile = hostile_urls();
        assert!(hostile.len() >= 30);
        for url in &hostile {
            assert!(check_url(url, &policy).is_err(), "{url:?} was accepted");
        }
    }

    #[test]
    fn refusals_say_why() {
        let policy = UrlPolicy::default();
        let refusal = check_url("https://0x7f000001/hook", &policy).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "127.0.0.1 is a loopback address; webhooks only go to public addresses"
        );
        assert_eq!(
            check_url("https://[::ffff:169.254.169.254]/", &policy).unwrap_err(),
            Refusal::Address {
                ip: "169.254.169.254".parse().unwrap(),
                kind: "link-local"
            }
        );
        assert_eq!(
            check_url("http://example.com/", &policy).unwrap_err(),
            Refusal::Scheme
        );
    }

    #[test]
    fn public_https_urls_are_accepted() {
        let policy = UrlPolicy::default();
        for url in [
            "https://example.com/hooks/orrery",
            "https://hooks.example.co.uk:8443/a?b=c",
            "https://93.184.215.14/hook",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
            "https://[64:ff9b::5db8:d70e]/hook",
            "https://EXAMPLE.com./hook",
        ] {
            assert!(check_url(url, &policy).is_ok(), "{url:?} was refused");
        }
    }

    #[test]
    fn local_receivers_need_both_explicit_settings() {
        let url = "http://127.0.0.1:8080/hook";
        let http_only = UrlPolicy {
            allow_http: true,
            allowlist: Vec::new(),
        };
        assert!(matches!(
            check_url(url, &http_only),
            Err(Refusal::Address { .. })
        ));
        let local = UrlPolicy {
            allow_http: true,
            allowlist: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(check_url(url, &local).is_ok());
        assert!(check_url("http://[::ffff:127.0.0.1]:8080/", &local).is_ok());
        // Everything outside the allow-list stays refused.
        for other in [
            "http://10.0.0.1/hook",
            "http://169.254.169.254/",
            "http://[::1]/hook",
            "http://localhost:8080/hook",
        ] {
            assert!(check_url(other, &local).is_err(), "{other}");
        }
    }

    #[test]
    fn resolved_addresses_are_checked_like_literal_ones() {
        let policy = UrlPolicy::default();
        for refused in [
            "10.1.2.3",
            "::1",
            "::ffff:192.168.0.1",
            "fd00::2",
            "100.100.100.100",
        ] {
            assert!(
                check_ip(refused.parse().unwrap(), &policy).is_err(),
                "{refused}"
            );
        }
        for public in ["1.1.1.1", "2606:4700:4700::1111"] {
            assert!(
                check_ip(public.parse().unwrap(), &policy).is_ok(),
                "{public}"
            );
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let single: Cidr = "::1".parse().unwrap();
        assert!(single.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
