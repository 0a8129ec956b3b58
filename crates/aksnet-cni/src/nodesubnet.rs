//! nodesubnet mode: Azure CNI's "transparent" datapath (docs/architecture.md#datapath-contracts;
//! docs/azure.md#transparent-mode, `transparent_endpointclient_linux.go`)
//! with addresses from the node's up-front reservation (`aksnet node join`).
//!
//! Pod: its address with the subnet's prefix and NO on-link subnet route,
//! `169.254.1.1/32 scope link`, `default via 169.254.1.1`, a neighbour entry
//! 169.254.1.1 → `aa:aa:aa:aa:aa:aa`. Host: `azv…` veth with that fixed MAC,
//! `proxy_arp=1`, `accept_ra=0`, one `/32` route per pod, MTU of the uplink.

use std::net::{IpAddr, Ipv4Addr};

use aksnet_cniproto::{CmdArgs, CniResult, Interface, IpConfig, Route};
use aksnet_core::allocator::{AllocationMeta, AttachmentKey};
use aksnet_core::naming::{
    azure_host_veth_name, container_host_veth_name, pod_interface_host_veth_name,
};
use aksnet_core::pool::NODE_POOL_FILE;
use aksnet_netlink::{Handle, NeighbourState, Route as KRoute, RouteProtocol};
use ipnet::IpNet;

use crate::config::{NodeSubnetConf, PluginConfig};
use crate::error::PluginError;
use crate::ipam::key;
use crate::mode::{node_pool_addresses, Addresses, Datapath, HostCheck, Setup};
use crate::undo::Undo;
use crate::veth::{create_pod_veth, prepare_pod_link, AddCtx, HostEnd, PodNs};

/// The pod's virtual gateway (Azure PR #753, docs/azure.md#transparent-mode).
pub const VIRTUAL_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// Fixed host-veth MAC (Azure PR #1524: a MAC that changed after creation
/// left the pod's neighbour entry stale).
pub const HOST_VETH_MAC: [u8; 6] = [0xaa; 6];
/// The MTU when no device leads to the node subnet (Ethernet's).
const DEFAULT_MTU: u32 = 1500;
/// Routes of a pod's interfaces other than `eth0` use this plus the
/// interface's index as their metric (unique within the pod).
const SECONDARY_METRIC_BASE: u32 = 100;

/// Host veth name. A Kubernetes pod's `eth0` gets Azure's name, `azv` +
/// SHA-1("<namespace>.<pod>")[:11]; every other attachment (a second interface
/// of a pod, or a container the runtime names by ID only, as podman and `ctr`
/// do) gets a name from its whole identity, so two attachments never share a
/// name by construction (issue 10, item 3).
fn host_veth_name(
    pod_namespace: Option<&str>,
    pod_name: Option<&str>,
    container_id: &str,
    ifname: &str,
) -> String {
    match (pod_namespace, pod_name) {
        (Some(ns), Some(name)) if ifname == "eth0" => azure_host_veth_name(ns, name),
        (Some(ns), Some(name)) => pod_interface_host_veth_name(ns, name, ifname),
        _ => container_host_veth_name(container_id, ifname),
    }
}

fn host_veth_for_args(args: &CmdArgs) -> String {
    host_veth_name(
        args.args.k8s_pod_namespace.as_deref(),
        args.args.k8s_pod_name.as_deref(),
        &args.container_id,
        &args.ifname,
    )
}

/// The host veth of a reservation, from what ADD stored with it.
fn host_veth_for(key: &AttachmentKey, meta: Option<&AllocationMeta>) -> String {
    host_veth_name(
        meta.and_then(|m| m.pod_namespace.as_deref()),
        meta.and_then(|m| m.pod_name.as_deref()),
        &key.container_id,
        &key.ifname,
    )
}

impl Datapath for NodeSubnetConf {
    /// The pod's interfaces take no router advertisements (`accept_ra=0`):
    /// set as the namespace's default before its interface is created, so
    /// the interface is born with it and ADD enters the namespace once.
    fn prepare_pod_netns(&self) -> aksnet_netlink::Result<()> {
        aksnet_netlink::set_default_accept_ra(0)
    }

    fn addresses(&self, cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        Ok(node_pool_addresses(cfg, "nodesubnet", "aksnet node join")?.1)
    }

    fn setup(&self, s: Setup<'_, '_>) -> Result<CniResult, PluginError> {
        let Setup {
            ctx,
            addresses,
            host,
            pod,
            undo,
        } = s;
        let address =
            addresses
                .first()
                .map(|i| i.address)
                .ok_or_else(|| PluginError::NodePool {
                    path: ctx.cfg.data_dir.join(NODE_POOL_FILE),
                    why: "the reserved address is not in the pool any more".into(),
                })?;
        setup(&ctx, self, host, pod, address, undo)
    }

    fn host_veth(&self, key: &AttachmentKey, meta: Option<&AllocationMeta>) -> String {
        host_veth_for(key, meta)
    }

    fn check_host(&self, c: HostCheck<'_>) -> Result<(), PluginError> {
        let HostCheck {
            args,
            state,
            ours,
            host,
            problems,
        } = c;
        let key = key(args);
        let name = host_veth_for(&key, state.meta(&key));
        let Some(link) = host.link_by_name(&name)? else {
            problems.push(format!("host veth {name} is missing"));
            return Ok(());
        };
        // Only the routes through the pod's host veth: the node's main table
        // holds one /32 per pod, and a dump of all of it made CHECK grow with N.
        let routes = host.list_routes_via(link.index)?;
        for net in ours {
            let want = IpNet::from(net.addr());
            if !routes
                .iter()
                .any(|r| r.dst == want && r.oif == Some(link.index))
            {
                problems.push(format!("host route {want} dev {name} is missing"));
            }
        }
        match aksnet_netlink::get_sysctl(&format!("net/ipv4/conf/{name}/proxy_arp")) {
            Ok(v) if v.trim() == "1" => {}
            Ok(v) => problems.push(format!("proxy_arp on {name} is {} (want 1)", v.trim())),
            Err(e) => problems.push(format!("proxy_arp on {name} cannot be read: {e}")),
        }
        Ok(())
    }
}

