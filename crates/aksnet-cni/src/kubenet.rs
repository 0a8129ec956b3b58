//! kubenet mode: a bridge (default `cbr0`) holding the pod CIDR's gateway, one
//! veth per pod with its host end on the bridge — a drop-in for AKS's
//! `bridge` + `host-local` chain (docs/azure.md#kubenet). SNAT is not done
//! here: on AKS `ipMasq` is false and ip-masq-agent masquerades (§3.3).

use aksnet_cniproto::{CniResult, Interface, IpConfig, Route};
use aksnet_core::allocator::{AllocationMeta, AttachmentKey, LeaseInfo};
use aksnet_core::naming::kubenet_host_veth_name;
use aksnet_netlink::{Handle, Link, Route as KRoute, RouteProtocol, RouteScope, RT_TABLE_MAIN};
use ipnet::IpNet;

use crate::config::{KubenetConf, PluginConfig};
use crate::error::PluginError;
use crate::undo::Undo;

/// MTU of the bridge and veths when the config gives none.
pub const DEFAULT_MTU: u32 = 1500;
use crate::mode::{Addresses, Datapath, HostCheck, Setup};
use crate::veth::{create_pod_veth, prepare_pod_link, AddCtx, HostEnd, PodNs};

impl Datapath for KubenetConf {
    fn addresses(&self, _cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        Ok(Addresses {
            pool: self.pool.clone(),
            node: None,
        })
    }

    fn setup(&self, s: Setup<'_, '_>) -> Result<CniResult, PluginError> {
        setup(&s.ctx, self, s.host, s.pod, s.addresses, s.undo)
    }

    /// The host end's name derives from the attachment alone.
    fn host_veth(&self, key: &AttachmentKey, _meta: Option<&AllocationMeta>) -> String {
        kubenet_host_veth_name(&key.container_id, &key.ifname)
    }

    fn check_host(&self, c: HostCheck<'_>) -> Result<(), PluginError> {
        let HostCheck {
            args,
            host,
            problems,
            ..
        } = c;
        let name = kubenet_host_veth_name(&args.container_id, &args.ifname);
        let bridge = host.link_by_name(&self.bridge)?;
        match (host.link_by_name(&name)?, bridge) {
            (None, _) => problems.push(format!("host veth {name} is missing")),
            (Some(_), None) => problems.push(format!("bridge {} is missing", self.bridge)),
            (Some(l), Some(b)) if l.master != Some(b.index) => problems.push(format!(
                "host veth {name} is not a port of bridge {}",
                self.bridge
            )),
            _ => {}
        }
        Ok(())
    }
}

fn setup(
    ctx: &AddCtx<'_>,
    k: &KubenetConf,
    host: &mut Handle,
    pod: &mut PodNs,
    infos: &[LeaseInfo],
    undo: &mut Undo<'_>,
) -> Result<CniResult, PluginError> {
    let AddCtx { args, cfg, .. } = *ctx;
    // AKS's kubenet template hard-codes 1500 (docs/azure.md#kubenet).
    let mtu = k.mtu.unwrap_or(DEFAULT_MTU);
    // The bridge is shared by every pod of the network and is never undone or
    // deleted (the reference bridge plugin keeps it too).
    let bridge = host.ensure_bridge(&k.bridge, mtu, k.promisc_mode)?;
    if k.is_gateway {
        gateway_addresses(host, bridge.index, infos)?;
    }

    let host_name = kubenet_host_veth_name(&args.container_id, &args.ifname);
    // Created up and already a port of the bridge: one request.
    let host_link = create_pod_veth(
        ctx,
        host,
        &host_name,
        pod,
        mtu,
        HostEnd::BridgePort(bridge.index),
        undo,
    )?;
    if k.hairpin_mode {
        host.set_hairpin(host_link.index, true)?;
    }
    // A bridge without an address of its own takes the lowest MAC of its
    // ports, so attaching this port may have changed it (a fresh bridge has
    // 00:00:00:00:00:00 until its first port): report it as it is now, as the
    // reference bridge plugin does by reading the bridge again.
    let bridge = host.link_by_index(bridge.index)?.unwrap_or(bridge);

    let netns = &pod.netns;
    let (pod_link, pod_mac) = prepare_pod_link(&mut pod.handle, args, cfg, netns)?;
    let pod = &mut pod.handle;
    for info in infos {
        pod.add_addr(pod_link, info.address)?;
    }
    pod.set_link_up(pod_link)?;

    let routes = pod_routes(k, infos);
    for r in &routes {
        pod.add_route(&kernel_route(r, infos, pod_link))?;
    }

    let pod_end = PodEnd {
        name: args.ifname.clone(),
        mac: pod_mac,
        sandbox: netns.path().display().to_string(),
    };
    Ok(add_result(&bridge, &host_link, pod_end, infos, routes))
}

