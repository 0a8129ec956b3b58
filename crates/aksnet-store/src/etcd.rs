//! The etcd backend of the cluster store, for clusters that span machines
//! (docs/node.md, "The etcd backend" and "Production"). Compiled only with the cargo
//! feature `etcd`.
//!
//! Mapping of the [`Store`] trait onto etcd's v3 KV API:
//!
//! | trait | etcd |
//! |---|---|
//! | `get(key)` | `Range(<prefix><key>)`; the revision returned is the key's `mod_revision` |
//! | `list_keys(p)` | the same, keys only, 10,000 keys a page |
//! | `list(p)` | `Range(<prefix><p>..)` in pages of [`PAGE_KEYS`] keys, every page at the first page's revision (one consistent snapshot, each response far below gRPC's 4 MiB message limit) |
//! | `txn(compares, ops)` | **one** `Txn`: [`Compare::Absent`] → `create_revision == 0`, [`Compare::ModRevision`] → `mod_revision == r`; puts and deletes in its success branch; returns `succeeded` |
//!
//! etcd has exactly the semantics [`crate::kv`] documents (one revision per committed
//! write transaction, linearizable reads), so the reservation logic of
//! [`crate::reservation`] runs unchanged on it.
//!
//! **Fault tolerance** (issue 17). One gRPC client per endpoint, tried in the order
//! given, starting from the last one that answered. Each attempt is bounded by
//! [`EtcdConfig::attempt_timeout`]; transient failures (refused or broken
//! connections, `Unavailable` such as "leader changed" or "no leader", per-attempt
//! timeouts) move to the next endpoint, and after a round over all endpoints the
//! store backs off (50 ms doubling to 800 ms) and goes round again until the
//! whole-command deadline ([`EtcdConfig::deadline`], from the moment the store was
//! opened). A frozen member or a listener that never answers therefore costs one
//! attempt timeout, not the command.
//!
//! **Retrying writes is safe** because every transaction aksnet sends carries a
//! compare that its own application falsifies (a node key must be absent, or a
//! key must still be at the revision read): if an attempt whose answer was lost
//! did commit, the retry's compares fail and the caller re-reads and finds its own
//! change. When the deadline passes after an attempt that may have been applied,
//! the error says so ([`WriteOutcome::Unknown`]).
//!
//! Why a tokio current-thread runtime inside a synchronous type: the [`Store`]
//! trait is synchronous (every caller is a short-lived CLI process), and the only
//! etcd client of weight in Rust, `etcd-client` (tonic/gRPC), is async; a
//! current-thread runtime driven by `block_on` costs no extra threads.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare as EtcdCompare, CompareOp, ConnectOptions, GetOptions, Identity,
    KvClient, PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use tokio::time::Instant;

use crate::kv::{
    validate_key, validate_txn, Compare, KeyValue, LeaseId, Op, Revision, Store, StoreError,
    WriteOutcome,
};
pub use crate::spec::{EtcdConfig, DEFAULT_PREFIX, ETCDS_SCHEME, ETCD_SCHEME};

/// Keys per page of a `list`: a node record at maxPods 250 is about 4 KB, so a
/// page stays near 2 MB, half of gRPC's default 4 MiB receive limit.
pub const PAGE_KEYS: i64 = 500;
/// Pause after a round over every endpoint failed; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(800);

/// True when a `--store` value names etcd rather than a directory.
pub fn is_etcd_url(value: &str) -> bool {
    value.starts_with(ETCD_SCHEME) || value.starts_with(ETCDS_SCHEME)
}

