//! The etcd backend of the cluster store, for clusters that span machines
//! (../shared/brief.md "cluster store"; research/rust-anchors.md §0 and §4 "Cluster
//! store"). Compiled only with the cargo feature `etcd`.
//!
//! Mapping of the [`Store`] trait onto etcd's v3 KV API (one etcd request per call):
//!
//! | trait | etcd |
//! |---|---|
//! | `get(key)` | `Range(<prefix><key>)`; the revision returned is the key's `mod_revision` |
//! | `list(p)` | `Range(<prefix><p>, with_prefix)`, sorted by key, the root prefix stripped |
//! | `txn(compares, ops)` | **one** `Txn`: [`Compare::Absent`] → `create_revision == 0`, [`Compare::ModRevision`] → `mod_revision == r`; puts and deletes in its success branch, no failure branch; returns `succeeded` |
//!
//! etcd has exactly the semantics [`crate::kv`] documents (each committed write
//! transaction bumps the store revision by one and stamps its keys with it; reads are
//! linearizable by default), so the reservation logic of [`crate::reservation`] runs
//! unchanged on it (research/rust-anchors.md §3.4: one transaction per change,
//! compare-create-revision-0 for "absent", compare-on-owner to release).
//!
//! Every key lives under a root prefix (default [`DEFAULT_PREFIX`], `/aksnet/`), so
//! aksnet can share an etcd cluster with other users, and tests can share one server.
//!
//! Why a tokio current-thread runtime inside a synchronous type: the [`Store`] trait
//! is synchronous (every caller is a short-lived CLI process), and the only etcd
//! client of weight in Rust, `etcd-client` (tonic/gRPC), is async. There is no
//! maintained synchronous etcd v3 client; a current-thread runtime driven by
//! `block_on` costs no extra threads and is created once per store.
//!
//! Every request is bounded by a timeout (default [`DEFAULT_TIMEOUT`], 5 s), so a
//! dead or partitioned etcd never hangs a command. When a request fails or times
//! out, each endpoint is probed with a plain TCP connect so the error can say
//! "connection refused" (branching on the `io::ErrorKind`, never on message text).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, GetOptions, KvClient, SortOrder,
    SortTarget, Txn, TxnOp,
};

use crate::kv::{validate_key, validate_txn, Compare, KeyValue, Op, Revision, Store, StoreError};

/// The scheme of a `--store` value that selects this backend.
pub const URL_SCHEME: &str = "etcd://";
/// Root prefix of every aksnet key in etcd.
pub const DEFAULT_PREFIX: &str = "/aksnet/";
/// Bound on every etcd request (and on connecting).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` of each client endpoint (plain HTTP/2; TLS is not supported yet).
    pub endpoints: Vec<String>,
    /// Prepended to every key; printable ASCII, not empty.
    pub prefix: String,
    pub timeout: Duration,
}

/// True when a `--store` value names etcd rather than a directory.
pub fn is_etcd_url(value: &str) -> bool {
    value.starts_with(URL_SCHEME)
}