/// The gateway addresses on the bridge, and forwarding on for their families.
fn gateway_addresses(
    host: &mut Handle,
    bridge: u32,
    infos: &[LeaseInfo],
) -> Result<(), PluginError> {
    for info in infos {
        let Some(gw) = info.gateway else { continue };
        let net = IpNet::new(gw, info.address.prefix_len()).map_err(|_| PluginError::Config {
            field: "ipam.ranges".into(),
            value: info.address.to_string(),
            why: "gateway prefix is invalid".into(),
        })?;
        host.ensure_addr(bridge, net)?;
        if gw.is_ipv4() {
            aksnet_netlink::enable_ip_forward()?;
        } else {
            aksnet_netlink::enable_ipv6_forward()?;
        }
    }
    Ok(())
}

/// `ipam.routes`, or a default route via each family's gateway.
fn pod_routes(k: &KubenetConf, infos: &[LeaseInfo]) -> Vec<Route> {
    match &k.routes {
        Some(r) => r.clone(),
        None => infos
            .iter()
            .filter_map(|i| i.gateway.map(|gw| Route::new(default_dst(gw), Some(gw))))
            .collect(),
    }
}

/// A pod route for the kernel; one without gw goes via the gateway of its family
/// (host-local's rule).
fn kernel_route(r: &Route, infos: &[LeaseInfo], pod_link: u32) -> KRoute {
    let gw = r.gw.or_else(|| {
        infos
            .iter()
            .filter_map(|i| i.gateway)
            .find(|g| g.is_ipv4() == r.dst.addr().is_ipv4())
    });
    KRoute {
        dst: r.dst,
        gateway: gw,
        oif: Some(pod_link),
        scope: if gw.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        },
        protocol: RouteProtocol::Boot,
        table: RT_TABLE_MAIN,
        metric: None,
        src: None,
    }
}

/// The pod's end of the veth as the result reports it.
struct PodEnd {
    name: String,
    mac: String,
    sandbox: String,
}

/// ADD's result: the bridge, the host veth and the pod's interface, as the reference
/// bridge plugin orders them; every address on the pod's interface (index 2).
fn add_result(
    bridge: &Link,
    host_link: &Link,
    pod: PodEnd,
    infos: &[LeaseInfo],
    routes: Vec<Route>,
) -> CniResult {
    CniResult {
        cni_version: String::new(),
        interfaces: vec![
            Interface {
                name: bridge.name.clone(),
                mac: Some(bridge.mac_string()),
                mtu: Some(bridge.mtu),
                ..Default::default()
            },
            Interface {
                name: host_link.name.clone(),
                mac: Some(host_link.mac_string()),
                mtu: Some(host_link.mtu),
                ..Default::default()
            },
            Interface {
                name: pod.name,
                mac: Some(pod.mac),
                mtu: Some(host_link.mtu),
                sandbox: Some(pod.sandbox),
                ..Default::default()
            },
        ],
        ips: infos
            .iter()
            .map(|i| IpConfig {
                version: None,
                address: i.address,
                gateway: i.gateway,
                interface: Some(2),
            })
            .collect(),
        routes,
        dns: Default::default(),
    }
}

fn default_dst(gw: std::net::IpAddr) -> IpNet {
    match gw {
        std::net::IpAddr::V4(_) => IpNet::V4(Default::default()),
        std::net::IpAddr::V6(_) => IpNet::V6(Default::default()),
    }
}
