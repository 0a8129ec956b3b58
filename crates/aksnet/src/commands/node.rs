//! `aksnet node join|leave|list|keepalive`: a node's up-front reservation in the
//! cluster store for Azure CNI Node Subnet (issue 3; docs/node.md).
//!
//! `join` does what AKS's control plane does when it creates a node: it gives the
//! node's NIC `maxPods` secondary addresses from the node subnet plus its own
//! (docs/azure.md#node-subnet-ipam), then writes them to the node's local pool file so
//! the plugin's ADD never calls the cluster store.
//!
//! Exit codes: 0 done; 1 refused or failed (no room in the subnet, pods still on
//! the node, the node joined with other parameters, store or file errors); 2 bad
//! input (clap's usage errors and our flag checks, always naming the flag and value).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aksnet_core::azure::{
    format_address_runs, MaxPods, NodeSubnet, DEFAULT_MAX_PODS_NODE_SUBNET,
    DEFAULT_MAX_PODS_OVERLAY,
};
use aksnet_node::join::{NodeJoin, PodPlace, SubnetShare};
use aksnet_node::list::{list_cluster, NodeList};
use aksnet_node::pods::PodSubnetJoin;
use aksnet_node::{LeaveEvent, LeaveRequest};
use aksnet_store::podcidr::PodCidrOutcome;
use aksnet_store::reservation::{
    subnet_usage, validate_node_name, validate_subnet_name, ReservationError,
};
use aksnet_store::{JoinOutcome, Store, StoreError, WriteOutcome};
use ipnet::Ipv4Net;

mod keepalive;
mod overlay;
pub mod podcidr;
mod podpool;
mod store_args;
pub use keepalive::{spawn_lease_hook, LeaseHookArgs, RoundReport};
pub use podpool::PodSubnetArgs;
pub use store_args::{parse_duration, StoreArgs};

/// Writes a line to stdout through [`emit`] (never panics on a closed pipe).
macro_rules! out {
    () => {
        emit(String::new())
    };
    ($($t:tt)*) => {
        emit(format!($($t)*))
    };
}

static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints one line. SIGPIPE is ignored in `aksnet node` (so that no write to the
/// etcd socket can kill the process mid-command, issue 17), which turns a closed
/// stdout (`aksnet node list | head`) into EPIPE: output then stops quietly and the
/// exit status still tells whether the command's change was made.
fn emit(line: String) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("aksnet node: warning: write to stdout: {e}");
        }
    }
}

/// Default embedded cluster store directory.
pub const DEFAULT_STORE_DIR: &str = "/var/lib/aksnet/cluster";
/// Default node data directory (holds `node-pool.json` and the IPAM state).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/aksnet";
/// Default subnet name. AKS's managed VNet names its node subnet `aks-subnet`.
pub const DEFAULT_SUBNET_NAME: &str = "aks-subnet";

#[derive(clap::Subcommand)]
pub enum NodeCommand {
    /// Reserve 1 + maxPods addresses of the node subnet for a node and write them to
    /// its local pool (<data-dir>/node-pool.json).
    Join(JoinArgs),
    /// Release a node's reservation and remove its local pool; refuses while pods
    /// still hold addresses from it, unless --force.
    Leave(LeaveArgs),
    /// Show the joined nodes, their reservations and use, and each subnet's room.
    List(ListArgs),
    /// Keep the node's lease alive and its local pool in step with the store;
    /// fence the pool (the plugin stops allocating) when the lease is lost.
    Keepalive(keepalive::KeepaliveArgs),
    /// Print the route table the nodes' pod CIDRs make (`podCIDR via nodeIP`): what
    /// a BYO route table on the LAN's gateway holds instead of the agents' routes.
    Routes(podcidr::RoutesArgs),
    /// A Pod Subnet node (dynamic): take another batch of 16 pod-subnet addresses
    /// when fewer than 8 are free, return whole free batches when more than 24
    /// are (one round, or --every DURATION).
    PodSync(podpool::PodSyncArgs),
}

