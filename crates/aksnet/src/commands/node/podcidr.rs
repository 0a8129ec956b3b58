//! The node's pod CIDR (issue 13 item 2; docs/node.md, "Pod CIDRs"): `node join
//! --pod-cidr-from CIDR` gives the node one block of the cluster pod CIDR, `node
//! leave` frees it, and `node routes` prints the route table those blocks make
//! (what a BYO route table on the LAN's gateway should hold).

use std::net::Ipv4Addr;
use std::path::Path;

use aksnet_agent::routes::{route_table, ROUTE_PROTO};
use aksnet_node::pods::{join_pod_cidr, PodCidrJoin};
use aksnet_store::podcidr::{list_pod_cidrs, PodCidrOutcome, DEFAULT_NODE_PREFIX_LEN};
use aksnet_store::{LeaseId, Store};
use ipnet::Ipv4Net;

use super::{NodeError, StoreArgs};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct PodCidrArgs {
    /// Give the node one block of this cluster pod CIDR (kubenet; registered
    /// in the cluster store by the first node that names it, e.g. 10.244.0.0/16).
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub pod_cidr_from: Option<Ipv4Net>,
    /// Prefix length of each node's block (kube-controller-manager's
    /// --node-cidr-mask-size; AKS gives every node a /24).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_NODE_PREFIX_LEN, requires = "pod_cidr_from")]
    pub pod_cidr_mask_size: u8,
    /// The node's address on the LAN: the next hop of its block's route. Needed
    /// without --subnet (with it, the reservation's node IP is used).
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<Ipv4Addr>,
}

fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let cidr: Ipv4Net = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 CIDR such as 10.244.0.0/16"))?;
    if cidr.trunc() != cidr {
        return Err(format!(
            "{cidr} has host bits set (did you mean {}?)",
            cidr.trunc()
        ));
    }
    Ok(cidr)
}

/// Gives `node` its block when `--pod-cidr-from` is set. `node_ip` is the
/// reservation's node IP (Node Subnet) or `None` (then `--node-ip` is needed).
pub fn join(
    a: &PodCidrArgs,
    store: &dyn Store,
    node: &str,
    reserved_ip: Option<Ipv4Addr>,
    data_dir: &Path,
    lease: Option<LeaseId>,
) -> Result<Option<PodCidrOutcome>, NodeError> {
    let Some(cluster_cidr) = a.pod_cidr_from else {
        return Ok(None);
    };
    let req = PodCidrJoin {
        cluster_cidr,
        node_prefix_len: a.pod_cidr_mask_size,
        node_ip: a.node_ip,
    };
    join_pod_cidr(store, &req, node, reserved_ip, data_dir, lease).map(Some)
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoutesFormat {
    /// NODE, ADDRESS PREFIX, NEXT HOP.
    Table,
    Json,
    /// `ip route replace` commands for a Linux gateway.
    Ip,
}

#[derive(clap::Args)]
pub struct RoutesArgs {
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = RoutesFormat::Table)]
    pub format: RoutesFormat,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `aksnet node routes`: the route table the cluster's pod CIDRs make.
pub fn run_routes(a: &RoutesArgs) -> Result<(), NodeError> {
    let store = a.store.open()?;
    let table =
        route_table(&list_pod_cidrs(&*store)?).map_err(|e| NodeError::Routes(Box::new(e)))?;
    match a.format {
        RoutesFormat::Json => {
            let v: Vec<serde_json::Value> = table
                .iter()
                .map(|r| {
                    serde_json::json!({"name": r.node, "addressPrefix": r.cidr.to_string(),
                    "nextHopType": "VirtualAppliance", "nextHopIpAddress": r.next_hop.to_string()})
                })
                .collect();
            super::emit(
                serde_json::to_string_pretty(&serde_json::json!({ "routes": v }))
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            );
        }
        RoutesFormat::Ip => {
            for r in &table {
                super::emit(format!(
                    "ip route replace {} via {} proto {ROUTE_PROTO}",
                    r.cidr, r.next_hop
                ));
            }
        }
        RoutesFormat::Table => {
            let rows: Vec<Vec<String>> = table
                .iter()
                .map(|r| vec![r.node.clone(), r.cidr.to_string(), r.next_hop.to_string()])
                .collect();
            super::emit(super::render_table(
                &["NODE", "ADDRESS PREFIX", "NEXT HOP"],
                &rows,
            ));
        }
    }
    Ok(())
}
