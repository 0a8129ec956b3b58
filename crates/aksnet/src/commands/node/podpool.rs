//! Pod Subnet nodes (issue 15; docs/models.md#pod-subnet): the part of `node
//! join` and `node leave` that takes and returns the node's /28 blocks of the
//! pod subnet, and `aksnet node pod-sync`, which keeps a dynamic node's pool
//! topped up (batches of 16 when fewer than 8 are free, whole free batches
//! returned when more than 24 are, `aksnet_store::pod_pool`). `node keepalive`
//! runs the same round for a Pod Subnet node.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use aksnet_core::azure::NodeSubnet;
use aksnet_core::podsubnet::Allocation;
use aksnet_node::pods::top_up_pod_pool;
use aksnet_store::pod_pool::SyncReport;

use super::{store_args, NodeError, StoreArgs, DEFAULT_DATA_DIR};

/// Default pod subnet name (`--pod-subnet-name`).
pub const DEFAULT_POD_SUBNET_NAME: &str = "pod-subnet";

/// `aksnet node join`'s Pod Subnet flags.
#[derive(clap::Args, Debug, Clone)]
pub struct PodSubnetArgs {
    /// Join as an Azure CNI Pod Subnet node: pods take addresses of this
    /// separate subnet (IPv4, /28 or larger), the node keeps one address of
    /// --subnet. The plugin's mode is then "podsubnet".
    #[arg(long, value_name = "CIDR", value_parser = super::parse_subnet, requires = "subnet")]
    pub pod_subnet: Option<NodeSubnet>,
    /// The pod subnet's name (one name, one CIDR across the cluster store).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_POD_SUBNET_NAME, value_parser = super::parse_subnet_name)]
    pub pod_subnet_name: String,
    /// static: ceil((maxPods+1)/16) /28 blocks at join, for the node's life;
    /// dynamic (AKS's default): one batch of 16 now, more on demand
    /// (`aksnet node pod-sync`).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = PodAllocation::Dynamic, requires = "pod_subnet")]
    pub pod_allocation: PodAllocation,
}

impl PodSubnetArgs {
    /// No pod subnet: a Node Subnet join.
    pub fn none() -> Self {
        Self {
            pod_subnet: None,
            pod_subnet_name: DEFAULT_POD_SUBNET_NAME.to_string(),
            pod_allocation: PodAllocation::Dynamic,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PodAllocation {
    Static,
    Dynamic,
}

impl From<PodAllocation> for Allocation {
    fn from(a: PodAllocation) -> Self {
        match a {
            PodAllocation::Static => Allocation::Static,
            PodAllocation::Dynamic => Allocation::Dynamic,
        }
    }
}

/// `aksnet node pod-sync`.
#[derive(clap::Args)]
pub struct PodSyncArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The node's data directory (its node-pool.json and IPAM state).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Run a round every DURATION (at least 11s, e.g. 15s) until killed: a
    /// return takes two rounds, which must be further apart than the plugin's
    /// 10 s IPAM lock timeout (docs/models.md, "Who tops up"). Without it: one round.
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    pub every: Option<Duration>,
}

/// The shortest `--every`: longer than the plugin's IPAM lock timeout (10 s).
pub const MIN_ROUND_INTERVAL: Duration = Duration::from_secs(11);

fn parse_every(s: &str) -> Result<Duration, String> {
    let d = store_args::parse_duration(s)?;
    if d < MIN_ROUND_INTERVAL {
        return Err(format!(
            "{s:?} is shorter than {}s: a batch is returned over two rounds, which must be \
             further apart than the plugin's 10 s IPAM lock timeout",
            MIN_ROUND_INTERVAL.as_secs()
        ));
    }
    Ok(d)
}

fn describe(r: &SyncReport) -> String {
    let list = |v: &[Ipv4Addr]| {
        v.iter()
            .map(|b| format!("{b}/28"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut parts = vec![format!(
        "{} of {} pod addresses in use",
        r.in_use, r.pod_ips
    )];
    for (what, v) in [
        ("took", &r.grown),
        ("returning", &r.returning),
        ("released", &r.released),
        ("kept (a pod took an address)", &r.kept),
    ] {
        if !v.is_empty() {
            parts.push(format!("{what} {}", list(v)));
        }
    }
    parts.join("; ")
}

pub fn run(a: &PodSyncArgs) -> Result<(), NodeError> {
    let store = a.store.open()?;
    loop {
        store.restart_deadline();
        let report = top_up_pod_pool(&*store, &a.data_dir)?;
        super::emit(format!("pod-sync: {}", describe(&report)));
        match a.every {
            Some(every) => std::thread::sleep(every),
            None => return Ok(()),
        }
    }
}