impl EtcdConfig {
    /// Parses `etcd://host:port[,host:port...][/prefix/]`. The optional path sets the
    /// root prefix (`etcd://10.0.0.5:2379/prod/` keeps keys under `/prod/`); without
    /// one the prefix is [`DEFAULT_PREFIX`].
    pub fn from_url(url: &str) -> Result<Self, EtcdError> {
        let bad = |reason: String| EtcdError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix(URL_SCHEME)
            .ok_or_else(|| bad(format!("it does not start with {URL_SCHEME}")))?;
        let (hosts, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, DEFAULT_PREFIX.to_string()),
        };
        if hosts.is_empty() {
            return Err(bad(
                "no endpoint; expected etcd://host:port[,host:port...]".to_string()
            ));
        }
        let mut endpoints = Vec::new();
        for ep in hosts.split(',') {
            let (host, port) = ep.rsplit_once(':').ok_or_else(|| {
                bad(format!(
                    "endpoint {ep:?} has no port; expected host:port such as 127.0.0.1:2379"
                ))
            })?;
            if host.is_empty()
                || !host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
                })
            {
                return Err(bad(format!("endpoint {ep:?} has an invalid host {host:?}")));
            }
            match port.parse::<u16>() {
                Ok(p) if p != 0 => {}
                _ => {
                    return Err(bad(format!(
                        "endpoint {ep:?} has an invalid port {port:?} (1..=65535)"
                    )))
                }
            }
            endpoints.push(ep.to_string());
        }
        let cfg = Self {
            endpoints,
            prefix,
            timeout: DEFAULT_TIMEOUT,
        };
        cfg.check_prefix()
            .map_err(|reason| bad(reason.to_string()))?;
        Ok(cfg)
    }

    /// The config as a `--store` value (how errors name the store).
    pub fn url(&self) -> String {
        let mut u = format!("{URL_SCHEME}{}", self.endpoints.join(","));
        if self.prefix != DEFAULT_PREFIX {
            u.push_str(&self.prefix);
        }
        u
    }

    fn check_prefix(&self) -> Result<(), &'static str> {
        if self.prefix.is_empty() {
            return Err("the key prefix is empty");
        }
        if !self.prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the key prefix is not printable ASCII without spaces");
        }
        Ok(())
    }
}

/// Why an etcd request failed (the detail of a [`StoreError::Remote`] from this backend).
#[derive(Debug, thiserror::Error)]
pub enum EtcdFailure {
    #[error("no endpoint accepts connections ({0}); is etcd running and listening there?")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Rpc(#[source] etcd_client::Error),
}

impl EtcdFailure {
    fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Unreachable(_) => io::ErrorKind::ConnectionRefused,
            Self::Timeout(_) => io::ErrorKind::TimedOut,
            Self::Rpc(_) => io::ErrorKind::Other,
        }
    }
}

/// Errors of opening an etcd store.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("--store {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cluster store {url}: start the etcd client runtime: {source}")]
    Runtime {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("cluster store {url}: connect: {failure}")]
    Connect { url: String, failure: EtcdFailure },
}

/// The cluster store in etcd. See the module comment for the mapping.
pub struct EtcdStore {
    config: EtcdConfig,
    url: String,
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Opens a store from a `--store etcd://...` value.
    pub fn open(url: &str) -> Result<Self, EtcdError> {
        Self::connect(EtcdConfig::from_url(url)?)
    }