/// The MTU pods copy: Azure copies eth0's, the node's interface in the node
/// subnet. The configuration's `mtu` when it has one (`aksnet install` writes
/// it, so ADD asks the kernel nothing; the reference ptp never looks either).
/// Otherwise `uplink`'s, or that of the device through which the node reaches
/// its subnet's gateway (the subnet's first address, one of the five Azure
/// reserves): one FIB lookup and one link lookup, about 0.2 ms of an ADD
/// (docs/benchmarks.md).
fn uplink_mtu(n: &NodeSubnetConf, host: &mut Handle, address: IpNet) -> Result<u32, PluginError> {
    if let Some(m) = n.mtu {
        return Ok(m);
    }
    let mtu = match &n.uplink {
        Some(name) => Some(
            host.link_by_name(name)?
                .ok_or_else(|| PluginError::Config {
                    field: "uplink".into(),
                    value: name.clone(),
                    why: "no such interface on the node".into(),
                })?
                .mtu,
        ),
        None => match subnet_gateway(address) {
            Some(gw) => host.mtu_towards(gw)?,
            None => None,
        },
    };
    Ok(mtu.unwrap_or(DEFAULT_MTU))
}

/// The first address of the pod address's subnet (Azure's gateway).
fn subnet_gateway(address: IpNet) -> Option<IpAddr> {
    match address.trunc() {
        IpNet::V4(n) => u32::from(n.network())
            .checked_add(1)
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        IpNet::V6(_) => None,
    }
}

fn setup(
    ctx: &AddCtx<'_>,
    n: &NodeSubnetConf,
    host: &mut Handle,
    pod: &mut PodNs,
    address: IpNet,
    undo: &mut Undo<'_>,
) -> Result<CniResult, PluginError> {
    let AddCtx { args, cfg, .. } = *ctx;
    let mtu = uplink_mtu(n, host, address)?;
    let host_name = host_veth_for_args(args);
    let host_link = create_pod_veth(
        ctx,
        host,
        &host_name,
        pod,
        mtu,
        HostEnd::Mac(HOST_VETH_MAC),
        undo,
    )?;
    aksnet_netlink::set_accept_ra(&host_name, 0)?;
    aksnet_netlink::set_proxy_arp(&host_name, true)?;
    // The node routes between pods and its uplink; AKS sets this in AgentBaker
    // (999-sysctl-aks.conf), a plain machine may not have it.
    aksnet_netlink::enable_ip_forward()?;
    // The host end was created up. The route goes away with the link, so it
    // needs no undo step of its own.
    host.add_host_route(address.addr(), host_link.index)?;

    let netns = &pod.netns;
    let (pod_link, pod_mac) = prepare_pod_link(&mut pod.handle, args, cfg, netns)?;
    pod_side(&mut pod.handle, &args.ifname, pod_link, address)?;
    let gw = IpAddr::V4(VIRTUAL_GATEWAY);

    let result = CniResult {
        cni_version: String::new(),
        interfaces: vec![
            Interface {
                name: host_name,
                mac: Some(aksnet_netlink::format_mac(&HOST_VETH_MAC)),
                mtu: Some(mtu),
                ..Default::default()
            },
            Interface {
                name: args.ifname.clone(),
                mac: Some(pod_mac),
                mtu: Some(mtu),
                sandbox: Some(netns.path().display().to_string()),
                ..Default::default()
            },
        ],
        ips: vec![IpConfig {
            version: None,
            address,
            gateway: Some(gw),
            interface: Some(1),
        }],
        routes: vec![Route::new(IpNet::V4(Default::default()), Some(gw))],
        dns: Default::default(),
    };
    Ok(result)
}

/// The pod's side: its address without a connected route, the link up, the routes
/// to the virtual gateway and a permanent neighbour entry for it.
fn pod_side(
    pod: &mut Handle,
    ifname: &str,
    pod_link: u32,
    address: IpNet,
) -> Result<(), PluginError> {
    // The subnet prefix without its connected route: nothing is on-link, all
    // traffic goes to 169.254.1.1 (Azure PR #753).
    pod.add_addr_noprefixroute(pod_link, address)?;
    pod.set_link_up(pod_link)?;
    let gw = IpAddr::V4(VIRTUAL_GATEWAY);
    // A second interface of the pod (eth1, ...) reaches the same virtual
    // gateway: its routes get a metric of their own so they sit beside eth0's
    // instead of colliding with them (EEXIST).
    let metric = (ifname != "eth0").then_some(SECONDARY_METRIC_BASE + pod_link);
    // `169.254.1.1 dev eth0 scope link`, as Azure's `ip route add` makes it.
    pod.add_route(&KRoute {
        protocol: RouteProtocol::Boot,
        metric,
        ..KRoute::host(gw, pod_link)
    })?;
    pod.add_route(&KRoute {
        metric,
        ..KRoute::default_via(gw, pod_link)
    })?;
    // Azure writes this entry in NUD_PROBE and relies on proxy ARP to confirm
    // it; a permanent entry needs no ARP at all, which also removes the
    // first-packet ARP delay of Azure/azure-container-networking#778.
    pod.add_neighbour(pod_link, gw, HOST_VETH_MAC, NeighbourState::Permanent)?;

    Ok(())
}
