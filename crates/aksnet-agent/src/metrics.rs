//! The agent's Prometheus metrics (text exposition format 0.0.4) and `/healthz`, served on
//! `--metrics-addr` (default loopback). Names follow the Prometheus naming conventions
//! (prometheus.io/docs/practices/naming: a `aksnet_` prefix, base units, `_total` for
//! counters); each is documented in docs/agent.md, "Metrics".

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aksnet_nft::{Family, NftBackend};

use crate::cni_log::CallCounts;
use crate::policy_controller::{Applied, PolicyAgentError, PolicyReport};
use crate::reconcile::{AgentError, Outcome, ReconcileReport};

/// Counters and gauges of the reconcile loop; shared with the HTTP thread.
#[derive(Debug, Default)]
pub struct Metrics {
    applied: AtomicU64,
    unchanged: AtomicU64,
    errors: AtomicU64,
    duration_micros_sum: AtomicU64,
    last_success_unix: AtomicU64,
    non_masquerade_cidrs: AtomicU64,
    skipped_config_files: AtomicU64,
    keepalive_ok: AtomicU64,
    keepalive_failed: AtomicU64,
    store_retries: AtomicU64,
    policy: PolicyCounters,
    /// The LAN loops (`l2_answers`, `kubenet_routes`): rounds ok, failed, time.
    loops: std::sync::Mutex<std::collections::BTreeMap<&'static str, LoopCounts>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct LoopCounts {
    ok: u64,
    error: u64,
    micros: u64,
}

/// The NetworkPolicy loop's reconciles (`crate::policy_controller::run_policy_loop_observed`).
#[derive(Debug, Default)]
struct PolicyCounters {
    replaced: AtomicU64,
    updated: AtomicU64,
    unchanged: AtomicU64,
    /// Errors by kind: the source (a bad manifest, no complete list from the API yet), the
    /// compile, nft.
    source_errors: AtomicU64,
    compile_errors: AtomicU64,
    nft_errors: AtomicU64,
    duration_micros_sum: AtomicU64,
    last_success_unix: AtomicU64,
}

pub use crate::pod_addresses::{BlockUsage, PoolUsage};

/// One of the agent's own nftables tables, as read back from the kernel at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCounts {
    pub table: String,
    /// Rules in all its chains (0 when the table does not exist).
    pub rules: u64,
    /// Addresses and prefixes in its sets.
    pub set_elements: u64,
}

impl TableCounts {
    /// Reads `table inet <name>` back; `None` when nft fails (logged; the scrape goes on).
    pub fn read(nft: &dyn NftBackend, name: &str) -> Option<TableCounts> {
        match nft.get_table(Family::Inet, name) {
            Ok(listed) => {
                let t = listed.map(|l| l.table);
                let count =
                    |f: &dyn Fn(&aksnet_nft::Table) -> usize| t.as_ref().map_or(0, f) as u64;
                Some(TableCounts {
                    table: name.to_string(),
                    rules: count(&|t| t.chains.iter().map(|c| c.rules.len()).sum()),
                    set_elements: count(&|t| t.sets.iter().map(|s| s.elements.len()).sum()),
                })
            }
            Err(e) => {
                tracing::warn!(table = name, error = %e, "metrics: cannot read table");
                None
            }
        }
    }
}

