//! `lab up --fabric l2`: real hosts of one LAN (issue 13 item 5).
//!
//! ```text
//!            <p>vnet: bridge br0 (a switch: no address, no route)
//!   node-0 ─┐
//!   node-1 ─┤  each node answers ARP for its own pods (agent --l2-uplink eth0)
//!   ...     │  and routes the other nodes' pod CIDRs (agent --kubenet-routes)
//!   svm ────┤  a VM inside the node subnet (reserved with `aksnet subnet reserve`)
//!   rtr ────┘  <p>rtr: an ordinary router, eth0 = the subnet's .1
//!                 ├── vm      VM subnet .1/24   <p>vm
//!                 ├── peer    peered range .1   <p>peer
//!                 └── onprem  on-premises .1    <p>onprem
//! ```
//!
//! Nothing here plays Azure: the router knows only its connected networks (no
//! pod route), the bridge only MAC addresses. Every path `lab check` proves
//! goes through what the nodes themselves do.

use std::net::{IpAddr, Ipv4Addr};

use aksnet_netlink::{Handle, Netns};
use ipnet::Ipv4Net;

use crate::error::{LabError, Result};
use crate::exec;
use crate::spec::{HostPlan, Model, NodePlan};
use crate::up::{Builder, NodeUp, LAB_MTU};

/// The switch in the fabric namespace.
pub const BRIDGE: &str = "br0";
/// The router's port on the switch (in the fabric namespace).
const ROUTER_PORT: &str = "rtr";

fn net(ip: Ipv4Addr, len: u8) -> aksnet_netlink::IpNet {
    aksnet_netlink::IpNet::new(IpAddr::V4(ip), len)
        .unwrap_or_else(|_| aksnet_netlink::IpNet::from(IpAddr::V4(ip)))
}

/// The l2 fabric builds no Pod Subnet lab: on a LAN nothing routes a pod
/// subnet's /28 blocks to their nodes (no agent does that yet; docs/lab.md,
/// "Fabrics").
pub(crate) fn l2_refusal(model: Model) -> LabError {
    LabError::invalid(
        "--fabric",
        "l2",
        format!(
            "builds nodesubnet, kubenet and overlay labs, not {}; use --fabric sdn",
            model.as_str()
        ),
    )
}

