//! `lab up`: builds the world of a [`Topology`] in network namespaces.
//!
//! ```text
//!                       <p>vnet (the fabric: Azure's SDN)
//!   node-0 ─┐  routes: node IP/32 → node-i; Node Subnet: each reserved pod IP/32 via its node;
//!   node-1 ─┤          kubenet: table 100 (the route table) pod CIDR via node IP,
//!   ...     │          used only for traffic entering from node links (the table is
//!           │          associated with the node subnet)
//!   vm ─────┤  VM subnet .1/24      <p>vm      eth0 .4, default via .1
//!   peer ───┤  peered VNet .1       <p>peer    eth0 .4
//!   onprem ─┘  on-premises .1       <p>onprem  eth0 .4
//! ```
//!
//! Each node netns has `eth0` (node IP with the subnet's prefix, default via
//! the subnet's `.1`), forwarding on, `aksnet agent --once` applied, and pods
//! attached by the real `aksnet-cni`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use aksnet_netlink::{
    create_named_netns, run_in_netns, set_proxy_arp, set_sysctl, Handle, IpNet, Netns, Route,
    RouteProtocol, RouteScope, RT_TABLE_MAIN,
};

use crate::error::{LabError, Result};
use crate::exec::{self, Binaries, CniFailure};
use crate::spec::{
    Fabric, HostPlan, LabSpec, Model, NodePlan, PodPlan, Topology, OVERLAY_TABLE_ID, UDR_TABLE_ID,
};
use crate::state::{Entry, Journal, StateDir};

/// The MTU of every lab link (an Azure NIC's usual MTU, docs/azure.md#transparent-mode).
pub const LAB_MTU: u32 = 1500;

/// What `up` built.
#[derive(Debug, Clone)]
pub struct UpReport {
    pub nodes: usize,
    pub pods: usize,
    pub elapsed: Duration,
}

/// A node once it exists: its plan and its address.
#[derive(Debug, Clone)]
pub struct NodeUp {
    pub plan: NodePlan,
    pub ip: Ipv4Addr,
    /// kubenet: the node's pod CIDR (the plan's on the sdn fabric, the cluster
    /// store's on l2).
    pub pod_cidr: Option<ipnet::Ipv4Net>,
}

/// Everything a running `up` (or the demo adding pods later) needs.
pub struct Builder<'a> {
    pub spec: &'a LabSpec,
    pub topo: &'a Topology,
    pub state: StateDir,
    pub journal: Journal,
    pub bins: &'a Binaries,
    /// Serialises changes of the fabric's Pod Subnet routes (`fabric_podsubnet`).
    pub(crate) fabric_lock: std::sync::Mutex<()>,
}

/// Builds the lab. On error the state stays for `lab down`.
pub fn up(spec: &LabSpec, bins: &Binaries, out: &mut dyn Write) -> Result<UpReport> {
    let started = Instant::now();
    let topo = spec.topology()?;
    let state = StateDir::new(&spec.state_dir);
    state.create(spec)?;
    let journal = state.open_journal()?;
    let b = Builder {
        spec,
        topo: &topo,
        state,
        journal,
        bins,
        fabric_lock: std::sync::Mutex::new(()),
    };
    b.build_fabric()?;
    for host in topo.hosts() {
        match spec.fabric {
            Fabric::Sdn => b.build_host(host)?,
            Fabric::L2 => b.build_l2_host(host)?,
        }
    }
    if let Some(vm) = &topo.subnet_vm {
        b.build_subnet_vm(vm)?;
    }
    if let Some(dns) = &topo.azure_dns {
        b.build_host(dns)?;
    }
    let up_nodes = b.build_nodes()?;
    let pods: usize = up_nodes.iter().map(|n| n.plan.pods.len()).sum();
    if spec.fabric == Fabric::L2 {
        b.converge_l2(&up_nodes)?;
    }
    if spec.model == Model::PodSubnet {
        b.sync_pod_subnet_routes()?;
    }
    b.journal.record(&Entry::UpDone)?;
    let report = UpReport {
        nodes: topo.nodes.len(),
        pods,
        elapsed: started.elapsed(),
    };
    let _ = writeln!(
        out,
        "lab {} up: {}, {} nodes, {} pods in {:.1} s (state {})",
        spec.prefix,
        spec.title(),
        report.nodes,
        report.pods,
        report.elapsed.as_secs_f64(),
        spec.state_dir.display()
    );
    Ok(report)
}