#[derive(clap::Args)]
pub struct JoinArgs {
    /// Node name (a Kubernetes node name: RFC 1123 subdomain).
    #[arg(long, value_name = "NAME", value_parser = parse_node_name)]
    pub node: String,
    /// The node subnet, e.g. 10.240.0.0/24 (IPv4, /29 or larger, no host bits):
    /// reserve 1 + maxPods of its addresses (Node Subnet). Optional with
    /// --pod-cidr-from (kubenet: only the node's pod CIDR is allocated).
    #[arg(long, value_name = "CIDR", value_parser = parse_subnet, required_unless_present = "pod_cidr_from")]
    pub subnet: Option<NodeSubnet>,
    /// The subnet's name, as in Azure's InsufficientSubnetSize message.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_SUBNET_NAME, value_parser = parse_subnet_name)]
    pub subnet_name: String,
    /// Maximum pods on the node, 10..=250 (AKS's defaults: Node Subnet 30, Overlay 250).
    #[arg(long = "max-pods", value_name = "N", value_parser = parse_max_pods)]
    pub max_pods_flag: Option<MaxPods>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The node's data directory, where node-pool.json is written.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Put the reservation on an etcd lease with this grace period (e.g. 5m): if
    /// nothing keeps it alive (`aksnet node keepalive`) for that long, the store
    /// frees the node's addresses. Without it the reservation lives until leave.
    #[arg(long, value_name = "DURATION", value_parser = store_args::parse_duration, requires = "subnet")]
    pub lease_ttl: Option<std::time::Duration>,
    #[command(flatten)]
    pub pod_cidr: podcidr::PodCidrArgs,
    #[command(flatten)]
    pub pods: podpool::PodSubnetArgs,
    /// An Azure CNI Overlay node (docs/models.md#overlay): its pods take addresses of
    /// its /24 of --pod-cidr-from; the node subnet gives only the node's address.
    #[arg(long, requires_all = ["pod_cidr_from", "subnet"], conflicts_with_all = ["pod_subnet", "lease_ttl"])]
    pub overlay: bool,
}

impl JoinArgs {
    /// --max-pods, or the model's AKS default.
    pub fn max_pods(&self) -> MaxPods {
        self.max_pods_flag.unwrap_or_else(|| {
            if self.overlay {
                MaxPods::new(DEFAULT_MAX_PODS_OVERLAY).unwrap_or_default()
            } else {
                MaxPods::default()
            }
        })
    }

    /// The join the flags ask for.
    fn request(&self) -> NodeJoin {
        let pods = match (self.pods.pod_subnet, self.overlay) {
            (Some(subnet), _) => PodPlace::PodSubnet(PodSubnetJoin {
                subnet_name: self.pods.pod_subnet_name.clone(),
                subnet,
                allocation: self.pods.pod_allocation.into(),
            }),
            (None, true) => PodPlace::Overlay,
            (None, false) => PodPlace::NodeSubnet,
        };
        NodeJoin {
            node: self.node.clone(),
            data_dir: self.data_dir.clone(),
            subnet: self.subnet.map(|subnet| SubnetShare {
                name: self.subnet_name.clone(),
                subnet,
                max_pods: self.max_pods(),
                pods,
            }),
            pod_cidr: self.pod_cidr.request(),
            lease_ttl: self.lease_ttl,
        }
    }
}

#[derive(clap::Args)]
pub struct LeaveArgs {
    /// Node name.
    #[arg(long, value_name = "NAME", value_parser = parse_node_name)]
    pub node: String,
    /// Release even if pods still hold addresses from the node's pool.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The node's data directory (its node-pool.json and IPAM state).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// `--format` of `node list` and `subnet list`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    #[command(flatten)]
    pub store: StoreArgs,
    /// A node's data directory: that node's in-use count comes from its IPAM state
    /// (other nodes show "-").
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// `s` if `check` accepts it, else `check`'s error as clap's message: the
/// value parser of every name flag.
pub(crate) fn checked_name<E: std::fmt::Display>(
    s: &str,
    check: impl Fn(&str) -> Result<(), E>,
) -> Result<String, String> {
    check(s).map(|()| s.to_string()).map_err(|e| e.to_string())
}

fn parse_node_name(s: &str) -> Result<String, String> {
    checked_name(s, validate_node_name)
}

pub(crate) fn parse_subnet_name(s: &str) -> Result<String, String> {
    checked_name(s, validate_subnet_name)
}

/// A node subnet flag's value; `note` follows the example in the message.
pub(crate) fn subnet_flag(s: &str, note: &str) -> Result<NodeSubnet, String> {
    let cidr: Ipv4Net = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 CIDR such as 10.240.0.0/24{note}"))?;
    NodeSubnet::new(cidr).map_err(|e| e.to_string())
}

fn parse_subnet(s: &str) -> Result<NodeSubnet, String> {
    subnet_flag(s, " (Node Subnet is IPv4 only)")
}

fn parse_max_pods(s: &str) -> Result<MaxPods, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number (maxPods is {}..={}, default {DEFAULT_MAX_PODS_NODE_SUBNET})",
            aksnet_core::azure::MAX_PODS_MIN, aksnet_core::azure::MAX_PODS_MAX))?;
    MaxPods::new(n).map_err(|e| e.to_string())
}

