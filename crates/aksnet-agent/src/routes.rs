//! kubenet routes across hosts (issue 13 item 2; docs/agent.md, "kubenet routes on
//! a plain LAN"). In AKS the route table of the node subnet holds one route per
//! node, `<node pod CIDR> → <node IP>` (cloud-provider-azure `azure_routes.go`,
//! docs/azure.md#kubenet-routes). On a LAN with no such table every node holds
//! those routes itself: one `podCIDR via nodeIP` per OTHER node, read from the
//! cluster store's pod CIDR records (`aksnet_store::podcidr`).
//!
//! A desired-state controller like `l2.rs`: desired = the store's records minus
//! this node's; current = the main table's routes with our own protocol number
//! ([`ROUTE_PROTO`]), which no other software uses; only the difference is
//! applied, so a restart or a second run changes nothing, and routes of any other
//! protocol (the kernel's, DHCP's, a routing daemon's) are never touched.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use aksnet_core::azure::ROUTE_TABLE_LIMIT;
use aksnet_netlink::{
    Handle, IpNet, NetlinkError, Route, RouteProtocol, RouteScope, RT_TABLE_MAIN,
};
use aksnet_store::podcidr::{list_pod_cidrs, NodePodCidr, PodCidrError};
use aksnet_store::Store;
use ipnet::Ipv4Net;

/// `proto 213` (`ip route show proto 213`): the routes `aksnet agent` owns. Not
/// a number iproute2 names (its `rt_protos` file:
/// https://git.kernel.org/pub/scm/network/iproute2/iproute2.git/tree/etc/iproute2/rt_protos),
/// so no routing daemon claims it.
pub const ROUTE_PROTO: u8 = 213;

/// One route of the table: `<cidr> via <next_hop>`, named after its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRoute {
    pub node: String,
    pub cidr: Ipv4Net,
    pub next_hop: Ipv4Addr,
}

