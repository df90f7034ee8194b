//! Which `Host` an HTTP server of agentry answers: [`AllowedHosts`], the check against DNS
//! rebinding.
//!
//! A page on `http://evil.example:7878/` whose name its owner then points at 127.0.0.1 makes
//! the browser send its requests to a server on this machine, with `Host: evil.example:7878`,
//! and hand the answers to the page. A server that answers only the names it is really
//! reached by gives such a page nothing: loopback names and addresses (`localhost`,
//! `127.0.0.1`, `[::1]`, any port); beyond loopback, also the address it is bound to (any IP
//! address when bound to all of them: an address cannot be re-pointed as a name can); and
//! the names its user allows (`--allowed-host`). The MCP servers (`mcp serve --http`,
//! `proxy --http`) apply the same loopback rule through rmcp.
//!
//! It is logic on strings, here in the crate every other depends on, so that each crate
//! with a server (the viewer, the simulated model) checks the same way.
//!
//! # Example
//!
//! ```
//! use agentry_core::AllowedHosts;
//!
//! let local = AllowedHosts::for_bind("127.0.0.1".parse()?);
//! assert!(local.allows("127.0.0.1:7878") && local.allows("localhost") && local.allows("[::1]:80"));
//! assert!(!local.allows("evil.example:7878"));
//! let lan = AllowedHosts::for_bind("0.0.0.0".parse()?).allow("viewer.lan");
//! assert!(lan.allows("viewer.lan:7878") && lan.allows("192.168.1.20:7878"));
//! assert!(!lan.allows("evil.example:7878"));
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::net::{IpAddr, Ipv6Addr};

/// The `Host` headers a server answers (see the [module](self) for the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    bind: IpAddr,
    /// Names (lowercase) and ports the user allows; no port: any.
    names: Vec<(String, Option<u16>)>,
}

impl AllowedHosts {
    /// What a server bound to `bind` answers: loopback names and addresses; beyond
    /// loopback, also `bind` (any IP address when `bind` is unspecified, `0.0.0.0` or `::`).
    pub fn for_bind(bind: IpAddr) -> Self {
        Self {
            bind,
            names: Vec::new(),
        }
    }

    /// Also answers `host`: a name or an address, with a port (only that port) or without
    /// (any). Something that cannot be a host is left out ([`AllowedHosts::is_host`]).
    #[must_use]
    pub fn allow(mut self, host: &str) -> Self {
        if let Some(entry) = authority(host).or_else(|| bare_ip(host)) {
            self.names.push(entry);
        }
        self
    }

    /// Whether `text` can be given to [`AllowedHosts::allow`]: `name`, `name:port`, an IP
    /// address, `[v6]:port`.
    pub fn is_host(text: &str) -> bool {
        authority(text).or_else(|| bare_ip(text)).is_some()
    }

    /// Whether a request whose `Host` header is `host` may be answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = authority(host) else {
            return false;
        };
        if name == "localhost" {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            if ip.is_loopback() {
                return true;
            }
            if !self.bind.is_loopback() && (self.bind.is_unspecified() || ip == self.bind) {
                return true;
            }
        }
        self.names
            .iter()
            .any(|(n, p)| *n == name && (*p).is_none_or(|p| Some(p) == port))
    }
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`, as (lowercase name, port); `None` for
/// anything else.
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim();
    let (name, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                more => Some(more.strip_prefix(':')?.parse::<u16>().ok()?),
            };
            let ip: Ipv6Addr = inside.parse().ok()?;
            return Some((ip.to_string(), port));
        }
        None => match text.split_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().ok()?)),
            None => (text, None),
        },
    };
    let fits = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    fits.then(|| (name.to_ascii_lowercase(), port))
}

/// A bare IP address (an IPv6 one has no brackets), any port.
fn bare_ip(text: &str) -> Option<(String, Option<u16>)> {
    text.trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| (ip.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_pass_and_other_names_do_not() {
        let local = AllowedHosts::for_bind(IpAddr::from([127, 0, 0, 1]));
        for ok in [
            "127.0.0.1:7878",
            "127.0.0.1",
            "localhost",
            "LOCALHOST:1",
            "[::1]",
            "[::1]:8089",
            "127.8.9.10:80",
        ] {
            assert!(local.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7878",
            "localhost.evil.example",
            "192.168.1.20:7878",
            "127.0.0.1:notaport",
            "127.0.0.1:",
            "::1",
            "[::1",
            "a b",
            "",
            "user@127.0.0.1",
        ] {
            assert!(!local.allows(bad), "{bad}");
        }
    }

    #[test]
    fn beyond_loopback_the_bind_address_and_allowed_names_pass() {
        let one = AllowedHosts::for_bind(IpAddr::from([192, 168, 1, 20]))
            .allow("viewer.lan")
            .allow("other.lan:9000")
            .allow("not a host");
        assert!(one.allows("192.168.1.20:7878"));
        assert!(!one.allows("192.168.1.21:7878"));
        assert!(one.allows("Viewer.LAN:7878") && one.allows("viewer.lan"));
        assert!(one.allows("other.lan:9000") && !one.allows("other.lan:9001"));
        assert!(!one.allows("evil.example"));
        let all = AllowedHosts::for_bind(IpAddr::from([0, 0, 0, 0]));
        assert!(all.allows("10.1.2.3:7878") && all.allows("[fe80::1]:7878"));
        assert!(!all.allows("evil.example:7878"));
        // On loopback an address is not enough, a name allowed by the user is.
        let local = AllowedHosts::for_bind(IpAddr::from([127, 0, 0, 1])).allow("::1");
        assert!(!local.allows("10.1.2.3"));
        assert!(AllowedHosts::is_host("fe80::1") && AllowedHosts::is_host("a.b:1"));
        assert!(!AllowedHosts::is_host("a/b") && !AllowedHosts::is_host("a:b"));
    }
}