pub use aksnet_node::NodeError;

/// 1 refused or failed, 2 bad input.
pub(crate) fn exit_code(e: &NodeError) -> u8 {
    if e.is_bad_input() {
        2
    } else {
        1
    }
}

pub fn run(cmd: NodeCommand) -> ExitCode {
    let (name, result) = match cmd {
        NodeCommand::Join(a) => ("join", run_join(&a)),
        NodeCommand::Leave(a) => ("leave", run_leave(&a)),
        NodeCommand::List(a) => ("list", run_list(&a)),
        NodeCommand::Keepalive(a) => ("keepalive", keepalive::run(&a)),
        NodeCommand::Routes(a) => ("routes", podcidr::run_routes(&a)),
        NodeCommand::PodSync(a) => ("pod-sync", podpool::run(&a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aksnet node {name}: {e}{}", rerun_hint(name, &e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// What an operator can safely do after a store failure (issue 17). A failed read
/// means nothing of this command was left in doubt: every write before it had a
/// definite answer (a lost compare is a definite "not applied").
fn rerun_hint(name: &str, e: &NodeError) -> &'static str {
    let NodeError::Reservation(ReservationError::Store(StoreError::Remote { outcome, .. })) = e
    else {
        return "";
    };
    match (name, outcome) {
        ("join", Some(WriteOutcome::Unknown)) => {
            ": rerunning the same `aksnet node join` is safe (it returns this node's \
             reservation if the write was applied)"
        }
        ("join", _) => "; nothing was changed: rerunning the same `aksnet node join` is safe",
        ("leave", Some(WriteOutcome::Unknown)) => {
            ": rerunning `aksnet node leave` is safe (a node that is gone is reported as not joined)"
        }
        ("leave", _) => "; the reservation was not released: rerunning `aksnet node leave` is safe",
        _ => "",
    }
}

/// Says on stderr what the store retried (issue 17: logs of retries).
fn note_retries(cmd: &str, store: &dyn Store) {
    if let Some(note) = store.take_retry_note() {
        eprintln!("aksnet node {cmd}: note: {note}");
    }
}

/// `free of usable` for one subnet, from its address index (no full scan).
/// Whether the test-only fault `name` is armed (`AKSNET_FAILPOINT=name`, and only
/// in a build with the `failpoints` feature): lets a test fail the one query it
/// targets, e.g. the summary after a committed join.
fn failpoint(name: &str) -> bool {
    cfg!(feature = "failpoints") && std::env::var("AKSNET_FAILPOINT").is_ok_and(|v| v == name)
}

fn subnet_room(
    store: &dyn Store,
    name: &str,
    subnet: &NodeSubnet,
) -> Result<(u64, u64), NodeError> {
    let (reserved, usable) = subnet_usage(store, name, subnet)?;
    Ok((usable.saturating_sub(reserved), usable))
}

fn run_join(a: &JoinArgs) -> Result<(), NodeError> {
    overlay::check_args(a)?;
    let (store, report) =
        aksnet_node::join::join(&a.store.options(), &a.request(), &mut |node, undo| {
            eprintln!("aksnet node join: warning: undo the reservation of {node}: {undo}")
        })?;
    let block = report.pod_cidr.as_ref().map(|p| p.record().cidr);
    if let (Some(joined), Some(subnet)) = (&report.subnet, a.subnet) {
        print_subnet_join(a, &*store, joined, &subnet, block);
    }
    if let Some(p) = report.pod_cidr {
        let verb = match p {
            PodCidrOutcome::Allocated(_) => "allocated",
            PodCidrOutcome::AlreadyAllocated(_) => "already held",
        };
        let r = p.record();
        out!(
            "node {} pod CIDR {} ({verb}), next hop {}",
            r.node,
            r.cidr,
            r.node_ip
        );
    }
    note_retries("join", &*store);
    Ok(())
}

/// Prints the summary of a node-subnet join.
fn print_subnet_join(
    a: &JoinArgs,
    store: &dyn Store,
    joined: &aksnet_node::join::SubnetJoined,
    subnet: &NodeSubnet,
    pod_cidr: Option<Ipv4Net>,
) {
    let (outcome, path, pods) = (&joined.outcome, &joined.pool_path, &joined.pods);
    let r = outcome.reservation();
    // Everything below is a summary: the join is done, so a failure here is a
    // warning and the exit status stays 0 (issue 17: automation that saw exit 1
    // would delete the VM and leak its addresses).
    // A Pod Subnet or Overlay node costs one address of the node subnet.
    let per_node = if r.pods_elsewhere() {
        1
    } else {
        a.max_pods().per_node_reservation()
    };
    let room = if failpoint("join-summary") {
        Err(NodeError::Failpoint("join-summary"))
    } else {
        subnet_room(store, &a.subnet_name, subnet)
    };
    let verb = match outcome {
        JoinOutcome::Joined(_) => "joined",
        JoinOutcome::AlreadyJoined(_) => "was already joined to",
    };
    out!(
        "node {} {verb} subnet {} ({}) at maxPods {}",
        r.node,
        r.subnet_name,
        r.subnet,
        r.max_pods
    );
    out!("  node IP  {}", r.node_ip);
    match &pods {
        Some(p) => out!(
            "  pod subnet {} ({}, {}): blocks {} ({} pod addresses now)",
            p.pod_subnet_name,
            p.pod_subnet,
            p.allocation,
            p.blocks
                .iter()
                .map(|b| format!("{b}/28"))
                .collect::<Vec<_>>()
                .join(","),
            p.pod_ips().len()
        ),
        None if r.overlay => {
            let ips = pod_cidr.map_or_else(Vec::new, |b| {
                aksnet_core::pool::overlay_pod_ips(b, r.max_pods)
            });
            out!(
                "  pod IPs  {} ({}, of pod CIDR {})",
                format_address_runs(&ips),
                ips.len(),
                pod_cidr.map_or_else(|| "-".to_string(), |b| b.to_string())
            )
        }
        None => out!(
            "  pod IPs  {} ({})",
            format_address_runs(&r.pod_ips),
            r.pod_ips.len()
        ),
    }
    out!("  pool     {}", path.display());
    match room {
        Ok((free, usable)) => out!(
            "  subnet   {free} of {usable} usable addresses free, room for {} more node(s) at maxPods {}",
            free / per_node,
            a.max_pods()
        ),
        Err(e) => eprintln!(
            "aksnet node join: warning: node {} is joined, but the subnet's free room could not be read: {e}",
            r.node
        ),
    }
}

fn run_leave(a: &LeaveArgs) -> Result<(), NodeError> {
    let req = LeaveRequest {
        node: &a.node,
        data_dir: &a.data_dir,
        force: a.force,
    };
    let retried = aksnet_node::leave(&a.store.options(), &req, &mut |e| {
        print_leave(&a.node, &a.data_dir, e)
    })?;
    if let Some(note) = retried {
        eprintln!("aksnet node leave: note: {note}");
    }
    Ok(())
}

/// Prints one step of a leave as it happens (stdout: what changed; stderr:
/// notes and what --force skipped).
fn print_leave(node: &str, data_dir: &Path, e: LeaveEvent<'_>) {
    match e {
        LeaveEvent::ForcedWithPods { count, ips } => eprintln!(
            "aksnet node leave: --force: releasing node {node} with {count} pod address(es) still allocated ({ips})"
        ),
        LeaveEvent::PodsNotChecked { error } => {
            eprintln!("aksnet node leave: --force: pods not checked: {error}")
        }
        LeaveEvent::PodCidrPodsNotChecked { cidr, error } => {
            eprintln!("aksnet node leave: --force: pods of {cidr} not checked: {error}")
        }
        LeaveEvent::PodCidrReleased(b) => out!(
            "node {} released pod CIDR {} (next hop {})",
            b.node,
            b.cidr,
            b.node_ip
        ),
        LeaveEvent::NotJoined {
            stale_pool_removed: Some(path),
            ..
        } => out!(
            "node {node} is not joined; removed its stale pool {}",
            path.display()
        ),
        LeaveEvent::NotJoined { had_pod_cidr, .. } => match had_pod_cidr {
            true => out!("node {node} holds no node subnet reservation"),
            false => out!("node {node} is not joined; nothing to release"),
        },
        LeaveEvent::NoLocalPool => eprintln!(
            "aksnet node leave: note: no pool of node {node} in --data-dir {}; its pods could only \
             be checked against the IPAM state there",
            data_dir.display()
        ),
        LeaveEvent::WithdrawAnswers(r) => withdraw_answers(r),
        LeaveEvent::BlocksReturned(p) => out!(
            "node {} returned {} block(s) of pod subnet {} ({})",
            p.node,
            p.blocks.len(),
            p.pod_subnet_name,
            p.pod_subnet
        ),
        LeaveEvent::Left {
            reservation: r,
            removed_pool,
        } => {
            out!(
                "node {} left subnet {} ({}): released {} addresses (node IP {}, pod IPs {})",
                r.node,
                r.subnet_name,
                r.subnet,
                r.pod_ips.len() + 1,
                r.node_ip,
                format_address_runs(&r.pod_ips)
            );
            if let Some(path) = removed_pool {
                out!("  removed {}", path.display());
            }
        }
    }
}

/// This node stops answering ARP for the reservation's addresses (docs/agent.md,
/// "L2 answers on a plain LAN"); a failure is a warning, the agent's next round
/// removes them too.
fn withdraw_answers(r: &aksnet_store::NodeReservation) {
    let addresses: Vec<Ipv4Addr> = r.addresses().collect();
    match aksnet_agent::l2::withdraw(&addresses) {
        Ok(0) => {}
        Ok(n) => out!("  stopped answering ARP for {n} address(es) of the node"),
        Err(e) => eprintln!("aksnet node leave: warning: withdraw the node's ARP answers: {e}"),
    }
}

fn run_list(a: &ListArgs) -> Result<(), NodeError> {
    let store = a.store.open()?;
    let list = list_cluster(&*store, &a.data_dir, &mut |e| {
        eprintln!("aksnet node list: warning: {e}; in-use not shown")
    })?;
    match a.format {
        ListFormat::Json => print_json(&list),
        ListFormat::Table => print_table(a, &list),
    }
    note_retries("list", &*store);
    Ok(())
}

fn print_json(list: &NodeList) {
    let subnets: Vec<serde_json::Value> = list
        .subnets
        .iter()
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "cidr": u.subnet.cidr().to_string(),
                "usable": u.subnet.usable(),
                "reserved": u.reserved,
                "free": u.subnet.usable().saturating_sub(u.reserved),
                "nodes": u.nodes,
            })
        })
        .collect();
    let nodes: Vec<serde_json::Value> = list
        .nodes
        .iter()
        .map(|row| {
            let r = &row.record;
            serde_json::json!({
                "node": r.node,
                "subnetName": r.subnet_name,
                "subnet": r.subnet.to_string(),
                "nodeIp": r.node_ip.to_string(),
                "maxPods": r.max_pods,
                "podIps": r.pod_ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                "podRanges": format_address_runs(&r.pod_ips),
                "inUse": row.in_use,
            })
        })
        .collect();
    out!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "subnets": subnets, "nodes": nodes }))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    );
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn print_table(a: &ListArgs, list: &NodeList) {
    let (rows, subnets) = (&list.nodes, &list.subnets);
    if rows.is_empty() && subnets.is_empty() {
        out!("no nodes joined in {}", a.store.describe());
        return;
    }
    let node_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let r = &row.record;
            vec![
                r.node.clone(),
                r.subnet_name.clone(),
                r.node_ip.to_string(),
                r.max_pods.to_string(),
                format_address_runs(&r.pod_ips),
                row.in_use
                    .map_or_else(|| "-".to_string(), |u| format!("{u}/{}", r.pod_ips.len())),
            ]
        })
        .collect();
    out!(
        "{}",
        render_table(
            &["NODE", "SUBNET", "NODE IP", "MAX PODS", "POD IPS", "IN USE"],
            &node_rows
        )
    );
    out!();
    let subnet_rows: Vec<Vec<String>> = subnets
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                u.subnet.cidr().to_string(),
                u.nodes.to_string(),
                u.subnet.usable().to_string(),
                u.reserved.to_string(),
                u.subnet.usable().saturating_sub(u.reserved).to_string(),
            ]
        })
        .collect();
    out!(
        "{}",
        render_table(
            &["SUBNET", "CIDR", "NODES", "USABLE", "RESERVED", "FREE"],
            &subnet_rows
        )
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_parsers_name_the_value() {
        assert!(parse_max_pods("9").unwrap_err().contains("maxPods 9 "));
        assert!(parse_max_pods("x").unwrap_err().contains("\"x\""));
        assert!(parse_subnet("10.0.0.1/24")
            .unwrap_err()
            .contains("did you mean 10.0.0.0/24"));
        assert!(parse_subnet("fd00::/64").unwrap_err().contains("IPv4"));
        assert!(parse_subnet("10.0.0.0/30").unwrap_err().contains("/29"));
        assert!(parse_node_name("Bad_Name")
            .unwrap_err()
            .contains("Bad_Name"));
        assert!(parse_subnet_name("-x").unwrap_err().contains("-x"));
    }

    #[test]
    fn tables_are_aligned() {
        let t = render_table(
            &["A", "LONGER", "C"],
            &[
                vec!["wide-cell".into(), "x".into(), "1".into()],
                vec!["y".into(), "zz".into(), "22".into()],
            ],
        );
        assert_eq!(
            t,
            "A          LONGER  C\nwide-cell  x       1\ny          zz      22"
        );
    }
}
