//! The sdn fabric of a Pod Subnet lab: Azure's SDN delivers each address a
//! node holds in the pod subnet to that node (the Pod Subnet article: pods get
//! addresses of a separate subnet of the VNet, "directly reachable" from it;
//! AKS's CNS programs the node's addresses through the NodeNetworkConfig,
//! `Azure/azure-container-networking: cns/`).
//!
//! The fabric follows the cluster store: one route per /28 block a node holds
//! (`podnodes/<node>`), `<block>/28 via <node IP>`. A dynamic node's blocks
//! come and go with `aksnet node pod-sync`; [`Builder::sync_pod_subnet_routes`]
//! runs after every round the lab makes, removing the routes of blocks that
//! left and adding those of blocks that arrived. Runs serially (a lock): the
//! same block may move from one node to another between two runs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use aksnet_netlink::{Handle, IpNet, Netns, Route, RouteProtocol, RouteScope, RT_TABLE_MAIN};
use aksnet_store::EmbeddedStore;
use ipnet::Ipv4Net;

use crate::error::{LabError, Result};
use crate::up::Builder;

/// Block routes the fabric should hold: block → (node IP, node's fabric link).
pub type BlockRoutes = BTreeMap<Ipv4Net, (Ipv4Addr, String)>;

/// What the store says: every pod-subnet block of a lab node, routed to it.
pub fn desired_routes(
    store_dir: &std::path::Path,
    links: &BTreeMap<String, String>,
) -> Result<BlockRoutes> {
    let store = EmbeddedStore::new(store_dir);
    let err = |source| LabError::Store {
        dir: store_dir.to_path_buf(),
        source,
    };
    let ips: BTreeMap<String, Ipv4Addr> = aksnet_store::reservation::list_nodes(&store)
        .map_err(err)?
        .into_iter()
        .map(|n| (n.node, n.node_ip))
        .collect();
    let mut out = BlockRoutes::new();
    for r in aksnet_store::podsubnet::list_pods(&store).map_err(err)? {
        let (Some(ip), Some(link)) = (ips.get(&r.node), links.get(&r.node)) else {
            continue; // not a node of this lab
        };
        for b in &r.blocks {
            let block = Ipv4Net::new(*b, 28).map_err(|e| LabError::State {
                path: store_dir.to_path_buf(),
                why: format!("block {b} of node {}: {e}", r.node),
            })?;
            out.insert(block, (*ip, link.clone()));
        }
    }
    Ok(out)
}

fn block_route(block: Ipv4Net, gw: Ipv4Addr, oif: u32) -> Route {
    Route {
        dst: IpNet::V4(block),
        gateway: Some(IpAddr::V4(gw)),
        oif: Some(oif),
        scope: RouteScope::Universe,
        protocol: RouteProtocol::Static,
        table: RT_TABLE_MAIN,
        metric: None,
        src: None,
    }
}

impl Builder<'_> {
    /// Makes the fabric's pod-subnet routes those of the store. Returns the
    /// number of routes removed and added.
    pub fn sync_pod_subnet_routes(&self) -> Result<(usize, usize)> {
        let _serial = self
            .fabric_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let links = self
            .topo
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.fabric_link.clone()))
            .collect();
        let want = desired_routes(&self.state.store_dir(), &links)?;
        let ns = Netns::open(aksnet_netlink::named_netns_path(&self.topo.fabric_netns))?;
        let mut h = Handle::in_netns(&ns)?;
        let pod_subnet = self.spec.pod_subnet;
        let mut removed = 0;
        let mut have = BTreeSet::new();
        for r in h.list_routes()? {
            let IpNet::V4(dst) = r.dst else { continue };
            if !pod_subnet.contains(&dst) {
                continue;
            }
            let keep = want
                .get(&dst)
                .is_some_and(|(ip, _)| r.gateway == Some(IpAddr::V4(*ip)));
            if keep {
                have.insert(dst);
            } else if h.del_route(&r)? {
                removed += 1;
            }
        }
        let mut added = 0;
        for (block, (ip, link)) in &want {
            if have.contains(block) {
                continue;
            }
            let oif = h
                .link_by_name(link)?
                .ok_or_else(|| LabError::State {
                    path: self.spec.state_dir.clone(),
                    why: format!("fabric link {link} missing in {}", self.topo.fabric_netns),
                })?
                .index;
            h.add_route(&block_route(*block, *ip, oif))?;
            added += 1;
        }
        Ok((removed, added))
    }
}