impl Builder<'_> {
    fn open(&self, name: &str) -> Result<(Netns, Handle)> {
        let ns = Netns::open(aksnet_netlink::named_netns_path(name))?;
        let h = Handle::in_netns(&ns)?;
        Ok((ns, h))
    }

    /// `eth0` of `peer_ns` plugged into the switch as `port`.
    fn plug(&self, port: &str, peer_ns: &Netns) -> Result<()> {
        let (_, mut fabric) = self.open(&self.topo.fabric_netns)?;
        let br = fabric
            .link_by_name(BRIDGE)?
            .ok_or_else(|| LabError::State {
                path: self.spec.state_dir.clone(),
                why: format!("bridge {BRIDGE} missing in {}", self.topo.fabric_netns),
            })?;
        let l = fabric.create_veth_in_bridge(port, "eth0", peer_ns, LAB_MTU, br.index)?;
        fabric.set_link_up(l.index)?;
        Ok(())
    }

    /// The switch and the router, whose `eth0` holds the subnet's `.1`.
    pub(crate) fn build_l2_fabric(&self) -> Result<()> {
        let (_, mut fabric) = self.open(&self.topo.fabric_netns)?;
        fabric.ensure_bridge(BRIDGE, LAB_MTU, false)?;
        let router = self.create_netns(&self.topo.router_netns, true)?;
        self.plug(ROUTER_PORT, &router)?;
        let mut h = Handle::in_netns(&router)?;
        let eth0 = h.link_by_name("eth0")?.ok_or_else(|| LabError::State {
            path: router.path().to_path_buf(),
            why: "eth0 missing right after veth creation".into(),
        })?;
        h.set_link_up(eth0.index)?;
        h.add_addr(
            eth0.index,
            net(self.topo.gateway, self.spec.subnet.prefix_len()),
        )?;
        Ok(())
    }

    /// A VM, peered or on-premises host behind the router.
    pub(crate) fn build_l2_host(&self, host: &HostPlan) -> Result<()> {
        let ns = self.create_netns(&host.netns, false)?;
        let (_, mut router) = self.open(&self.topo.router_netns)?;
        let l = router.create_veth(&host.fabric_link, "eth0", &ns, LAB_MTU, None)?;
        router.set_link_up(l.index)?;
        router.add_addr(l.index, net(host.gateway, host.range.prefix_len()))?;
        Self::configure_uplink(&ns, host.ip, host.range.prefix_len(), host.gateway)
    }

    /// The VM inside the node subnet: its address is reserved in the cluster
    /// store first (the Node Subnet FAQ: VMs may share the subnet; no node may
    /// be given their address), then it is plugged into the switch.
    pub(crate) fn build_subnet_vm(&self, vm: &HostPlan) -> Result<()> {
        exec::subnet_reserve(
            self.bins,
            vm.ip,
            &vm.netns,
            self.spec.subnet,
            &self.spec.subnet_name,
            &self.state.store_dir(),
        )?;
        let ns = self.create_netns(&vm.netns, false)?;
        self.plug(&vm.fabric_link, &ns)?;
        Self::configure_uplink(&ns, vm.ip, self.spec.subnet.prefix_len(), self.topo.gateway)
    }

    /// The node's uplink on the switch; kubenet nodes get their pod CIDR from
    /// the cluster store (`aksnet node join --pod-cidr-from`); Overlay nodes
    /// got theirs at join (`joined`).
    pub(crate) fn plug_l2_node(
        &self,
        n: &NodePlan,
        ns: &Netns,
        ip: Ipv4Addr,
        joined: Option<Ipv4Net>,
    ) -> Result<Option<Ipv4Net>> {
        self.plug(&n.fabric_link, ns)?;
        match self.spec.model {
            Model::NodeSubnet => Ok(None),
            Model::Overlay => Ok(joined),
            // Refused by `LabSpec::topology` before anything exists.
            Model::PodSubnet => Err(l2_refusal(self.spec.model)),
            Model::Kubenet => exec::node_join_pod_cidr(
                self.bins,
                &n.name,
                self.spec.pod_cidr,
                ip,
                &self.state.store_dir(),
                &self.state.node_dir(&n.name),
            )
            .map(Some),
        }
    }

    /// What the node's agent does on a LAN, on top of SNAT.
    pub fn l2_agent_args(&self, node: &NodeUp) -> Vec<String> {
        let data_dir = self.state.node_dir(&node.plan.name).display().to_string();
        match self.spec.model {
            Model::NodeSubnet => vec![
                "--l2-uplink".into(),
                "eth0".into(),
                "--data-dir".into(),
                data_dir,
            ],
            Model::PodSubnet => Vec::new(),
            // The other nodes' /24s, from the store, as for kubenet
            // (docs/models.md#overlay: `--kubenet-routes` on real hosts).
            Model::Kubenet | Model::Overlay => vec![
                "--store".into(),
                self.state.store_dir().display().to_string(),
                "--kubenet-routes".into(),
                node.plan.name.clone(),
            ],
        }
    }

    /// Once every node and pod exists: each node's agent answers for its pods
    /// and routes the other nodes' pod CIDRs.
    pub fn converge_l2(&self, nodes: &[NodeUp]) -> Result<()> {
        for node in nodes {
            let mut args = self.mode_args(node);
            args.extend(self.l2_agent_args(node));
            exec::agent_once(
                self.bins,
                &node.plan.netns,
                &args,
                &self.state.ip_masq_dir(),
                &self.topo.nft_table,
            )?;
        }
        Ok(())
    }
}
