//! kubenet mode: a bridge (default `cbr0`) holding the pod CIDR's gateway, one
//! veth per pod with its host end on the bridge — a drop-in for AKS's
//! `bridge` + `host-local` chain (docs/azure.md#kubenet). SNAT is not done
//! here: on AKS `ipMasq` is false and ip-masq-agent masquerades (§3.3).

use aksnet_cniproto::{CmdArgs, CniResult, Interface, IpConfig, Route};
use aksnet_core::allocator::{AllocationMeta, Allocator, AttachmentKey, LeaseInfo};
use aksnet_core::naming::kubenet_host_veth_name;
use aksnet_netlink::{Handle, Route as KRoute, RouteProtocol, RouteScope, RT_TABLE_MAIN};
use ipnet::IpNet;

use crate::config::{KubenetConf, PluginConfig};
use crate::error::PluginError;
use crate::undo::Undo;

/// MTU of the bridge and veths when the config gives none.
pub const DEFAULT_MTU: u32 = 1500;
use crate::mode::{Addresses, Datapath};
use crate::veth::{create_pod_veth, prepare_pod_link, AddCtx, HostEnd, PodNs};

impl Datapath for KubenetConf {
    fn addresses(&self, _cfg: &PluginConfig) -> Result<Addresses, PluginError> {
        Ok(Addresses {
            pool: self.pool.clone(),
            node: None,
        })
    }

    fn setup(
        &self,
        ctx: &AddCtx<'_>,
        host: &mut Handle,
        pod: &mut PodNs,
        addresses: &[LeaseInfo],
        undo: &mut Undo<'_>,
    ) -> Result<CniResult, PluginError> {
        setup(ctx, self, host, pod, addresses, undo)
    }

    /// The host end's name derives from the attachment alone.
    fn host_veth(&self, key: &AttachmentKey, _meta: Option<&AllocationMeta>) -> String {
        kubenet_host_veth_name(&key.container_id, &key.ifname)
    }

    fn check_host(
        &self,
        args: &CmdArgs,
        _state: &Allocator,
        _ours: &[IpNet],
        host: &mut Handle,
        problems: &mut Vec<String>,
    ) -> Result<(), PluginError> {
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
    let AddCtx { args, cfg, claim } = *ctx;
    // AKS's kubenet template hard-codes 1500 (docs/azure.md#kubenet).
    let mtu = k.mtu.unwrap_or(DEFAULT_MTU);
    // The bridge is shared by every pod of the network and is never undone or
    // deleted (the reference bridge plugin keeps it too).
    let bridge = host.ensure_bridge(&k.bridge, mtu, k.promisc_mode)?;
    if k.is_gateway {
        for info in infos {
            if let Some(gw) = info.gateway {
                let net =
                    IpNet::new(gw, info.address.prefix_len()).map_err(|_| PluginError::Config {
                        field: "ipam.ranges".into(),
                        value: info.address.to_string(),
                        why: "gateway prefix is invalid".into(),
                    })?;
                host.ensure_addr(bridge.index, net)?;
                if gw.is_ipv4() {
                    aksnet_netlink::enable_ip_forward()?;
                } else {
                    aksnet_netlink::enable_ipv6_forward()?;
                }
            }
        }
    }

    let host_name = kubenet_host_veth_name(&args.container_id, &args.ifname);
    // Created up and already a port of the bridge: one request.
    let host_link = create_pod_veth(
        host,
        &host_name,
        &args.ifname,
        pod,
        mtu,
        HostEnd::BridgePort(bridge.index),
        claim,
    )?;
    let name_for_undo = host_name.clone();
    undo.push("delete host veth", move || {
        Handle::new()?.del_link_by_name(&name_for_undo)?;
        Ok(())
    });
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

    let routes: Vec<Route> = match &k.routes {
        Some(r) => r.clone(),
        None => infos
            .iter()
            .filter_map(|i| i.gateway.map(|gw| Route::new(default_dst(gw), Some(gw))))
            .collect(),
    };
    for r in &routes {
        // A route without gw goes via the gateway of its family (host-local's rule).
        let gw = r.gw.or_else(|| {
            infos
                .iter()
                .filter_map(|i| i.gateway)
                .find(|g| g.is_ipv4() == r.dst.addr().is_ipv4())
        });
        pod.add_route(&KRoute {
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
        })?;
    }

    let result = CniResult {
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
                name: args.ifname.clone(),
                mac: Some(pod_mac),
                mtu: Some(host_link.mtu),
                sandbox: Some(netns.path().display().to_string()),
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
    };
    Ok(result)
}

fn default_dst(gw: std::net::IpAddr) -> IpNet {
    match gw {
        std::net::IpAddr::V4(_) => IpNet::V4(Default::default()),
        std::net::IpAddr::V6(_) => IpNet::V6(Default::default()),
    }
}