    /// Builds the client. etcd-client connects lazily, so an unreachable etcd is
    /// reported by the first request, within the timeout.
    pub fn connect(config: EtcdConfig) -> Result<Self, EtcdError> {
        let url = config.url();
        config.check_prefix().map_err(|r| EtcdError::InvalidUrl {
            url: url.clone(),
            reason: r.to_string(),
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| EtcdError::Runtime {
                url: url.clone(),
                source,
            })?;
        let endpoints: Vec<String> = config
            .endpoints
            .iter()
            .map(|e| format!("http://{e}"))
            .collect();
        // tonic's own timeouts are a backstop a little beyond ours, so that our
        // `tokio::time::timeout` fires first and the error says TimedOut.
        let backstop = config.timeout + Duration::from_secs(1);
        let options = ConnectOptions::new()
            .with_connect_timeout(backstop)
            .with_timeout(backstop);
        let client = runtime
            .block_on(async {
                tokio::time::timeout(config.timeout, Client::connect(endpoints, Some(options)))
                    .await
            })
            .map_err(|_| EtcdFailure::Timeout(config.timeout))
            .and_then(|r| r.map_err(EtcdFailure::Rpc))
            .map_err(|failure| EtcdError::Connect {
                url: url.clone(),
                failure,
            })?;
        Ok(Self {
            config,
            url,
            runtime,
            client,
        })
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// The store as a `--store` value.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.config.prefix)
    }

    /// Runs one request under the timeout; on failure, probes the endpoints so the
    /// error can say whether anything listens there.
    ///
    /// With several endpoints the client may route a request to one that is down
    /// (tonic's balancer does not skip refused endpoints). A request whose TCP
    /// connect was refused was never sent, so it is retried, within the same
    /// deadline, while the probe finds some endpoint listening. Nothing else is
    /// retried here: the callers' compare-and-swap loops handle lost races.
    fn request<T, F, M>(&self, op: &'static str, mut make: M) -> Result<T, StoreError>
    where
        M: FnMut(KvClient) -> F,
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        let timeout = self.config.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let failure = loop {
            let fut = make(self.client.kv_client());
            let failure = match self
                .runtime
                .block_on(async { tokio::time::timeout_at(deadline, fut).await })
            {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => EtcdFailure::Rpc(e),
                Err(_elapsed) => break EtcdFailure::Timeout(timeout),
            };
            let retry = matches!(&failure, EtcdFailure::Rpc(e) if connect_refused(e))
                && self.config.endpoints.len() > 1
                && tokio::time::Instant::now() + RETRY_PAUSE < deadline
                && probe_endpoints(&self.config.endpoints, timeout).is_none();
            if !retry {
                break failure;
            }
            std::thread::sleep(RETRY_PAUSE);
        };
        let failure = match probe_endpoints(&self.config.endpoints, timeout) {
            Some(unreachable) => EtcdFailure::Unreachable(unreachable),
            None => failure,
        };
        Err(StoreError::Remote {
            op,
            endpoint: self.url.clone(),
            source: io::Error::new(failure.kind(), failure),
        })
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: PathBuf::from(&self.url),
            detail,
        }
    }

    fn revision(&self, key: &[u8], rev: i64) -> Result<Revision, StoreError> {
        Revision::try_from(rev).map_err(|_| {
            self.corrupt(format!(
                "key {:?} has a negative revision {rev}",
                String::from_utf8_lossy(key)
            ))
        })
    }
}

/// Pause between attempts when an endpoint refused the connection.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// True when the error's cause chain holds a refused TCP connect (errno
/// ECONNREFUSED as `io::ErrorKind`, never the message text): the request was not sent.
fn connect_refused(e: &etcd_client::Error) -> bool {
    // etcd_client::Error does not expose its inner error as `source()`: start there.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match e {
        etcd_client::Error::GRpcStatus(status) => Some(status),
        etcd_client::Error::TransportError(t) => Some(t),
        etcd_client::Error::IoError(io) => Some(io),
        _ => None,
    };
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// `None` when at least one endpoint accepts a TCP connection; otherwise each
/// endpoint with why it does not.
fn probe_endpoints(endpoints: &[String], timeout: Duration) -> Option<String> {
    let per = timeout.min(Duration::from_secs(1));
    let mut why = Vec::new();
    for ep in endpoints {
        let addrs: Vec<SocketAddr> = match ep.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                why.push(format!("{ep}: cannot resolve: {e}"));
                continue;
            }
        };
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, per) {
                Ok(_) => return None,
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                why.push(format!("{ep}: connection refused"));
            }
            Some(e) if e.kind() == io::ErrorKind::TimedOut => {
                why.push(format!("{ep}: connect timed out after {per:?}"));
            }
            Some(e) => why.push(format!("{ep}: {e}")),
            None => why.push(format!("{ep}: resolves to no address")),
        }
    }
    Some(why.join("; "))
}

