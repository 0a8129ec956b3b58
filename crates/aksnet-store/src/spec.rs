//! What a `--store` value names, parsed without touching the network or the disk
//! (issue 17, "store URLs"). Compiled whatever the cargo features, so a build
//! without etcd still refuses a mistyped URL instead of making it a directory.
//!
//! Accepted forms (docs/node.md, "Store URLs"):
//!
//! | value | store |
//! |---|---|
//! | a path (`/var/lib/aksnet/cluster`, `./cluster`) | the embedded store in that directory |
//! | `etcd://[user[:password]@]host:port[,host:port...][/prefix/]` | etcd over plain HTTP/2 |
//! | `etcds://[user[:password]@]host:port[,host:port...][/prefix/]` | etcd over TLS |
//!
//! Anything else that looks like a URL (`scheme://...`: `http://`, `https://`,
//! `etcd+https://`) is an error naming the accepted forms: such a value used to
//! become a directory named `http:` and two nodes given one URL each allocated
//! alone.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Scheme of etcd over plain HTTP/2.
pub const ETCD_SCHEME: &str = "etcd://";
/// Scheme of etcd over TLS.
pub const ETCDS_SCHEME: &str = "etcds://";
/// Root prefix of every aksnet key in etcd.
pub const DEFAULT_PREFIX: &str = "/aksnet/";
/// Default whole-command deadline for the etcd store: every request of one command,
/// retries included, ends by then.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// Default bound of one attempt of one request on one endpoint. A frozen member or
/// a silent listener costs at most this before the next endpoint is tried.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// The accepted forms, for error messages.
pub const ACCEPTED_FORMS: &str = "a directory path (the embedded store), \
     etcd://[user[:password]@]host:port[,host:port...][/prefix/] (etcd), or \
     etcds://[user[:password]@]host:port[,host:port...][/prefix/] (etcd over TLS)";

/// A `--store` value that is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--store {value:?}: {reason}; accepted forms: {ACCEPTED_FORMS}")]
pub struct StoreUrlError {
    /// The value as given, with any password replaced by `***`.
    pub value: String,
    pub reason: String,
}

/// A password, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where and how to reach etcd. Plain data: the client lives in `etcd.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` of each client endpoint, in the order given (tried in that order).
    pub endpoints: Vec<String>,
    /// Prepended to every key; printable ASCII, not empty.
    pub prefix: String,
    /// `etcds://`: TLS to every endpoint.
    pub tls: bool,
    /// CA bundle that signs the servers' certificates (PEM); required with TLS.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for etcd's `--client-cert-auth`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// etcd authentication (`etcdctl --user`).
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Whole-command deadline.
    pub deadline: Duration,
    /// Bound of one attempt on one endpoint.
    pub attempt_timeout: Duration,
    /// After a write whose revision is a multiple of this, compact etcd's history
    /// to `compact_keep` revisions back; 0 leaves compaction to etcd's own
    /// `--auto-compaction-*` (docs/node.md, "Compaction").
    pub compact_every: u64,
    pub compact_keep: u64,
}

/// Default of [`EtcdConfig::compact_every`].
pub const DEFAULT_COMPACT_EVERY: u64 = 1000;
/// Default revisions of history kept by aksnet's compaction.
pub const COMPACT_KEEP: u64 = 1000;

/// What a `--store` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Embedded(PathBuf),
    Etcd(Box<EtcdConfig>),
}

/// True when `value` has the shape `scheme://...` (RFC 3986 scheme characters).
fn url_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once("://")?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then_some(scheme)
}

/// Parses a `--store` value.
pub fn parse_store(value: &str) -> Result<StoreSpec, StoreUrlError> {
    match url_scheme(value) {
        None if value.is_empty() => Err(StoreUrlError {
            value: String::new(),
            reason: "empty".into(),
        }),
        None => Ok(StoreSpec::Embedded(PathBuf::from(value))),
        Some("etcd" | "etcds") => EtcdConfig::from_url(value).map(|c| StoreSpec::Etcd(Box::new(c))),
        Some(scheme) => Err(StoreUrlError {
            value: redact(value),
            reason: format!("scheme {scheme}:// is not a store aksnet knows"),
        }),
    }
}

/// The value with the password of its `user:password@` part replaced by `***`.
fn redact(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_string();
    };
    let hosts_end = rest.find('/').unwrap_or(rest.len());
    match rest[..hosts_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => value.to_string(),
        },
        None => value.to_string(),
    }
}

impl EtcdConfig {
    /// A config with defaults for everything the URL does not say.
    fn new(endpoints: Vec<String>, prefix: String, tls: bool) -> Self {
        Self {
            endpoints,
            prefix,
            tls,
            ca_file: None,
            cert_file: None,
            key_file: None,
            user: None,
            password: None,
            deadline: DEFAULT_DEADLINE,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            compact_every: DEFAULT_COMPACT_EVERY,
            compact_keep: COMPACT_KEEP,
        }
    }