pub(crate) fn cni_error(node: &NodeUp, pod: &PodPlan, f: CniFailure) -> LabError {
    LabError::Cni {
        pod: pod.name.clone(),
        node: node.plan.name.clone(),
        code: f.code,
        msg: f.msg,
        details: f.details,
    }
}

fn net(ip: Ipv4Addr, len: u8) -> IpNet {
    IpNet::new(IpAddr::V4(ip), len).unwrap_or_else(|_| IpNet::from(IpAddr::V4(ip)))
}

/// `<dst> via <gw> dev <oif>` in `table`.
pub(crate) fn via_route(dst: IpNet, gw: Ipv4Addr, oif: u32, table: u32) -> Route {
    Route {
        dst,
        gateway: Some(IpAddr::V4(gw)),
        oif: Some(oif),
        scope: RouteScope::Universe,
        protocol: RouteProtocol::Static,
        table,
        metric: None,
        src: None,
    }
}

impl<'a> Builder<'a> {
    /// Every node and its pods, one thread per node: joins serialise in the
    /// store, the rest is per node. The first error wins.
    fn build_nodes(&self) -> Result<Vec<NodeUp>> {
        // One thread per node: joins serialise in the store, the rest is per node.
        let results: Vec<Result<NodeUp>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .topo
                .nodes
                .iter()
                .map(|n| {
                    let b = self;
                    s.spawn(move || -> Result<NodeUp> {
                        let node = b.build_node(n)?;
                        for pod in &n.pods {
                            b.add_pod(&node, pod)?
                                .map_err(|f| cni_error(&node, pod, f))?;
                        }
                        Ok(node)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LabError::State {
                            path: self.spec.state_dir.clone(),
                            why: "a node thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }

    /// A builder for a lab that is already up (the demo adds nodes and pods).
    pub fn resume(spec: &'a LabSpec, topo: &'a Topology, bins: &'a Binaries) -> Result<Self> {
        let state = StateDir::new(&spec.state_dir);
        let journal = state.open_journal()?;
        Ok(Self {
            spec,
            topo,
            state,
            journal,
            bins,
            fabric_lock: std::sync::Mutex::new(()),
        })
    }

    /// Journals, then creates, a named netns with loopback up. Strict
    /// reverse-path filtering inherited from the machine (IPv4 conf is copied
    /// from the initial netns) is turned off: the fabric and the nodes
    /// forward asymmetric-looking traffic by design.
    pub(crate) fn create_netns(&self, name: &str, router: bool) -> Result<Netns> {
        self.journal.record(&Entry::Netns {
            name: name.to_string(),
        })?;
        let ns = create_named_netns(name)?;
        let mut h = Handle::in_netns(&ns)?;
        if let Some(lo) = h.link_by_name("lo")? {
            h.set_link_up(lo.index)?;
        }
        if router {
            run_in_netns(&ns, || -> aksnet_netlink::Result<()> {
                set_sysctl("net/ipv4/conf/all/rp_filter", "0")?;
                set_sysctl("net/ipv4/conf/default/rp_filter", "0")?;
                set_sysctl("net/ipv4/ip_forward", "1")
            })??;
        }
        Ok(ns)
    }

    pub(crate) fn fabric(&self) -> Result<(Netns, Handle)> {
        let ns = Netns::open(aksnet_netlink::named_netns_path(&self.topo.fabric_netns))?;
        let h = Handle::in_netns(&ns)?;
        Ok((ns, h))
    }

    fn build_fabric(&self) -> Result<()> {
        // The agents' --config-dir: the lab's own, never the machine's /etc/config.
        let ip_masq = self.state.ip_masq_dir();
        std::fs::create_dir_all(&ip_masq).map_err(|e| LabError::io("create", &ip_masq, e))?;
        if self.spec.non_masq_peer {
            // What Azure/AKS#1207 tells users to do to keep pod IPs towards a
            // peered VNet: add its range to nonMasqueradeCIDRs.
            let file = ip_masq.join("ip-masq-agent");
            let text = format!("{{\"nonMasqueradeCIDRs\": [\"{}\"]}}\n", self.spec.peer);
            std::fs::write(&file, text).map_err(|e| LabError::io("write", &file, e))?;
        }
        self.create_netns(&self.topo.fabric_netns, true)?;
        if self.spec.fabric == Fabric::L2 {
            self.build_l2_fabric()?;
        }
        Ok(())
    }

    /// Connects `peer_ns` to the fabric with a veth: `link` in the fabric,
    /// `eth0` (up) in `peer_ns`. Returns the fabric link's index.
    fn connect_to_fabric(&self, link: &str, peer_ns: &Netns) -> Result<u32> {
        let (_, mut fabric) = self.fabric()?;
        let l = fabric.create_veth(link, "eth0", peer_ns, LAB_MTU, None)?;
        Ok(l.index)
    }

    /// `eth0` up with `ip/len` and `default via gw` in `ns`.
    pub(crate) fn configure_uplink(ns: &Netns, ip: Ipv4Addr, len: u8, gw: Ipv4Addr) -> Result<()> {
        let mut h = Handle::in_netns(ns)?;
        let eth0 = h.link_by_name("eth0")?.ok_or_else(|| LabError::State {
            path: ns.path().to_path_buf(),
            why: "eth0 missing right after veth creation".into(),
        })?;
        h.set_link_up(eth0.index)?;
        h.add_addr(eth0.index, net(ip, len))?;
        h.add_default_route(IpAddr::V4(gw), eth0.index)?;
        Ok(())
    }

    fn build_host(&self, host: &HostPlan) -> Result<()> {
        let ns = self.create_netns(&host.netns, false)?;
        let idx = self.connect_to_fabric(&host.fabric_link, &ns)?;
        let (_, mut fabric) = self.fabric()?;
        fabric.add_addr(idx, net(host.gateway, host.range.prefix_len()))?;
        Self::configure_uplink(&ns, host.ip, host.range.prefix_len(), host.gateway)
    }

    /// Joins the node (Node Subnet: `aksnet node join`), creates its netns
    /// and uplink, connects it to the fabric and applies the agent.
    pub fn build_node(&self, n: &NodePlan) -> Result<NodeUp> {
        let data_dir = self.state.node_dir(&n.name);
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| LabError::io("create node data dir", &data_dir, e))?;
        let (ip, pod_ips, joined_cidr) = match self.spec.model {
            Model::NodeSubnet | Model::PodSubnet | Model::Overlay => {
                let pool = exec::node_join(
                    self.bins,
                    &n.name,
                    self.spec.subnet,
                    &self.spec.subnet_name,
                    self.spec.max_pods,
                    &self.state.store_dir(),
                    &data_dir,
                    &self.join_args(),
                )?;
                (pool.node_ip, pool.pod_ips, pool.overlay.map(|o| o.pod_cidr))
            }
            Model::Kubenet => (n.ip.unwrap_or(self.topo.gateway), Vec::new(), None),
        };
        self.journal.record(&Entry::Node {
            name: n.name.clone(),
            ip,
        })?;
        let ns = self.create_netns(&n.netns, true)?;
        let pod_cidr = match self.spec.fabric {
            Fabric::Sdn => {
                let cidr = n.pod_cidr.or(joined_cidr);
                self.connect_sdn_node(n, &ns, ip, &pod_ips, cidr)?;
                cidr
            }
            Fabric::L2 => self.plug_l2_node(n, &ns, ip, joined_cidr)?,
        };
        Self::configure_uplink(&ns, ip, self.spec.subnet.prefix_len(), self.topo.gateway)?;
        let node = NodeUp {
            plan: n.clone(),
            ip,
            pod_cidr,
        };
        exec::agent_once(
            self.bins,
            &n.netns,
            &self.mode_args(&node),
            &self.state.ip_masq_dir(),
            &self.topo.nft_table,
        )?;
        Ok(node)
    }

    /// `aksnet node join`'s flags for the lab's model, after the node
    /// subnet's (docs/models.md: Pod Subnet, and Overlay's contract).
    fn join_args(&self) -> Vec<String> {
        let s = self.spec;
        match s.model {
            Model::PodSubnet => vec![
                "--pod-subnet".into(),
                s.pod_subnet.to_string(),
                "--pod-subnet-name".into(),
                s.pod_subnet_name.clone(),
                "--pod-allocation".into(),
                s.pod_allocation.to_string(),
            ],
            Model::Overlay => vec![
                "--overlay".into(),
                "--pod-cidr-from".into(),
                s.pod_cidr.to_string(),
            ],
            Model::NodeSubnet | Model::Kubenet => Vec::new(),
        }
    }

    /// The agent's SNAT flags for the lab's model.
    pub(crate) fn mode_args(&self, node: &NodeUp) -> Vec<String> {
        match self.spec.model {
            // AKS masquerades only Azure DNS and IMDS in Pod Subnet; the
            // agent's podsubnet default (docs/models.md, the contract).
            Model::PodSubnet => vec![
                "--mode".into(),
                "podsubnet".into(),
                "--pod-cidr".into(),
                self.spec.pod_subnet.to_string(),
            ],
            // Everything leaving the pod CIDR is SNATed to the node IP (Overlay article).
            Model::Overlay => vec![
                "--mode".into(),
                "overlay".into(),
                "--cluster-pod-cidr".into(),
                self.spec.pod_cidr.to_string(),
            ],
            Model::NodeSubnet => vec![
                "--mode".into(),
                "nodesubnet".into(),
                "--vnet-cidr".into(),
                self.spec.vnet.to_string(),
                "--pod-cidr".into(),
                self.spec.subnet.to_string(),
            ],
            Model::Kubenet => vec![
                "--mode".into(),
                "kubenet".into(),
                "--cluster-pod-cidr".into(),
                self.spec.pod_cidr.to_string(),
                "--pod-cidr".into(),
                node.pod_cidr.map(|c| c.to_string()).unwrap_or_default(),
            ],
        }
    }

    /// The sdn fabric's side of a node: Azure's SDN routes to it.
    fn connect_sdn_node(
        &self,
        n: &NodePlan,
        ns: &Netns,
        ip: Ipv4Addr,
        pod_ips: &[Ipv4Addr],
        pod_cidr: Option<ipnet::Ipv4Net>,
    ) -> Result<()> {
        let link = self.connect_to_fabric(&n.fabric_link, ns)?;
        // The fabric side: the subnet gateway (.1) on every node link, /32 so
        // no link claims the whole subnet; proxy ARP answers a node's on-link
        // ARP for other nodes and pods, as Azure's SDN answers every ARP.
        let (fabric_ns, mut fabric) = self.fabric()?;
        fabric.add_addr(link, net(self.topo.gateway, 32))?;
        let link_name = n.fabric_link.clone();
        run_in_netns(&fabric_ns, || -> aksnet_netlink::Result<()> {
            set_proxy_arp(&link_name, true)?;
            set_sysctl(&format!("net/ipv4/neigh/{link_name}/proxy_delay"), "0")
        })??;
        fabric.add_host_route(IpAddr::V4(ip), link)?;
        match self.spec.model {
            // Each reserved pod address is a secondary IP of the node's NIC:
            // the SDN delivers it to that node (docs/azure.md#node-subnet).
            Model::NodeSubnet => {
                for pod_ip in pod_ips {
                    fabric.add_route(&via_route(net(*pod_ip, 32), ip, link, RT_TABLE_MAIN))?;
                }
            }
            // The route table's entry for this node, and the table's
            // association with the node subnet: only traffic entering from a
            // node link consults it (docs/azure.md#kubenet-routes).
            Model::Kubenet => {
                let route = self
                    .topo
                    .route_table
                    .routes()
                    .iter()
                    .find(|r| r.name == n.name)
                    .ok_or_else(|| LabError::State {
                        path: self.spec.state_dir.clone(),
                        why: format!("no route table entry for {}", n.name),
                    })?;
                self.node_only_route(&mut fabric, n, link, route.address_prefix, ip, UDR_TABLE_ID)?;
            }
            // Azure routes the overlay between nodes: the node's /24 (from the
            // store) via its IP, and nothing for the rest of the VNet: "the
            // VNet cannot reach pods directly" (Overlay article).
            Model::Overlay => {
                let cidr = pod_cidr.ok_or_else(|| LabError::State {
                    path: self.spec.state_dir.clone(),
                    why: format!("overlay node {} joined without a pod CIDR", n.name),
                })?;
                self.node_only_route(&mut fabric, n, link, cidr, ip, OVERLAY_TABLE_ID)?;
            }
            // The store's blocks, once every node has joined
            // (`sync_pod_subnet_routes`): a dynamic node's blocks move.
            Model::PodSubnet => {}
        }
        Ok(())
    }

    /// `cidr via ip` in `table`, which only traffic entering from node links
    /// consults (`ip rule iif <link> lookup <table>`).
    fn node_only_route(
        &self,
        fabric: &mut Handle,
        n: &NodePlan,
        link: u32,
        cidr: ipnet::Ipv4Net,
        ip: Ipv4Addr,
        table: u32,
    ) -> Result<()> {
        fabric.add_route(&via_route(IpNet::V4(cidr), ip, link, table))?;
        exec::ip(
            &self.topo.fabric_netns,
            &[
                "rule",
                "add",
                "iif",
                &n.fabric_link,
                "lookup",
                &table.to_string(),
                "pref",
                "100",
            ],
        )
    }

    /// The CNI network config a runtime on this node would pass.
    pub fn cni_config(&self, node: &NodeUp) -> String {
        let data_dir = self.state.node_dir(&node.plan.name);
        let cfg = match self.spec.model {
            Model::NodeSubnet | Model::PodSubnet | Model::Overlay => serde_json::json!({
                "cniVersion": "1.1.0", "name": "azure", "type": "aksnet-cni",
                "mode": self.spec.model.as_str(), "dataDir": data_dir,
                "logFile": data_dir.join("aksnet-cni.log"),
            }),
            Model::Kubenet => serde_json::json!({
                "cniVersion": "1.1.0", "name": "kubenet", "type": "aksnet-cni",
                "mode": "kubenet", "bridge": "cbr0", "dataDir": data_dir,
                "logFile": data_dir.join("aksnet-cni.log"),
                "ipam": {"ranges": [[{"subnet": node.pod_cidr.map(|c| c.to_string()).unwrap_or_default()}]]},
            }),
        };
        cfg.to_string()
    }

    /// Creates the pod's netns and runs `aksnet-cni` ADD for it. The outer
    /// error is the lab's; the inner one is the plugin's CNI error result.
    pub fn add_pod(
        &self,
        node: &NodeUp,
        pod: &PodPlan,
    ) -> Result<std::result::Result<Ipv4Addr, CniFailure>> {
        self.create_netns(&pod.netns, false)?;
        let config = self.cni_config(node);
        let mut answer = self.cni_add(node, pod, &config)?;
        if self.spec.model == Model::PodSubnet
            && matches!(&answer, Err(f) if f.code == exec::CNI_TRY_AGAIN)
        {
            // The node's dynamic pool is empty: what CNS does then is take a
            // batch (`aksnet node pod-sync`); the SDN then delivers the new
            // block to the node, and the runtime retries.
            let data_dir = self.state.node_dir(&node.plan.name);
            exec::pod_sync(self.bins, &self.state.store_dir(), &data_dir)?;
            self.sync_pod_subnet_routes()?;
            answer = self.cni_add(node, pod, &config)?;
        }
        if let Ok(ip) = answer {
            self.journal.record(&Entry::Pod {
                node: node.plan.name.clone(),
                name: pod.name.clone(),
                ip,
            })?;
        }
        Ok(answer)
    }

    pub(crate) fn cni_add(
        &self,
        node: &NodeUp,
        pod: &PodPlan,
        config: &str,
    ) -> Result<std::result::Result<Ipv4Addr, CniFailure>> {
        match exec::cni(
            self.bins,
            "ADD",
            &node.plan.netns,
            &pod.name,
            &pod.netns,
            config,
        )? {
            Ok(result) => exec::result_ipv4(&result)
                .map(Ok)
                .ok_or_else(|| LabError::Command {
                    what: format!("aksnet-cni ADD {}", pod.name),
                    status: "exit 0".into(),
                    message: format!("result has no IPv4 address: {result}"),
                }),
            Err(f) => Ok(Err(f)),
        }
    }
}
