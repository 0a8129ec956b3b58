//! `aksnet agent`: ip-masq-agent compatible SNAT on nftables (issue 4, docs/agent.md).
//! Thin: flags → [`aksnet_agent::AgentSettings`], then reconcile once, uninstall, or run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aksnet_agent::reconcile::report;
use aksnet_agent::{reconcile_once, uninstall, AgentSettings, Mode};
use aksnet_nft::NftCommand;
use ipnet::IpNet;

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Network model: nodesubnet, kubenet, overlay or podsubnet (selects the non-masquerade
    /// default; docs/agent.md#modes).
    #[arg(long, value_parser = parse_mode, required_unless_present_any = ["uninstall", "policy_only"])]
    pub mode: Option<Mode>,
    /// A VNet address prefix (repeatable); the nodesubnet non-masquerade default.
    #[arg(long = "vnet-cidr", value_name = "CIDR")]
    pub vnet_cidrs: Vec<IpNet>,
    /// The cluster pod CIDR (repeatable for dual stack); the kubenet and overlay
    /// non-masquerade default.
    #[arg(long = "cluster-pod-cidr", value_name = "CIDR")]
    pub cluster_pod_cidrs: Vec<IpNet>,
    /// Pod source range to masquerade (repeatable); default: the mode's non-masquerade default
    /// (nodesubnet: the VNet prefixes; kubenet, overlay: the cluster pod CIDR); required in
    /// podsubnet (the pod subnet).
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod_cidrs: Vec<IpNet>,
    /// Directory holding the ip-masq-agent config files (every file named ip-masq*).
    #[arg(long, default_value = aksnet_agent::settings::DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Masquerade with fully-random source ports.
    #[arg(long)]
    pub random_fully: bool,
    /// Accept IPv6 CIDRs and program the IPv6 chain.
    #[arg(long)]
    pub enable_ipv6: bool,
    /// masqLinkLocal of the built-in defaults (AKS: true, so IMDS sees the node address).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub masq_link_local: bool,
    /// Name of the nftables table the agent owns (`table inet <name>`).
    #[arg(long, default_value = aksnet_agent::settings::DEFAULT_TABLE)]
    pub table: String,
    /// Seconds between resyncs (a config file's resyncInterval overrides it).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub resync_interval: u64,
    /// Write the outcome of every reconcile here as JSON.
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// The nft binary to run.
    #[arg(long, default_value = "nft")]
    pub nft: PathBuf,
    /// Reconcile once and exit (0 ok, 1 bad settings/config, 3 nftables failure).
    #[arg(long, conflicts_with = "uninstall")]
    pub once: bool,
    /// Remove the agent's table and exit.
    #[arg(long)]
    pub uninstall: bool,
    /// Also keep this node's cluster-store lease alive and its pool reconciled
    /// (what `aksnet node keepalive` does; docs/node.md, "Leases and fencing").
    #[command(flatten)]
    pub lease: super::node::LeaseHookArgs,
    /// Serve Prometheus metrics (`/metrics`) and `/healthz` here; `off` disables.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9465")]
    pub metrics_addr: String,
    /// The node's data directory: its pool and IPAM state give the address metrics.
    // Its own id: the flattened lease flags have a `data_dir` field too, and clap
    // refuses two arguments with one id (a debug-build panic at startup).
    #[arg(long, id = "agent_data_dir", value_name = "DIR", default_value = super::node::DEFAULT_DATA_DIR)]
    pub data_dir: std::path::PathBuf,
    /// kubenet: the conflist whose `aksnet-cni` entry gives the node's pod addresses
    /// (`ipam.ranges`, the address metrics); `aksnet install` writes this one.
    #[arg(long, value_name = "FILE", default_value = aksnet_agent::pod_addresses::DEFAULT_CNI_CONF)]
    pub cni_conf: PathBuf,
    /// The plugin's per-call log (its `logFile`), followed for the call metrics; `off`.
    #[arg(long, value_name = "FILE|off", default_value = aksnet_agent::cni_log::DEFAULT_CNI_LOG_FILE)]
    pub cni_log_file: String,
    #[command(flatten)]
    pub policy: super::agent_policy::PolicyArgs,
    /// Answer ARP on this uplink for the node's pod addresses (a plain LAN; docs/agent.md).
    #[arg(long, value_name = "IFNAME")]
    pub l2_uplink: Option<String>,
    #[command(flatten)]
    pub routes: super::agent_routes::RoutesArgs,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

impl AgentArgs {
    fn settings(&self) -> AgentSettings {
        AgentSettings {
            // Only --uninstall may omit --mode (clap enforces it), and it ignores the mode.
            mode: self.mode.unwrap_or(Mode::NodeSubnet),
            vnet_cidrs: self.vnet_cidrs.clone(),
            cluster_pod_cidrs: self.cluster_pod_cidrs.clone(),
            pod_cidrs: self.pod_cidrs.clone(),
            config_dir: self.config_dir.clone(),
            random_fully: self.random_fully,
            enable_ipv6: self.enable_ipv6,
            masq_link_local: self.masq_link_local,
            table_name: self.table.clone(),
            resync_interval: Duration::from_secs(self.resync_interval),
            status_file: self.status_file.clone(),
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // stderr only; try_init so a second initialisation is not an error.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn run(args: AgentArgs) -> ExitCode {
    init_logging();
    if args.policy.policy_only {
        return super::agent_policy::run(&args.policy, &args.nft, args.once);
    }
    let metrics = std::sync::Arc::new(aksnet_agent::metrics::Metrics::default());
    let _policy_thread = match super::agent_policy::spawn(&args.policy, &args.nft, &metrics) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let settings = args.settings();
    let backend = NftCommand::new(&args.nft);
    if args.uninstall {
        return match uninstall(&backend, &settings) {
            Ok(existed) => {
                tracing::info!(table = %settings.table_name, existed, "table removed");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "uninstall failed");
                ExitCode::from(e.exit_code())
            }
        };
    }
    if let Err(e) = settings.validate() {
        tracing::error!(error = %e, "invalid agent settings");
        return ExitCode::from(1);
    }
    if args.once {
        let result = reconcile_once(&backend, &settings);
        report(&settings, &result);
        let l2 = super::agent_l2::once(args.l2_uplink.as_deref(), &args.data_dir)
            .and(super::agent_routes::once(&args.routes, &args.lease.store));
        return match (result, l2) {
            (Err(e), _) => ExitCode::from(e.exit_code()),
            (Ok(_), Err(code)) => ExitCode::from(code),
            (Ok(_), Ok(())) => ExitCode::SUCCESS,
        };
    }
    tracing::info!(
        mode = settings.mode.as_str(),
        config_dir = %settings.config_dir.display(),
        resync = ?settings.resync_interval,
        "agent started"
    );
    super::agent_l2::spawn(
        args.l2_uplink.as_deref(),
        &args.data_dir,
        settings.resync_interval,
        &metrics,
    );
    super::agent_routes::spawn(&args.routes, &args.lease.store, &metrics);
    let observed = metrics.clone();
    super::node::spawn_lease_hook(&args.lease, move |r: super::node::RoundReport| {
        observed.record_keepalive(r.ok, r.store_retries)
    });
    if args.metrics_addr != "off" {
        match std::net::TcpListener::bind(&args.metrics_addr) {
            Ok(listener) => {
                aksnet_agent::metrics::serve(listener, metrics.clone(), scraper(&args));
                tracing::info!(addr = %args.metrics_addr, "serving /metrics and /healthz");
            }
            // SNAT matters more than its metrics: say so loudly and keep running.
            Err(e) => {
                tracing::error!(addr = %args.metrics_addr, error = %e, "--metrics-addr: cannot listen; no metrics")
            }
        }
    }
    let stop = AtomicBool::new(false);
    aksnet_agent::reconcile::run_daemon_observed(&backend, &settings, &stop, Some(&metrics));
    ExitCode::SUCCESS
}

/// What each scrape reads: the pool, the plugin's log (followed from now on, also every
/// few seconds so that a rotation between scrapes loses nothing), the agent's tables.
fn scraper(args: &AgentArgs) -> aksnet_agent::metrics::Scraper {
    use aksnet_agent::cni_log::LogFollower;
    use std::sync::{Arc, Mutex};
    let follower = (args.cni_log_file != "off").then(|| {
        let mut f = LogFollower::new(&args.cni_log_file);
        f.poll();
        Arc::new(Mutex::new(f))
    });
    if let Some(f) = follower.clone() {
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            f.lock().unwrap_or_else(|p| p.into_inner()).poll();
        });
    }
    let (mode, data_dir, conf) = (args.mode, args.data_dir.clone(), args.cni_conf.clone());
    let node = node_name(args);
    let nft = NftCommand::new(&args.nft);
    let mut tables = vec![args.table.clone()];
    let policy = args.policy.enabled();
    if policy {
        tables.push(args.policy.policy_table.clone());
    }
    Arc::new(move || aksnet_agent::metrics::Scrape {
        pool: pool_usage(mode, &data_dir, &conf, &node),
        cni: follower.as_ref().map(|f| {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            f.poll();
            f.counts.clone()
        }),
        tables: tables
            .iter()
            .filter_map(|t| aksnet_agent::metrics::TableCounts::read(&nft, t))
            .collect(),
        policy,
    })
}

/// The node's pod addresses: kubenet from the conflist's ranges, nodesubnet and podsubnet
/// from the node's pool file; `None` (logged at debug: scrapes are frequent) when unknown.
fn pool_usage(
    mode: Option<Mode>,
    data_dir: &std::path::Path,
    conf: &std::path::Path,
    node: &str,
) -> Option<aksnet_agent::metrics::PoolUsage> {
    use aksnet_agent::pod_addresses::{from_kubenet_conf, from_node_pool};
    let usage = match mode {
        Some(Mode::Kubenet) => from_kubenet_conf(conf, node),
        _ => from_node_pool(data_dir),
    };
    usage
        .inspect_err(|e| tracing::debug!(error = %e, "metrics: node pod addresses"))
        .ok()
        .flatten()
}

/// The node's name for the kubenet address metrics: `--node-name`, else the host name
/// (kubelet's default node name).
fn node_name(args: &AgentArgs) -> String {
    args.policy.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    })
}