    /// Parses `etcd[s]://[user[:password]@]host:port[,host:port...][/prefix/]`. The
    /// optional path sets the root prefix (`etcd://10.0.0.5:2379/prod/` keeps keys
    /// under `/prod/`); without one the prefix is [`DEFAULT_PREFIX`].
    pub fn from_url(url: &str) -> Result<Self, StoreUrlError> {
        let bad = |reason: String| StoreUrlError {
            value: redact(url),
            reason,
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix(ETCD_SCHEME) {
            (false, r)
        } else if let Some(r) = url.strip_prefix(ETCDS_SCHEME) {
            (true, r)
        } else {
            return Err(bad("it does not start with etcd:// or etcds://".into()));
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, DEFAULT_PREFIX.to_string()),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let mut cfg = Self::new(parse_endpoints(hosts).map_err(bad)?, prefix, tls);
        if let Some(info) = userinfo {
            let (user, password) = match info.split_once(':') {
                Some((u, p)) => (u, Some(Secret(p.to_string()))),
                None => (info, None),
            };
            if user.is_empty() {
                return Err(bad("the user before '@' is empty".into()));
            }
            cfg.user = Some(user.to_string());
            cfg.password = password;
        }
        cfg.check_prefix().map_err(|r| bad(r.to_string()))?;
        Ok(cfg)
    }

    /// The config as a `--store` value, without credentials (how errors name it).
    pub fn url(&self) -> String {
        let scheme = if self.tls { ETCDS_SCHEME } else { ETCD_SCHEME };
        let mut u = format!("{scheme}{}", self.endpoints.join(","));
        if self.prefix != DEFAULT_PREFIX {
            u.push_str(&self.prefix);
        }
        u
    }

    pub(crate) fn check_prefix(&self) -> Result<(), &'static str> {
        if self.prefix.is_empty() {
            return Err("the key prefix is empty");
        }
        if !self.prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the key prefix is not printable ASCII without spaces");
        }
        Ok(())
    }
}

fn parse_endpoints(hosts: &str) -> Result<Vec<String>, String> {
    if hosts.is_empty() {
        return Err("no endpoint; expected etcd://host:port[,host:port...]".into());
    }
    let mut endpoints = Vec::new();
    for ep in hosts.split(',') {
        let (host, port) = ep.rsplit_once(':').ok_or_else(|| {
            format!("endpoint {ep:?} has no port; expected host:port such as 127.0.0.1:2379")
        })?;
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
            });
        if !host_ok {
            return Err(format!("endpoint {ep:?} has an invalid host {host:?}"));
        }
        match port.parse::<u16>() {
            Ok(p) if p != 0 => {}
            _ => {
                return Err(format!(
                    "endpoint {ep:?} has an invalid port {port:?} (1..=65535)"
                ))
            }
        }
        endpoints.push(ep.to_string());
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd(url: &str) -> EtcdConfig {
        match parse_store(url).expect("valid") {
            StoreSpec::Etcd(c) => *c,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn urls_parse_with_endpoints_prefix_tls_and_user() {
        let c = etcd("etcd://127.0.0.1:2379");
        assert_eq!(c.endpoints, ["127.0.0.1:2379"]);
        assert_eq!((c.prefix.as_str(), c.tls), (DEFAULT_PREFIX, false));
        assert_eq!(c.url(), "etcd://127.0.0.1:2379");
        let c = etcd("etcds://a.example:2379,10.0.0.2:22379,[::1]:2379/prod/");
        assert_eq!(
            c.endpoints,
            ["a.example:2379", "10.0.0.2:22379", "[::1]:2379"]
        );
        assert_eq!((c.prefix.as_str(), c.tls), ("/prod/", true));
        assert_eq!(
            c.url(),
            "etcds://a.example:2379,10.0.0.2:22379,[::1]:2379/prod/"
        );
        let c = etcd("etcd://root:s3:cr@t@h:1/p/");
        assert_eq!(c.user.as_deref(), Some("root"));
        assert_eq!(c.password, Some(Secret("s3:cr@t".into())));
        assert_eq!(
            c.url(),
            "etcd://h:1/p/",
            "the URL never carries credentials"
        );
        assert!(
            !format!("{c:?}").contains("s3:cr"),
            "Debug hides the password"
        );
        let c = etcd("etcd://alice@h:1");
        assert_eq!(
            (c.user.as_deref(), c.password.is_none()),
            (Some("alice"), true)
        );
        assert_eq!(
            parse_store("/var/lib/aksnet/cluster"),
            Ok(StoreSpec::Embedded("/var/lib/aksnet/cluster".into()))
        );
        assert_eq!(
            parse_store("rel/dir:x"),
            Ok(StoreSpec::Embedded("rel/dir:x".into()))
        );
    }

    #[test]
    fn other_schemes_and_bad_urls_name_the_value_and_the_accepted_forms() {
        for (url, want) in [
            ("http://127.0.0.1:2379", "scheme http://"),
            ("https://127.0.0.1:2379", "scheme https://"),
            ("etcd+https://127.0.0.1:2379", "scheme etcd+https://"),
            ("ETCD://127.0.0.1:2379", "scheme ETCD://"),
            ("etcd://", "no endpoint"),
            ("etcd://127.0.0.1", "has no port"),
            ("etcd://127.0.0.1:0", "invalid port"),
            ("etcd://127.0.0.1:99999", "invalid port"),
            ("etcds://127.0.0.1:x", "invalid port"),
            ("etcd://a b:2379", "invalid host"),
            ("etcd://:2379", "invalid host"),
            ("etcd://h:1,,h:2", "has no port"),
            ("etcd://@h:1", "user before '@' is empty"),
            ("", "empty"),
        ] {
            let e = parse_store(url).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--store {url:?}: ")), "{url}: {e}");
            assert!(e.contains(want), "{url}: {e}");
            assert!(e.contains("etcds://"), "names the accepted forms: {e}");
        }
        let e = parse_store("https://u:hunter2@h:1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("u:***@h:1"), "{e}");
    }
}
