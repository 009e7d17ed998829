//! The allow-list of hosts an action may reach.

use std::fmt;

/// One entry of `allow`: a host name (or IP literal), optionally with a
/// port; a leading `*.` matches every subdomain; `*` alone matches any host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// Lower-case host; for wildcards the suffix after `*.`, with its dot.
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com` is stored as `.example.com`.
    Suffix(String),
}

impl AllowEntry {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port`, `*.domain[:port]` or `*`.
    pub fn parse(entry: &str) -> Result<AllowEntry, String> {
        let bad = |why: &str| format!("invalid allow entry '{entry}': {why}");
        let e = entry.trim().to_ascii_lowercase();
        if e.is_empty() {
            return Err(bad("empty"));
        }
        if e.contains("://") || e.contains('/') {
            return Err(bad("give a host or host:port, not a URL"));
        }
        let (host, port) = if let Some(rest) = e.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(|| bad("missing ']'"))?;
            let host = format!("[{}]", &rest[..end]);
            match &rest[end + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(|| bad("expected ':port' after ']'"))?.to_string())),
            }
        } else {
            match e.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h.to_string(), Some(p.to_string())),
                Some(_) => return Err(bad("write IPv6 addresses in brackets, as [::1]")),
                None => (e.clone(), None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("the port must be a number from 0 to 65535"))?),
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(bad("a wildcard is written *.example.com"));
            }
            HostPattern::Suffix(format!(".{domain}"))
        } else if host.contains('*') {
            return Err(bad("a wildcard is written *.example.com"));
        } else if host.is_empty() {
            return Err(bad("empty host"));
        } else {
            HostPattern::Exact(host)
        };
        Ok(AllowEntry { host, port })
    }

    /// Whether `host` (lower-case, IPv6 in brackets) on `port` matches.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => write!(f, "*")?,
            HostPattern::Exact(h) => write!(f, "{h}")?,
            HostPattern::Suffix(s) => write!(f, "*{s}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// Which hosts may be reached: any (no `allow` configured) or a list.
#[derive(Debug, Clone)]
pub enum Allow {
    /// No `allow` setting: every host is allowed.
    Any,
    /// Only these; an empty list allows nothing.
    List(Vec<AllowEntry>),
}

impl Allow {
    /// `Ok` if `host:port` may be reached, else the error for the action.
    pub fn check(&self, host: &str, port: u16) -> Result<(), String> {
        match self {
            Allow::Any => Ok(()),
            Allow::List(list) if list.iter().any(|e| e.matches(host, port)) => Ok(()),
            Allow::List(list) => {
                let allowed = if list.is_empty() {
                    "the allow list is empty".to_string()
                } else {
                    let names: Vec<String> = list.iter().map(|e| e.to_string()).collect();
                    format!("allowed: {}", names.join(", "))
                };
                Err(format!("http: host {host}:{port} is not allowed by the plugin's allow list ({allowed})"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Allow {
        Allow::List(entries.iter().map(|e| AllowEntry::parse(e).unwrap()).collect())
    }

    #[test]
    fn hosts_ports_and_wildcards() {
        let a = allow(&["API.example.com", "127.0.0.1:8080", "*.internal", "[::1]:9000"]);
        assert!(a.check("api.example.com", 443).is_ok());
        assert!(a.check("api.example.com", 80).is_ok());
        assert!(a.check("example.com", 443).is_err());
        assert!(a.check("127.0.0.1", 8080).is_ok());
        assert!(a.check("127.0.0.1", 8081).is_err());
        assert!(a.check("db.internal", 5432).is_ok());
        assert!(a.check("a.b.internal", 1).is_ok());
        assert!(a.check("internal", 1).is_err());
        assert!(a.check("notinternal", 1).is_err());
        assert!(a.check("[::1]", 9000).is_ok());
        assert!(a.check("[::1]", 9001).is_err());
        assert!(Allow::Any.check("anything", 1).is_ok());
        assert!(allow(&["*"]).check("anything", 1).is_ok());
        assert!(allow(&["*:443"]).check("anything", 80).is_err());
    }

    #[test]
    fn errors_name_the_host_and_the_list() {
        let e = allow(&["a.com", "b.com:8080"]).check("evil.com", 80).unwrap_err();
        assert_eq!(e, "http: host evil.com:80 is not allowed by the plugin's allow list (allowed: a.com, b.com:8080)");
        let e = allow(&[]).check("a.com", 80).unwrap_err();
        assert!(e.contains("the allow list is empty"), "{e}");
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in
            ["", "http://a.com", "a.com/x", "a.com:http", "a.com:70000", "::1", "[::1", "*a.com", "*.", "a.*.com"]
        {
            assert!(AllowEntry::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