/// What to change in the main table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutesDiff {
    pub add: Vec<(Ipv4Net, Ipv4Addr)>,
    pub del: Vec<(Ipv4Net, Ipv4Addr)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error(
        "kubenet routes: the cluster store holds {count} node pod CIDRs, more than the {limit} \
         routes an AKS route table holds (a kubenet cluster has at most {limit} nodes, \
         docs/azure.md#kubenet-routes); no route was changed"
    )]
    TooManyNodes { count: usize, limit: usize },
    #[error("kubenet routes: {0}")]
    Store(#[from] PodCidrError),
    #[error("kubenet routes: {0}")]
    Netlink(#[from] NetlinkError),
}

/// The route table the cluster's records describe: every node's block via its
/// address. Refused beyond [`ROUTE_TABLE_LIMIT`] nodes.
pub fn route_table(records: &[NodePodCidr]) -> Result<Vec<NodeRoute>, RoutesError> {
    if records.len() > ROUTE_TABLE_LIMIT {
        return Err(RoutesError::TooManyNodes {
            count: records.len(),
            limit: ROUTE_TABLE_LIMIT,
        });
    }
    Ok(records
        .iter()
        .map(|r| NodeRoute {
            node: r.node.clone(),
            cidr: r.cidr,
            next_hop: r.node_ip,
        })
        .collect())
}

/// The routes to add and delete so that our routes are exactly `desired`. A
/// route whose next hop changed is deleted and added again.
pub fn diff(desired: &[NodeRoute], current: &[(Ipv4Net, Ipv4Addr)]) -> RoutesDiff {
    let want: BTreeMap<Ipv4Net, Ipv4Addr> = desired.iter().map(|r| (r.cidr, r.next_hop)).collect();
    let have: BTreeMap<Ipv4Net, Ipv4Addr> = current.iter().copied().collect();
    RoutesDiff {
        add: want
            .iter()
            .filter(|(c, h)| have.get(c) != Some(h))
            .map(|(c, h)| (*c, *h))
            .collect(),
        del: have
            .iter()
            .filter(|(c, h)| want.get(c) != Some(h))
            .map(|(c, h)| (*c, *h))
            .collect(),
    }
}

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutesOutcome {
    pub diff: RoutesDiff,
    /// Routes kept as they were.
    pub kept: usize,
    /// Routes the kernel refused (a next hop that is not on a connected
    /// network, say), with the reason: the others are still applied.
    pub failed: Vec<(Ipv4Net, Ipv4Addr, String)>,
}

fn route(cidr: Ipv4Net, next_hop: Ipv4Addr) -> Route {
    Route {
        dst: IpNet::V4(cidr),
        gateway: Some(IpAddr::V4(next_hop)),
        oif: None,
        scope: RouteScope::Universe,
        protocol: RouteProtocol::Other(ROUTE_PROTO),
        table: RT_TABLE_MAIN,
        metric: None,
        src: None,
    }
}

/// Our routes in the main table of the calling thread's network namespace.
pub fn current_routes(handle: &mut Handle) -> Result<Vec<(Ipv4Net, Ipv4Addr)>, NetlinkError> {
    Ok(handle
        .list_routes()?
        .into_iter()
        .filter(|r| r.protocol == RouteProtocol::Other(ROUTE_PROTO))
        .filter_map(|r| match (r.dst, r.gateway) {
            (IpNet::V4(dst), Some(IpAddr::V4(gw))) => Some((dst, gw)),
            _ => None,
        })
        .collect())
}

/// Brings our routes to the store's table minus `node`'s own block, in the
/// calling thread's network namespace. Deletes first, so a block that moved to
/// another next hop never has two routes.
pub fn reconcile_routes(store: &dyn Store, node: &str) -> Result<RoutesOutcome, RoutesError> {
    let records = list_pod_cidrs(store)?;
    let desired: Vec<NodeRoute> = route_table(&records)?
        .into_iter()
        .filter(|r| r.node != node)
        .collect();
    let mut handle = Handle::new()?;
    let current = current_routes(&mut handle)?;
    let d = diff(&desired, &current);
    for (cidr, hop) in &d.del {
        handle.del_route(&route(*cidr, *hop))?;
    }
    let mut failed = Vec::new();
    for (cidr, hop) in &d.add {
        if let Err(e) = handle.ensure_route(&route(*cidr, *hop)) {
            failed.push((*cidr, *hop, e.to_string()));
        }
    }
    Ok(RoutesOutcome {
        kept: desired.len() - d.add.len(),
        diff: d,
        failed,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(node: &str, cidr: &str, ip: &str) -> NodePodCidr {
        NodePodCidr {
            node: node.into(),
            cidr: cidr.parse().unwrap(),
            node_ip: ip.parse().unwrap(),
            lease: None,
        }
    }

    #[test]
    fn only_the_difference_is_applied_and_a_moved_block_is_replaced() {
        let table = route_table(&[
            rec("a", "10.244.0.0/24", "10.0.0.4"),
            rec("b", "10.244.1.0/24", "10.0.0.5"),
        ])
        .unwrap();
        let current = vec![
            (
                "10.244.1.0/24".parse().unwrap(),
                "10.0.0.9".parse().unwrap(),
            ),
            (
                "10.244.2.0/24".parse().unwrap(),
                "10.0.0.6".parse().unwrap(),
            ),
        ];
        let d = diff(&table, &current);
        assert_eq!(
            d.add,
            vec![
                (
                    "10.244.0.0/24".parse().unwrap(),
                    "10.0.0.4".parse().unwrap()
                ),
                (
                    "10.244.1.0/24".parse().unwrap(),
                    "10.0.0.5".parse().unwrap()
                ),
            ]
        );
        assert_eq!(d.del, current);
        let converged: Vec<_> = table.iter().map(|r| (r.cidr, r.next_hop)).collect();
        assert_eq!(diff(&table, &converged), RoutesDiff::default());
    }

    #[test]
    fn more_than_400_nodes_is_refused_naming_the_count() {
        let records: Vec<NodePodCidr> = (0..=400u32)
            .map(|i| {
                let cidr = Ipv4Net::new(Ipv4Addr::from(0x0af4_0000 + (i << 8)), 24).unwrap();
                NodePodCidr {
                    node: format!("n{i}"),
                    cidr,
                    node_ip: "10.0.0.4".parse().unwrap(),
                    lease: None,
                }
            })
            .collect();
        assert_eq!(route_table(&records[..400]).unwrap().len(), 400);
        let e = route_table(&records).unwrap_err();
        assert!(
            e.to_string()
                .contains("holds 401 node pod CIDRs, more than the 400"),
            "{e}"
        );
    }
}