impl Store for EtcdStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        validate_key(key)?;
        let full = self.full_key(key);
        let resp = self.request("etcd range", |mut kv| {
            let full = full.clone();
            async move { kv.get(full, None).await }
        })?;
        match resp.kvs().first() {
            None => Ok(None),
            Some(kv) => Ok(Some((
                kv.value().to_vec(),
                self.revision(kv.key(), kv.mod_revision())?,
            ))),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        let full = self.full_key(prefix);
        let resp = self.request("etcd range", |mut kv| {
            let full = full.clone();
            let opts = GetOptions::new()
                .with_prefix()
                .with_sort(SortTarget::Key, SortOrder::Ascend);
            async move { kv.get(full, Some(opts)).await }
        })?;
        resp.kvs()
            .iter()
            .map(|kv| {
                let key = std::str::from_utf8(kv.key())
                    .ok()
                    .and_then(|k| k.strip_prefix(self.config.prefix.as_str()))
                    .ok_or_else(|| {
                        self.corrupt(format!(
                            "key {:?} is not UTF-8 under prefix {}",
                            String::from_utf8_lossy(kv.key()),
                            self.config.prefix
                        ))
                    })?;
                Ok(KeyValue {
                    key: key.to_string(),
                    value: kv.value().to_vec(),
                    create_revision: self.revision(kv.key(), kv.create_revision())?,
                    mod_revision: self.revision(kv.key(), kv.mod_revision())?,
                })
            })
            .collect()
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<bool, StoreError> {
        validate_txn(compares, ops)?;
        let mut when = Vec::with_capacity(compares.len());
        for c in compares {
            match c {
                Compare::Absent(k) => {
                    when.push(EtcdCompare::create_revision(
                        self.full_key(k),
                        CompareOp::Equal,
                        0,
                    ));
                }
                Compare::ModRevision(k, rev) => match i64::try_from(*rev) {
                    // No existing key has mod revision 0 (etcd would match an absent
                    // key) or one beyond i64: the compare cannot hold, as in kv::State.
                    Ok(r) if r > 0 => {
                        when.push(EtcdCompare::mod_revision(
                            self.full_key(k),
                            CompareOp::Equal,
                            r,
                        ));
                    }
                    _ => return Ok(false),
                },
            }
        }
        let then: Vec<TxnOp> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(self.full_key(key), value.clone(), None),
                Op::Delete { key } => TxnOp::delete(self.full_key(key), None),
            })
            .collect();
        let txn = Txn::new().when(when).and_then(then);
        let resp = self.request("etcd txn", |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })?;
        Ok(resp.succeeded())
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_endpoints_and_prefix() {
        let c = EtcdConfig::from_url("etcd://127.0.0.1:2379").expect("url");
        assert_eq!(c.endpoints, ["127.0.0.1:2379"]);
        assert_eq!(c.prefix, DEFAULT_PREFIX);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.url(), "etcd://127.0.0.1:2379");
        let c = EtcdConfig::from_url("etcd://a.example:2379,10.0.0.2:22379,[::1]:2379/prod/")
            .expect("url");
        assert_eq!(
            c.endpoints,
            ["a.example:2379", "10.0.0.2:22379", "[::1]:2379"]
        );
        assert_eq!(c.prefix, "/prod/");
        assert_eq!(
            c.url(),
            "etcd://a.example:2379,10.0.0.2:22379,[::1]:2379/prod/"
        );
        assert!(is_etcd_url("etcd://x:1"));
        assert!(!is_etcd_url("/var/lib/aksnet/cluster"));
    }

    #[test]
    fn bad_urls_name_the_value_and_the_problem() {
        for (url, want) in [
            ("http://127.0.0.1:2379", "does not start with etcd://"),
            ("etcd://", "no endpoint"),
            ("etcd://127.0.0.1", "has no port"),
            ("etcd://127.0.0.1:0", "invalid port"),
            ("etcd://127.0.0.1:99999", "invalid port"),
            ("etcd://127.0.0.1:x", "invalid port"),
            ("etcd://a b:2379", "invalid host"),
            ("etcd://:2379", "invalid host"),
            ("etcd://h:1,,h:2", "has no port"),
        ] {
            let e = EtcdConfig::from_url(url).unwrap_err().to_string();
            assert!(e.contains(&format!("{url:?}")), "{url}: {e}");
            assert!(e.contains(want), "{url}: {e}");
            assert!(e.starts_with("--store "), "{e}");
        }
    }
}