/// What one scrape reads besides the counters: the node's pool, the plugin's calls (from
/// its log, crate::cni_log) and the agent's tables.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub pool: Option<PoolUsage>,
    pub cni: Option<CallCounts>,
    pub tables: Vec<TableCounts>,
    /// Whether the NetworkPolicy loop runs (its families are shown only then).
    pub policy: bool,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one round of the node's lease keepalive (`--keepalive-node`) and the
    /// store attempts retried so far (a running total kept by the store).
    pub fn record_keepalive(&self, ok: bool, store_retries: u64) {
        let counter = if ok {
            &self.keepalive_ok
        } else {
            &self.keepalive_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.store_retries.store(store_retries, Ordering::Relaxed);
    }

    /// Records one round of a LAN loop (`--l2-uplink`: `l2_answers`; `--kubenet-routes`:
    /// `kubenet_routes`).
    pub fn observe_loop(&self, name: &'static str, ok: bool, took: Duration) {
        let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
        let c = loops.entry(name).or_default();
        if ok {
            c.ok += 1;
        } else {
            c.error += 1;
        }
        c.micros = c.micros.saturating_add(micros(took));
    }

    /// Records one NetworkPolicy reconcile and how long it took (source read, compile, nft).
    pub fn observe_policy(&self, result: &Result<PolicyReport, PolicyAgentError>, took: Duration) {
        let p = &self.policy;
        p.duration_micros_sum
            .fetch_add(micros(took), Ordering::Relaxed);
        let counter = match result {
            Ok(r) => {
                p.last_success_unix.store(now_unix(), Ordering::Relaxed);
                match r.applied {
                    Applied::Replaced => &p.replaced,
                    Applied::Updated { .. } => &p.updated,
                    Applied::Unchanged => &p.unchanged,
                }
            }
            Err(PolicyAgentError::Source(_)) => &p.source_errors,
            Err(PolicyAgentError::Compile(_)) => &p.compile_errors,
            Err(PolicyAgentError::Nft { .. }) => &p.nft_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one reconcile and how long it took.
    pub fn observe(&self, result: &Result<ReconcileReport, AgentError>, took: Duration) {
        self.duration_micros_sum
            .fetch_add(micros(took), Ordering::Relaxed);
        match result {
            Ok(r) => {
                let counter = match r.outcome {
                    Outcome::Applied => &self.applied,
                    Outcome::Unchanged => &self.unchanged,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.last_success_unix.store(now_unix(), Ordering::Relaxed);
                let n = r.config.non_masquerade_cidrs.len() as u64;
                self.non_masquerade_cidrs.store(n, Ordering::Relaxed);
                let s = r.config.skipped.len() as u64;
                self.skipped_config_files.store(s, Ordering::Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The exposition text.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        self.render_snat(&mut family);
        self.render_store(&mut family);
        if let Some(p) = scrape.pool.as_ref() {
            render_pool(p, &mut family);
        }
        if scrape.policy {
            self.policy.render(&mut family);
        }
        self.render_loops(&mut family);
        render_tables(&scrape.tables, &mut family);
        if let Some(c) = &scrape.cni {
            render_cni(c, &mut family);
        }
        out
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Metrics {
    /// The SNAT table's reconcile loop: outcomes, time, and what the config holds.
    fn render_snat(&self, family: &mut FamilyFn<'_>) {
        let (applied, unchanged, errors) =
            (get(&self.applied), get(&self.unchanged), get(&self.errors));
        family(
            "aksnet_agent_reconciles_total",
            "counter",
            "Reconciles of the SNAT table, by outcome (applied, unchanged, error).",
            &[
                ("{outcome=\"applied\"}".into(), applied.to_string()),
                ("{outcome=\"unchanged\"}".into(), unchanged.to_string()),
                ("{outcome=\"error\"}".into(), errors.to_string()),
            ],
        );
        let sum = get(&self.duration_micros_sum) as f64 / 1e6;
        family(
            "aksnet_agent_reconcile_duration_seconds",
            "summary",
            "Time spent in reconciles (config load, nft read, replace when needed).",
            &[
                ("_sum".into(), format!("{sum}")),
                ("_count".into(), (applied + unchanged + errors).to_string()),
            ],
        );
        family(
            "aksnet_agent_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last reconcile that succeeded (0: none yet).",
            &[(String::new(), get(&self.last_success_unix).to_string())],
        );
        family(
            "aksnet_agent_non_masquerade_cidrs",
            "gauge",
            "Destination CIDRs traffic to which keeps the pod's source address.",
            &[(String::new(), get(&self.non_masquerade_cidrs).to_string())],
        );
        family(
            "aksnet_agent_skipped_config_files",
            "gauge",
            "ip-masq* entries of the config directory that are not regular files.",
            &[(String::new(), get(&self.skipped_config_files).to_string())],
        );
    }

    /// The node's lease keepalive and the cluster store's retries.
    fn render_store(&self, family: &mut FamilyFn<'_>) {
        family(
            "aksnet_agent_keepalive_rounds_total",
            "counter",
            "Rounds of the node's cluster-store lease keepalive, by result.",
            &[
                (
                    "{result=\"ok\"}".into(),
                    get(&self.keepalive_ok).to_string(),
                ),
                (
                    "{result=\"failed\"}".into(),
                    get(&self.keepalive_failed).to_string(),
                ),
            ],
        );
        family(
            "aksnet_store_retries_total",
            "counter",
            "Cluster-store attempts that failed transiently and were retried (etcd: another endpoint or later).",
            &[(String::new(), get(&self.store_retries).to_string())],
        );
    }
}

/// Rules and set elements of the agent's own tables, read back from the kernel.
fn render_tables(tables: &[TableCounts], family: &mut FamilyFn<'_>) {
    if tables.is_empty() {
        return;
    }
    let of = |f: fn(&TableCounts) -> u64| -> Vec<(String, String)> {
        tables
            .iter()
            .map(|t| {
                (
                    format!("{{table=\"{}\"}}", label(&t.table)),
                    f(t).to_string(),
                )
            })
            .collect()
    };
    family(
        "aksnet_nft_rules",
        "gauge",
        "Rules in the agent's own nftables table (inet family), read back from the kernel.",
        &of(|t| t.rules),
    );
    family(
        "aksnet_nft_set_elements",
        "gauge",
        "Addresses and prefixes in the sets of the agent's own nftables table.",
        &of(|t| t.set_elements),
    );
}

type FamilyFn<'a> = dyn FnMut(&str, &str, &str, &[(String, String)]) + 'a;

impl Metrics {
    fn render_loops(&self, family: &mut FamilyFn<'_>) {
        let loops = self.loops.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if loops.is_empty() {
            return;
        }
        let (mut rounds, mut time) = (Vec::new(), Vec::new());
        for (name, c) in &loops {
            for (outcome, n) in [("ok", c.ok), ("error", c.error)] {
                let l = format!("{{loop=\"{name}\",outcome=\"{outcome}\"}}");
                rounds.push((l, n.to_string()));
            }
            let secs = c.micros as f64 / 1e6;
            time.push((format!("_sum{{loop=\"{name}\"}}"), format!("{secs}")));
            time.push((
                format!("_count{{loop=\"{name}\"}}"),
                (c.ok + c.error).to_string(),
            ));
        }
        family(
            "aksnet_agent_loop_reconciles_total",
            "counter",
            "Rounds of the agent's LAN loops (l2_answers, kubenet_routes) by outcome (ok, error).",
            &rounds,
        );
        family(
            "aksnet_agent_loop_reconcile_duration_seconds",
            "summary",
            "Time spent in rounds of the agent's LAN loops.",
            &time,
        );
    }
}

impl PolicyCounters {
    fn render(&self, family: &mut FamilyFn<'_>) {
        let outcomes = [
            ("replaced", &self.replaced),
            ("updated", &self.updated),
            ("unchanged", &self.unchanged),
        ];
        let errors = [
            ("source", &self.source_errors),
            ("compile", &self.compile_errors),
            ("nft", &self.nft_errors),
        ];
        let samples = |key: &str, list: &[(&str, &AtomicU64)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(v, a)| (format!("{{{key}=\"{v}\"}}"), get(a).to_string()))
                .collect()
        };
        let mut reconciles = samples("outcome", &outcomes);
        let failed: u64 = errors.iter().map(|(_, a)| get(a)).sum();
        reconciles.push(("{outcome=\"error\"}".into(), failed.to_string()));
        family(
            "aksnet_policy_reconciles_total",
            "counter",
            "NetworkPolicy reconciles by outcome: replaced (whole table, first apply), updated (a difference), unchanged, error.",
            &reconciles,
        );
        family(
            "aksnet_policy_reconcile_errors_total",
            "counter",
            "Failed NetworkPolicy reconciles by kind (source, compile, nft); the policy in force stays.",
            &samples("kind", &errors),
        );
        let count: u64 = outcomes.iter().map(|(_, a)| get(a)).sum::<u64>() + failed;
        let sum = get(&self.duration_micros_sum) as f64 / 1e6;
        family(
            "aksnet_policy_reconcile_duration_seconds",
            "summary",
            "Time spent in NetworkPolicy reconciles (source read, compile, nft transaction).",
            &[
                ("_sum".into(), format!("{sum}")),
                ("_count".into(), count.to_string()),
            ],
        );
        family(
            "aksnet_policy_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last NetworkPolicy reconcile that succeeded (0: none yet).",
            &[(String::new(), get(&self.last_success_unix).to_string())],
        );
    }
}

/// The node's pod addresses (crate::pod_addresses) and, Pod Subnet, its blocks.
fn render_pool(p: &PoolUsage, family: &mut FamilyFn<'_>) {
    let (node, mode) = (label(&p.node), p.mode);
    let by_state = |states: &[(&str, u64)], extra: &str| -> Vec<(String, String)> {
        states
            .iter()
            .map(|(s, n)| {
                (
                    format!("{{node=\"{node}\",{extra},state=\"{s}\"}}"),
                    n.to_string(),
                )
            })
            .collect()
    };
    family(
        "aksnet_node_pod_addresses",
        "gauge",
        "The node's pod addresses by model: reserved (what the plugin can hand out), used (held in the IPAM state), free.",
        &by_state(
            &[("reserved", p.reserved), ("used", p.used), ("free", p.free())],
            &format!("mode=\"{mode}\""),
        ),
    );
    if let Some(b) = &p.blocks {
        family(
            "aksnet_node_pod_subnet_blocks",
            "gauge",
            "Pod Subnet: the node's /28 blocks of the pod subnet: held (in the cluster store), returning (of those, dynamic and on their way back: no longer handed out).",
            &by_state(
                &[("held", b.held), ("returning", b.returning)],
                &format!("subnet=\"{}\"", label(&b.subnet)),
            ),
        );
    }
}

/// The plugin's calls, from its log (crate::cni_log).
fn render_cni(c: &CallCounts, family: &mut FamilyFn<'_>) {
    let pairs = |m: &std::collections::BTreeMap<(String, String), u64>, a: &str, b: &str| {
        m.iter()
            .map(|((x, y), n)| {
                (
                    format!("{{{a}=\"{}\",{b}=\"{}\"}}", label(x), label(y)),
                    n.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    family(
        "aksnet_cni_calls_total",
        "counter",
        "Calls of aksnet-cni by CNI verb and result (ok, error), from the plugin's log; ADD ok = allocations.",
        &pairs(&c.calls, "verb", "result"),
    );
    family(
        "aksnet_cni_call_failures_total",
        "counter",
        "Failed calls of aksnet-cni by CNI verb and CNI error code.",
        &pairs(&c.failures, "verb", "code"),
    );
    family(
        "aksnet_cni_allocated_addresses_total",
        "counter",
        "Pod addresses handed out by successful ADDs.",
        &[(String::new(), c.allocated_addresses.to_string())],
    );
    let mut d = Vec::new();
    for (verb, (secs, n)) in &c.durations {
        let v = label(verb);
        d.push((format!("_sum{{verb=\"{v}\"}}"), format!("{secs}")));
        d.push((format!("_count{{verb=\"{v}\"}}"), n.to_string()));
    }
    family(
        "aksnet_cni_call_duration_seconds",
        "summary",
        "Time aksnet-cni spent per call, by verb (as the plugin measured it).",
        &d,
    );
    family(
        "aksnet_cni_log_unparsed_lines_total",
        "counter",
        "Lines of the plugin's log that are not call records.",
        &[(String::new(), c.unparsed_lines.to_string())],
    );
}

/// The largest request head read; anything longer is answered 400.
const MAX_REQUEST: usize = 8 * 1024;

/// What a scrape reads (the node's files, the plugin's log, nft), called per scrape.
pub type Scraper = Arc<dyn Fn() -> Scrape + Send + Sync>;

/// Serves `GET /metrics` and `GET /healthz` on `listener` from a background thread.
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    pool: Scraper,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(stream) => {
                    if let Err(e) = answer(stream, &metrics, &*pool) {
                        tracing::debug!(error = %e, "metrics request");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics accept"),
            }
        }
    })
}

fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    pool: &(dyn Fn() -> Scrape + Send + Sync),
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (status, ctype, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(&pool()),
        ),
        (Some("GET"), Some("/healthz")) => ("200 OK", "text/plain", "ok\n".to_string()),
        (Some("GET"), Some(_)) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("400 Bad Request", "text/plain", "bad request\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