/// Errors of opening an etcd store (before any request).
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error(transparent)]
    InvalidUrl(#[from] crate::spec::StoreUrlError),
    #[error("--store {url}: {reason}")]
    InvalidConfig { url: String, reason: String },
    #[error("{flag} {}: {source}", path.display())]
    TlsFile {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cluster store {url}: start the etcd client runtime: {source}")]
    Runtime {
        url: String,
        #[source]
        source: io::Error,
    },
}

/// How one attempt failed.
enum Failure {
    /// Worth another attempt (maybe on another endpoint). `sent`: the request may
    /// have reached etcd (false only when the connection was refused).
    Transient { why: String, sent: bool },
    /// Retrying cannot help (bad credentials, permission denied, bad request).
    Permanent(etcd_client::Error),
}

/// The cluster store in etcd. See the module comment.
pub struct EtcdStore {
    config: EtcdConfig,
    url: String,
    runtime: tokio::runtime::Runtime,
    options: ConnectOptions,
    /// One lazily connected client per endpoint, in `config.endpoints` order.
    clients: RefCell<Vec<Option<Client>>>,
    /// The endpoint that answered last: the next request starts there.
    preferred: Cell<usize>,
    deadline: Cell<Instant>,
    /// Retries taken by this store (for logs and tests).
    retries: Cell<u32>,
    /// Failed attempts of requests that then succeeded, for [`Store::take_retry_note`].
    retried: RefCell<Vec<String>>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::TlsFile {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// TLS and auth options for every endpoint's client; checks the combination.
fn connect_options(config: &EtcdConfig, url: &str) -> Result<ConnectOptions, EtcdError> {
    let bad = |reason: &str| EtcdError::InvalidConfig {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let backstop = config.attempt_timeout + Duration::from_secs(1);
    let mut options = ConnectOptions::new()
        .with_connect_timeout(backstop)
        .with_timeout(backstop);
    let any_tls_file =
        config.ca_file.is_some() || config.cert_file.is_some() || config.key_file.is_some();
    if !config.tls && any_tls_file {
        return Err(bad(
            "--etcd-cacert/--etcd-cert/--etcd-key need an etcds:// store URL (TLS)",
        ));
    }
    if config.tls {
        let ca = config.ca_file.as_deref().ok_or_else(|| {
            bad("etcds:// needs --etcd-cacert (or ETCDCTL_CACERT): the CA that signs the etcd servers' certificates")
        })?;
        let mut tls =
            TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem("--etcd-cacert", ca)?));
        match (&config.cert_file, &config.key_file) {
            (Some(c), Some(k)) => {
                tls = tls.identity(Identity::from_pem(
                    read_pem("--etcd-cert", c)?,
                    read_pem("--etcd-key", k)?,
                ));
            }
            (None, None) => {}
            _ => return Err(bad("--etcd-cert and --etcd-key go together")),
        }
        options = options.with_tls(tls);
    }
    match (&config.user, &config.password) {
        (Some(u), Some(p)) => options = options.with_user(u.clone(), p.0.clone()),
        (Some(u), None) => {
            return Err(bad(&format!(
                "user {u:?} has no password (user:password@ in the URL, --etcd-password-file, or ETCDCTL_PASSWORD)"
            )))
        }
        (None, Some(_)) => return Err(bad("a password without a user")),
        (None, None) => {}
    }
    Ok(options)
}

impl EtcdStore {
    /// Opens a store from a `--store etcd[s]://...` value with default options.
    pub fn open(url: &str) -> Result<Self, EtcdError> {
        Self::connect(EtcdConfig::from_url(url)?)
    }

    /// Builds the clients (lazily connected: an unreachable etcd is reported by the
    /// first request) and starts the whole-command deadline.
    pub fn connect(config: EtcdConfig) -> Result<Self, EtcdError> {
        let url = config.url();
        config
            .check_prefix()
            .map_err(|r| EtcdError::InvalidConfig {
                url: url.clone(),
                reason: r.to_string(),
            })?;
        let options = connect_options(&config, &url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| EtcdError::Runtime {
                url: url.clone(),
                source,
            })?;
        let deadline = Instant::now() + config.deadline;
        Ok(Self {
            clients: RefCell::new(vec![None; config.endpoints.len()]),
            config,
            url,
            runtime,
            options,
            preferred: Cell::new(0),
            deadline: Cell::new(deadline),
            retries: Cell::new(0),
            retried: RefCell::new(Vec::new()),
        })
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// The store as a `--store` value (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a new deadline of [`EtcdConfig::deadline`] from now: a long-lived user
    /// (the agent) calls this before each unit of work; a CLI command never does.
    pub fn restart_deadline(&self) {
        self.deadline.set(Instant::now() + self.config.deadline);
    }

    /// Attempts that failed transiently and were retried, so far.
    pub fn retries(&self) -> u32 {
        self.retries.get()
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.config.prefix)
    }

    /// The client of endpoint `i`, connecting it (and authenticating) if needed.
    async fn client(&self, i: usize) -> Result<Client, etcd_client::Error> {
        if let Some(Some(c)) = self.clients.borrow().get(i) {
            return Ok(c.clone());
        }
        let scheme = if self.config.tls { "https" } else { "http" };
        let ep = format!("{scheme}://{}", self.config.endpoints[i]);
        let c = Client::connect([ep], Some(self.options.clone())).await?;
        if let Some(slot) = self.clients.borrow_mut().get_mut(i) {
            *slot = Some(c.clone());
        }
        Ok(c)
    }

    /// Runs one request with retries across endpoints until the deadline (see the
    /// module comment). `write`: the error says whether the outcome is known.
    pub(crate) fn request<T, F, M>(
        &self,
        op: &'static str,
        write: bool,
        mut make: M,
    ) -> Result<T, StoreError>
    where
        M: FnMut(Client) -> F,
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.config.endpoints.len();
        let mut log = Attempts::default();
        let mut backoff = FIRST_BACKOFF;
        let deadline = self.deadline.get();
        loop {
            for step in 0..n {
                let i = (self.preferred.get() + step) % n;
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let per = self.config.attempt_timeout.min(deadline - now);
                let attempt = async {
                    let c = self.client(i).await?;
                    make(c).await
                };
                let failure = match self
                    .runtime
                    .block_on(async { tokio::time::timeout(per, attempt).await })
                {
                    Ok(Ok(v)) => {
                        self.preferred.set(i);
                        self.retried.borrow_mut().append(&mut log.failures);
                        return Ok(v);
                    }
                    Ok(Err(e)) => classify(e),
                    Err(_) => {
                        log.timed_out = true;
                        Failure::Transient {
                            why: format!("no answer within {} ms", per.as_millis()),
                            sent: true,
                        }
                    }
                };
                match failure {
                    Failure::Permanent(e) => {
                        return Err(self.remote(op, io::ErrorKind::Other, e.to_string(), None))
                    }
                    Failure::Transient { why, sent } => {
                        let ep = &self.config.endpoints[i];
                        tracing::debug!(endpoint = %ep, %why, op, "etcd attempt failed; retrying");
                        self.retries.set(self.retries.get() + 1);
                        log.record(ep, why, sent);
                    }
                }
            }
            if Instant::now() + backoff >= deadline {
                break;
            }
            self.runtime
                .block_on(async { tokio::time::sleep(backoff).await });
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Err(log.into_error(self, op, write))
    }

    /// Keeps etcd's history bounded (issue 17): every guard bump is a new
    /// revision of the guard key, and etcd 3.4 keeps every revision until it is
    /// compacted (it does not compact by default; the database then grows to its
    /// 2 GB quota and refuses writes). After each write whose revision is a
    /// multiple of `compact_every`, compact to `compact_keep` revisions back, as
    /// kube-apiserver compacts the etcd it uses. Best effort: the write already
    /// committed, so a failure (another client compacted further) is only logged.
    fn maybe_compact(&self, revision: i64) {
        let every = self.config.compact_every;
        let Ok(rev) = u64::try_from(revision) else {
            return;
        };
        let keep = self.config.compact_keep;
        if every == 0 || rev % every != 0 || rev <= keep {
            return;
        }
        let Ok(target) = i64::try_from(rev - keep) else {
            return;
        };
        let r = self.request("etcd compact", false, |c| {
            let mut kv = c.kv_client();
            async move { kv.compact(target, None).await }
        });
        match r {
            Ok(_) => tracing::debug!(target, "compacted etcd history"),
            Err(e) => tracing::warn!(target, error = %e, "etcd compaction failed"),
        }
    }

    fn remote(
        &self,
        op: &'static str,
        kind: io::ErrorKind,
        detail: String,
        outcome: Option<WriteOutcome>,
    ) -> StoreError {
        StoreError::Remote {
            op,
            endpoint: self.url.clone(),
            source: io::Error::new(kind, detail),
            outcome,
        }
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

    fn to_kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
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
    }

    /// One page of `[from, end)` at `revision` (0: the current one).
    fn page(
        &self,
        from: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
        keys_only: bool,
    ) -> Result<etcd_client::GetResponse, StoreError> {
        let limit = if keys_only { PAGE_KEYS * 20 } else { PAGE_KEYS };
        self.request("etcd range", false, |c| {
            let (from, end) = (from.clone(), end.clone());
            let mut kv: KvClient = c.kv_client();
            let mut opts = GetOptions::new()
                .with_range(end)
                .with_limit(limit)
                .with_revision(revision);
            if keys_only {
                opts = opts.with_keys_only();
            }
            async move { kv.get(from, Some(opts)).await }
        })
    }

    /// Every key-value under `prefix`, paged at one revision (see the module comment).
    fn scan(&self, prefix: &str, keys_only: bool) -> Result<Vec<KeyValue>, StoreError> {
        let full = self.full_key(prefix).into_bytes();
        let end = prefix_end(&full);
        let mut out = Vec::new();
        let mut from = full;
        let mut revision = 0;
        loop {
            let resp = self.page(from, end.clone(), revision, keys_only)?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            for kv in resp.kvs() {
                out.push(self.to_kv(kv)?);
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(out),
            }
        }
    }
}

/// The failed attempts of one request.
#[derive(Default)]
struct Attempts {
    failures: Vec<String>,
    maybe_sent: bool,
    timed_out: bool,
    refused: usize,
}

impl Attempts {
    fn record(&mut self, endpoint: &str, why: String, sent: bool) {
        self.maybe_sent |= sent;
        self.refused += usize::from(!sent);
        self.failures.push(format!("{endpoint}: {why}"));
    }

    /// The error after the deadline: which endpoints failed how, and for a write
    /// whether it may have been applied.
    fn into_error(self, store: &EtcdStore, op: &'static str, write: bool) -> StoreError {
        let kind = if self.timed_out || self.failures.is_empty() {
            io::ErrorKind::TimedOut
        } else if self.refused == self.failures.len() {
            io::ErrorKind::ConnectionRefused
        } else {
            io::ErrorKind::Other
        };
        let outcome = write.then_some(if self.maybe_sent {
            WriteOutcome::Unknown
        } else {
            WriteOutcome::NotApplied
        });
        let detail = if self.failures.is_empty() {
            format!(
                "the command's deadline of {:?} passed before this request (a longer \
                 --store-timeout gives large stores more time)",
                store.config.deadline
            )
        } else {
            format!(
                "no endpoint answered within the {:?} deadline ({} failed attempt(s): {})",
                store.config.deadline,
                self.failures.len(),
                summarize(&self.failures)
            )
        };
        store.remote(op, kind, detail, outcome)
    }
}

/// Repeated failures of one endpoint collapse into one entry with a count.
fn summarize(failures: &[String]) -> String {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for f in failures {
        match seen.iter_mut().find(|(s, _)| *s == f.as_str()) {
            Some((_, n)) => *n += 1,
            None => seen.push((f, 1)),
        }
    }
    seen.iter()
        .map(|(f, n)| {
            if *n > 1 {
                format!("{f} (x{n})")
            } else {
                f.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Transient or permanent, from gRPC status codes and I/O error kinds (never the
/// message text). etcd answers "leader changed", "no leader" and "request timed
/// out" with `Unavailable` (etcd's api/v3rpc/rpctypes/error.go).
fn classify(e: etcd_client::Error) -> Failure {
    use etcd_client::Error as E;
    let refused = connect_refused(&e);
    match &e {
        E::GRpcStatus(status) => match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Aborted
            | tonic::Code::Unknown => Failure::Transient {
                why: if refused {
                    "connection refused".to_string()
                } else {
                    format!("{} ({:?})", status.message(), status.code())
                },
                sent: !refused,
            },
            _ => Failure::Permanent(e),
        },
        E::TransportError(_) | E::IoError(_) => Failure::Transient {
            why: if refused {
                "connection refused".to_string()
            } else {
                e.to_string()
            },
            sent: !refused,
        },
        _ => Failure::Permanent(e),
    }
}

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

/// The first key after every key starting with `prefix` (etcd's "prefix end").
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Store for EtcdStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        validate_key(key)?;
        let full = self.full_key(key);
        let resp = self.request("etcd range", false, |c| {
            let full = full.clone();
            let mut kv = c.kv_client();
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
        self.scan(prefix, false)
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .scan(prefix, true)?
            .into_iter()
            .map(|kv| kv.key)
            .collect())
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
                Op::PutWithLease { key, value, lease } => TxnOp::put(
                    self.full_key(key),
                    value.clone(),
                    Some(PutOptions::new().with_lease(*lease)),
                ),
                Op::Delete { key } => TxnOp::delete(self.full_key(key), None),
            })
            .collect();
        let txn = Txn::new().when(when).and_then(then);
        let resp = self.request("etcd txn", true, |c| {
            let txn = txn.clone();
            let mut kv = c.kv_client();
            async move { kv.txn(txn).await }
        })?;
        if resp.succeeded() {
            if let Some(h) = resp.header() {
                self.maybe_compact(h.revision());
            }
        }
        Ok(resp.succeeded())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        let full = self.full_key("");
        let resp = self.request("etcd range", false, |c| {
            let full = full.clone();
            let mut kv = c.kv_client();
            let opts = GetOptions::new().with_prefix().with_count_only();
            async move { kv.get(full, Some(opts)).await }
        })?;
        Ok(resp.count() == 0)
    }

    fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let secs =
            i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX);
        let resp = self.request("etcd lease grant", true, |c| {
            let mut lease = c.lease_client();
            async move { lease.grant(secs, None).await }
        })?;
        Ok(resp.id())
    }

    /// One keep-alive round trip on etcd's LeaseKeepAlive stream; etcd answers
    /// TTL 0 (or less) for a lease that expired or never existed.
    fn keep_alive(&self, id: LeaseId) -> Result<Option<i64>, StoreError> {
        let resp = self.request("etcd lease keep-alive", false, |c| {
            let mut lease = c.lease_client();
            async move {
                // etcd-client sends the first keep-alive itself and reports an
                // expired lease (TTL <= 0 in etcd's answer) as LeaseKeepAliveError.
                let (mut keeper, mut stream) = match lease.keep_alive(id).await {
                    Ok(pair) => pair,
                    Err(etcd_client::Error::LeaseKeepAliveError(_)) => return Ok(None),
                    Err(e) => return Err(e),
                };
                keeper.keep_alive().await?;
                Ok(stream.message().await?.map(|r| r.ttl()))
            }
        })?;
        Ok(resp.filter(|ttl| *ttl > 0))
    }

    fn restart_deadline(&self) {
        EtcdStore::restart_deadline(self);
    }

    /// An etcd watch on the key from `after + 1`, on the endpoint that answered
    /// last: returns at the first event (or when etcd cancels the watch, e.g. its
    /// start revision was compacted) or at the timeout. A failing watch waits out
    /// the timeout instead: the caller's next read does the retrying and reporting.
    fn wait_for_change(
        &self,
        key: &str,
        after: Revision,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        validate_key(key)?;
        let full = self.full_key(key);
        let start = i64::try_from(after).unwrap_or(i64::MAX - 1) + 1;
        let t0 = Instant::now();
        let i = self.preferred.get();
        let watch = async {
            let c = self.client(i).await?;
            let mut w = c.watch_client();
            let opts = WatchOptions::new().with_start_revision(start);
            let mut stream = w.watch(full, Some(opts)).await?;
            while let Some(resp) = stream.message().await? {
                if !resp.events().is_empty() || resp.canceled() {
                    break;
                }
            }
            Ok::<(), etcd_client::Error>(())
        };
        let r = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, watch).await });
        if let Ok(Err(e)) = r {
            tracing::debug!(error = %e, "etcd watch failed; waiting out the timeout");
            let left = timeout.saturating_sub(t0.elapsed());
            self.runtime
                .block_on(async { tokio::time::sleep(left).await });
        }
        Ok(())
    }

    fn retries_so_far(&self) -> u64 {
        u64::from(self.retries())
    }

    fn take_retry_note(&self) -> Option<String> {
        let failures = std::mem::take(&mut *self.retried.borrow_mut());
        (!failures.is_empty()).then(|| {
            format!(
                "{} failed etcd attempt(s) retried on other endpoints: {}",
                failures.len(),
                summarize(&failures)
            )
        })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/aksnet/nodes/"), b"/aksnet/nodes0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn repeated_failures_are_counted_once() {
        let f = [
            "a: refused".to_string(),
            "b: slow".into(),
            "a: refused".into(),
        ];
        assert_eq!(summarize(&f), "a: refused (x2); b: slow");
    }

    #[test]
    fn tls_files_need_etcds_and_etcds_needs_a_ca() {
        let mut c = EtcdConfig::from_url("etcd://h:1").expect("url");
        c.ca_file = Some("/nonexistent-aksh3/ca.pem".into());
        let e = EtcdStore::connect(c).unwrap_err().to_string();
        assert!(e.contains("need an etcds://"), "{e}");
        let c = EtcdConfig::from_url("etcds://h:1").expect("url");
        let e = EtcdStore::connect(c.clone()).unwrap_err().to_string();
        assert!(e.contains("--etcd-cacert"), "{e}");
        let mut c2 = c;
        c2.ca_file = Some("/nonexistent-aksh3/ca.pem".into());
        let e = EtcdStore::connect(c2).unwrap_err().to_string();
        assert!(
            e.starts_with("--etcd-cacert /nonexistent-aksh3/ca.pem: "),
            "{e}"
        );
        let c = EtcdConfig::from_url("etcd://bob@h:1").expect("url");
        let e = EtcdStore::connect(c).unwrap_err().to_string();
        assert!(e.contains("user \"bob\" has no password"), "{e}");
    }
}
