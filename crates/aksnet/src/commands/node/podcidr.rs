//! The node's pod CIDR (issue 13 item 2; docs/node.md, "Pod CIDRs"): `node join
//! --pod-cidr-from CIDR` gives the node one block of the cluster pod CIDR, `node
//! leave` frees it, and `node routes` prints the route table those blocks make
//! (what a BYO route table on the LAN's gateway should hold).

use std::net::Ipv4Addr;

use aksnet_agent::routes::{route_table, ROUTE_PROTO};
use aksnet_node::pods::PodCidrJoin;
use aksnet_store::podcidr::{list_pod_cidrs, DEFAULT_NODE_PREFIX_LEN};
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

impl PodCidrArgs {
    /// The pod CIDR join the flags ask for, when `--pod-cidr-from` is set.
    pub fn request(&self) -> Option<PodCidrJoin> {
        self.pod_cidr_from.map(|cluster_cidr| PodCidrJoin {
            cluster_cidr,
            node_prefix_len: self.pod_cidr_mask_size,
            node_ip: self.node_ip,
        })
    }
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
