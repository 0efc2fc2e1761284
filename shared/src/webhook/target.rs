//! Where a webhook may point: `https` to a public address. Refused at
//! registration and again before every attempt: addresses that are not
//! public (loopback, private, shared, link-local and the cloud metadata
//! address, unique-local, multicast, reserved, documentation; IPv4 inside
//! IPv6 by what it embeds), names that only resolve inside a network
//! (`localhost`, single labels, `.local`, `.internal`, ...), credentials in
//! the URL. The URL is parsed as browsers do (WHATWG), so `2130706433`,
//! `0x7f.1` and `0177.0.0.1` are 127.0.0.1 and refused as such. A host
//! that resolves names for us (the native one) has every address a name
//! resolves to checked too; Workers and Spin do not let a function resolve
//! (the README says what each enforces).
//!
//! `WEBHOOK_ALLOW_LOOPBACK=true`, a development setting, also allows
//! `http` and `https` to loopback (127.0.0.0/8, ::1, `localhost`), so a
//! receiver on the same machine can be tried; never in production.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The longest URL (the column's limit).
pub const MAX_URL: usize = 2048;

/// A URL that may be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
}

impl Target {
    /// The host name to resolve, if the URL names one (not an address).
    pub fn name(&self) -> Option<&str> {
        match self.url.host() {
            Some(Host::Domain(name)) => Some(name),
            _ => None,
        }
    }

    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }
}

/// How the audit trail names an endpoint's URL: its origin and the first
/// 12 hex digits of the whole URL's SHA-256. A URL's path and query often
/// carry a credential (a chat service's incoming-webhook token), and the
/// trail is kept for years and exported; the digest still tells two URLs
/// apart and matches the URL an admin holds.
pub fn audit_form(url: &str) -> String {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(url.as_bytes()));
    let origin = Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "?".into());
    format!("{origin}/… (sha256 {})", &digest[..12])
}

/// Checks `raw`; the error says why it is refused, for the person who
/// entered it.
pub fn check(raw: &str, allow_loopback: bool) -> Result<Target, String> {
    if raw.len() > MAX_URL {
        return Err(format!("Must be at most {MAX_URL} characters"));
    }
    let url = Url::parse(raw.trim()).map_err(|_| "Must be an absolute URL".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("Must not have a fragment (#...)".into());
    }
    let loopback = match url.host() {
        None => return Err("Must name a host".into()),
        Some(Host::Ipv4(ip)) => address(IpAddr::V4(ip), allow_loopback)?,
        Some(Host::Ipv6(ip)) => address(IpAddr::V6(ip), allow_loopback)?,
        Some(Host::Domain(name)) => domain(name, allow_loopback)?,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("Must be an https URL".into()),
    }
    Ok(Target { url })
}

/// Checks the addresses the target's name resolved to: every one must be
/// public.
pub fn check_resolved(addresses: &[IpAddr], allow_loopback: bool) -> Result<(), String> {
    for ip in addresses {
        address(*ip, allow_loopback).map_err(|why| format!("Its name resolves to {ip}: {why}"))?;
    }
    Ok(())
}

/// `Ok(true)` for an allowed loopback address, `Ok(false)` for a public
/// one.
fn address(ip: IpAddr, allow_loopback: bool) -> Result<bool, String> {
    if allow_loopback && is_loopback(ip) {
        return Ok(true);
    }
    if is_public(ip) {
        Ok(false)
    } else {
        Err("Must be a public address (not loopback, private, link-local or reserved)".into())
    }
}

fn domain(name: &str, allow_loopback: bool) -> Result<bool, String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local = name == "localhost" || name.ends_with(".localhost");
    if local && allow_loopback {
        return Ok(true);
    }
    const INTERNAL: &[&str] = &[
        ".local",
        ".localhost",
        ".localdomain",
        ".internal",
        ".intranet",
        ".lan",
        ".home",
        ".corp",
        ".home.arpa",
        ".arpa",
    ];
    if local || !name.contains('.') || INTERNAL.iter().any(|suffix| name.ends_with(suffix)) {
        return Err("Must be a public host name".into());
    }
    Ok(false)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network"
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // shared (carrier-grade NAT)
        || (a == 169 && b == 254)             // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 192 && b == 168)             // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // documentation
        || (a == 203 && b == 0 && c == 113)   // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) embed an IPv4
    // address in their last 32 bits; 6to4 (2002::/16) in bits 16..48.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0]      // IPv4-compatible (deprecated)
        || (s[0] & 0xfe00) == 0xfc00          // unique-local
        || (s[0] & 0xffc0) == 0xfe80          // link-local
        || (s[0] & 0xffc0) == 0xfec0          // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00          // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200)  // IETF protocols, Teredo
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_names_a_url_by_origin_and_digest() {
        let url = "https://hooks.example.com/services/T000/B000/XXXXSECRET?token=abc";
        let named = audit_form(url);
        assert!(
            named.starts_with("https://hooks.example.com/… (sha256 "),
            "{named}"
        );
        assert!(
            !named.contains("SECRET") && !named.contains("abc"),
            "{named}"
        );
        assert_ne!(
            named,
            audit_form("https://hooks.example.com/services/other")
        );
        assert_eq!(named, audit_form(url));
    }

    fn refused(url: &str) -> bool {
        check(url, false).is_err()
    }

    #[test]
    fn public_https_is_allowed() {
        assert!(check("https://hooks.example.com/antevus?lab=1", false).is_ok());
        assert!(check("https://93.184.216.34:8443/x", false).is_ok());
        assert!(check("https://[2606:4700::1111]/x", false).is_ok());
    }

    #[test]
    fn private_and_special_addresses_are_refused_however_spelled() {
        for url in [
            "https://127.0.0.1/",
            "https://127.1.2.3/",
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://[::]/",
            // Decimal, octal and hexadecimal spellings of 127.0.0.1 and
            // the metadata address.
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://0x7f.0.0.1/",
            "https://0x7f000001/",
            "https://2852039166/",
            "https://0251.0376.0251.0376/",
            "https://127.1/",
        ] {
            assert!(refused(url), "{url} was allowed");
        }
    }

    #[test]
    fn internal_names_schemes_and_credentials_are_refused() {
        for url in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://localhost/",
            "https://api.localhost/",
            "https://metadata.google.internal/",
            "https://printer.local/",
            "https://intranet/",
            "https://user:pass@hooks.example.com/",
            "https://hooks.example.com/#x",
            "not a url",
            "/relative",
        ] {
            assert!(refused(url), "{url} was allowed");
        }
        assert!(refused(&format!(
            "https://example.com/{}",
            "a".repeat(MAX_URL)
        )));
    }

    #[test]
    fn the_development_setting_allows_loopback_only() {
        assert!(check("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check("http://localhost:8080/hook", true).is_ok());
        assert!(check("http://[::1]:8080/hook", true).is_ok());
        assert!(check("http://10.0.0.1/hook", true).is_err());
        assert!(check("http://hooks.example.com/hook", true).is_err());
        assert!(check("http://127.0.0.1:8080/hook", false).is_err());
    }

    #[test]
    fn every_resolved_address_must_be_public() {
        let public: IpAddr = "93.184.216.34".parse().expect("an address");
        let private: IpAddr = "10.1.2.3".parse().expect("an address");
        assert!(check_resolved(&[public], false).is_ok());
        assert!(check_resolved(&[public, private], false).is_err());
    }
}
