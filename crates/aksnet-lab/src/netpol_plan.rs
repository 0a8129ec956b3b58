//! `lab netpol`'s plan (pure): which node each pod of a probe file runs on, the node and
//! gateway addresses, each node's pod range, and the manifests the agent reads.
//!
//! Pods keep the addresses the file gives them. A pod's `node` is used when given; otherwise
//! pods are grouped by their /24 (one node per /24, as kubenet gives each node a /24), and
//! when they all share one /24 (Node Subnet only) they alternate over two nodes, so both the
//! same-node and the cross-node paths are exercised.
//!
//! IPv6 (Node Subnet only): a pod's IPv6 addresses are configured by the lab next to what
//! `aksnet-cni` sets up (the plugin assigns IPv4 today). An IPv6-only pod still gets an
//! IPv4 address of its node's pool for the plugin; the agent is never told of it, so the
//! policy table drops it as an unknown pod address, and every probe goes over IPv6.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aksnet_policy::probe::{Scenario, Step};
use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::{json, Value};

use crate::error::{LabError, Result};
use crate::spec::Model;

#[derive(Debug, Clone)]
pub struct NodeSlot {
    pub name: String,
    pub ip: Ipv4Addr,
    /// kubenet: the node's pod CIDR.
    pub pod_cidr: Option<Ipv4Net>,
    /// Node Subnet: the addresses reserved for the node (its pods' plus padding to maxPods).
    pub pool: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone)]
pub struct NetpolPlan {
    pub model: Model,
    /// The subnet nodes sit in (Node Subnet: the pods too).
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub nodes: Vec<NodeSlot>,
    /// `ns/pod` → (node index, IPv4 address: the file's or, for an IPv6-only pod, one of
    /// its node's pool that only the plugin knows), over every step.
    pub pods: BTreeMap<String, (usize, Ipv4Addr)>,
    /// `ns/pod` → its IPv6 addresses (Node Subnet), configured by the lab.
    pub pods6: BTreeMap<String, Vec<Ipv6Addr>>,
}

/// A pod's addresses in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodAddrs {
    node: Option<String>,
    v4: Option<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

fn invalid(value: impl Into<String>, why: impl Into<String>) -> LabError {
    LabError::Invalid {
        flag: "probe file",
        value: value.into(),
        why: why.into(),
    }
}

fn slash24(a: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(a, 24)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| Ipv4Net::from(a))
}

fn slash64(a: Ipv6Addr) -> Ipv6Net {
    Ipv6Net::new(a, 64)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| Ipv6Net::from(a))
}

/// Every pod of every step with its addresses and requested node.
fn all_pods(s: &Scenario, model: Model) -> Result<BTreeMap<String, PodAddrs>> {
    let mut out: BTreeMap<String, PodAddrs> = BTreeMap::new();
    for step in &s.steps {
        for p in &step.cluster.pods {
            let a = PodAddrs {
                node: p.node.clone(),
                v4: p.ips.iter().find_map(|ip| match ip {
                    IpAddr::V4(a) => Some(*a),
                    IpAddr::V6(_) => None,
                }),
                v6: p
                    .ips
                    .iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V6(a) => Some(*a),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
            };
            if a.v4.is_none() && model == Model::Kubenet {
                return Err(invalid(
                    p.key(),
                    "lab netpol builds IPv6 pods in the Node Subnet model only (--model nodesubnet)",
                ));
            }
            if let Some(old) = out.get(&p.key()) {
                if (old.v4, &old.v6) != (a.v4, &a.v6) {
                    return Err(invalid(
                        p.key(),
                        "changes address between steps; give the new pod another name",
                    ));
                }
            }
            out.insert(p.key(), a);
        }
    }
    Ok(out)
}

/// Which node group a pod belongs to: its own `node`, else its /24 (IPv4) or /64 (IPv6).
fn group_key(a: &PodAddrs) -> String {
    if let Some(n) = &a.node {
        return n.clone();
    }
    match (a.v4, a.v6.first()) {
        (Some(v4), _) => slash24(v4).to_string(),
        (None, Some(v6)) => slash64(*v6).to_string(),
        (None, None) => String::new(),
    }
}

pub fn plan(s: &Scenario, model: Model) -> Result<NetpolPlan> {
    if !matches!(model, Model::NodeSubnet | Model::Kubenet) {
        return Err(LabError::invalid(
            "--model",
            model.as_str(),
            "lab netpol builds nodesubnet and kubenet clusters",
        ));
    }
    let pods = all_pods(s, model)?;
    let used = used_addresses(s, &pods);
    let groups = node_groups(&pods, model)?;
    let (subnet, gateway) = match model {
        // (Pod Subnet and Overlay are refused above.)
        Model::NodeSubnet | Model::PodSubnet | Model::Overlay => nodesubnet_subnet(&pods, &used)?,
        Model::Kubenet => kubenet_subnet(&used)?,
    };
    let mut free = subnet
        .hosts()
        .filter(|a| *a != gateway && !used.contains(a) && a.octets()[3] >= 4);
    let mut nodes = Vec::new();
    let mut assigned = BTreeMap::new();
    for (i, (_, keys)) in groups.iter().enumerate() {
        let ip = free
            .next()
            .ok_or_else(|| invalid(subnet.to_string(), "no free address for a node"))?;
        let mut ips: Vec<Ipv4Addr> = Vec::new();
        for k in keys {
            let v4 = plugin_address(&pods[k], subnet, &mut free)?;
            ips.push(v4);
            assigned.insert(k.clone(), (i, v4));
        }
        let (pod_cidr, pool) = node_pod_range(model, ips, subnet, &mut free)?;
        nodes.push(NodeSlot {
            name: format!("node-{i}"),
            ip,
            pod_cidr,
            pool,
        });
    }
    let pods6 = match model {
        Model::NodeSubnet | Model::PodSubnet | Model::Overlay => pods
            .iter()
            .filter(|(_, a)| !a.v6.is_empty())
            .map(|(k, a)| (k.clone(), a.v6.clone()))
            .collect(),
        Model::Kubenet => BTreeMap::new(),
    };
    Ok(NetpolPlan {
        model,
        subnet,
        gateway,
        nodes,
        pods: assigned,
        pods6,
    })
}

/// The IPv4 addresses the file gives to pods and externals: no node takes one.
fn used_addresses(s: &Scenario, pods: &BTreeMap<String, PodAddrs>) -> BTreeSet<Ipv4Addr> {
    let mut used: BTreeSet<Ipv4Addr> = pods.values().filter_map(|a| a.v4).collect();
    for step in &s.steps {
        for e in &step.externals {
            if let IpAddr::V4(a) = e.ip {
                used.insert(a);
            }
        }
    }
    used
}

/// The pods of each node (see the module's comment): by `node`, else by /24 or /64;
/// Node Subnet pods all in one group alternate over two nodes.
fn node_groups(
    pods: &BTreeMap<String, PodAddrs>,
    model: Model,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, a) in pods {
        groups.entry(group_key(a)).or_default().push(key.clone());
    }
    if groups.len() == 1 && model == Model::NodeSubnet {
        let only: Vec<String> = groups.into_values().next().unwrap_or_default();
        groups = BTreeMap::new();
        for (i, k) in only.into_iter().enumerate() {
            groups.entry(format!("node-{}", i % 2)).or_default().push(k);
        }
    }
    if groups.len() < 2 {
        return Err(invalid("pods", "kubenet needs pods in at least two /24s (one pod CIDR per node) so that cross-node paths are exercised"));
    }
    Ok(groups)
}

/// The IPv4 address the plugin gives the pod: the file's, or for an IPv6-only pod
/// (Node Subnet) a free address of the pool.
fn plugin_address(
    pod: &PodAddrs,
    subnet: Ipv4Net,
    free: &mut dyn Iterator<Item = Ipv4Addr>,
) -> Result<Ipv4Addr> {
    match pod.v4 {
        Some(a) => Ok(a),
        None => free.next().ok_or_else(|| {
            invalid(
                subnet.to_string(),
                "no free address for an IPv6 pod's plugin address",
            )
        }),
    }
}

/// A node's pod range from its pods' addresses `ips`: kubenet, the /24 they share;
/// Node Subnet, a pool of them padded to AKS's minimum maxPods.
fn node_pod_range(
    model: Model,
    ips: Vec<Ipv4Addr>,
    subnet: Ipv4Net,
    free: &mut dyn Iterator<Item = Ipv4Addr>,
) -> Result<(Option<Ipv4Net>, Vec<Ipv4Addr>)> {
    match model {
        Model::Kubenet => {
            let cidr = slash24(ips[0]);
            if let Some(bad) = ips
                .iter()
                .find(|a| !cidr.contains(*a) || **a == cidr.network() || **a == first_host(cidr))
            {
                return Err(invalid(bad.to_string(), format!("kubenet pods of one node must share a /24 ({cidr}) and not use its network or .1 (cbr0) address")));
            }
            Ok((Some(cidr), Vec::new()))
        }
        Model::NodeSubnet | Model::PodSubnet | Model::Overlay => {
            let mut pool = ips;
            // maxPods is at least 10 (AKS's minimum): pad with free addresses.
            while pool.len() < 10 {
                pool.push(free.next().ok_or_else(|| {
                    invalid(subnet.to_string(), "no free address to pad a node pool")
                })?);
            }
            Ok((None, pool))
        }
    }
}

fn first_host(n: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.network()).wrapping_add(1))
}

/// Node Subnet: pods and nodes share one subnet: the /16 holding every IPv4 pod (with
/// IPv6-only pods alone, a built-in /16 apart from every external).
fn nodesubnet_subnet(
    pods: &BTreeMap<String, PodAddrs>,
    used: &BTreeSet<Ipv4Addr>,
) -> Result<(Ipv4Net, Ipv4Addr)> {
    let mut it = pods.values().filter_map(|a| a.v4);
    let Some(first) = it.next() else {
        let (n, _) = kubenet_subnet(used)?;
        let n = Ipv4Net::new(n.network(), 16)
            .map(|n| n.trunc())
            .map_err(|e| invalid(n.to_string(), e.to_string()))?;
        return Ok((n, first_host(n)));
    };
    let subnet = Ipv4Net::new(first, 16)
        .map(|n| n.trunc())
        .map_err(|e| invalid(first.to_string(), e.to_string()))?;
    if let Some(out) = it.find(|a| !subnet.contains(a)) {
        return Err(invalid(
            out.to_string(),
            format!("Node Subnet pods must share one /16 (the node subnet), here {subnet}"),
        ));
    }
    let gw = first_host(subnet);
    if pods.values().any(|a| a.v4 == Some(gw)) {
        return Err(invalid(gw.to_string(), "is the node subnet's gateway (.1)"));
    }
    Ok((subnet, gw))
}

/// kubenet: nodes in a subnet apart from every pod and external address.
fn kubenet_subnet(used: &BTreeSet<Ipv4Addr>) -> Result<(Ipv4Net, Ipv4Addr)> {
    for cand in ["10.240.0.0/24", "172.16.0.0/24", "192.168.250.0/24"] {
        let n: Ipv4Net = cand
            .parse()
            .map_err(|_| invalid(cand, "bad built-in subnet"))?;
        if !used.iter().any(|a| n.contains(a)) {
            return Ok((n, first_host(n)));
        }
    }
    Err(invalid(
        "pods",
        "every candidate node subnet overlaps a pod or external address",
    ))
}

/// The manifests of one step, as `kubectl get -o json` prints them: a `List` of the
/// namespaces and pods (with nodeName and podIP), and a `List` of the policies.
pub fn manifests(step: &Step, plan: &NetpolPlan) -> (Value, Value) {
    let mut items: Vec<Value> = step
        .cluster
        .namespaces
        .iter()
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n.name, "labels": n.effective_labels()}}))
        .collect();
    for p in &step.cluster.pods {
        let node = plan
            .pods
            .get(&p.key())
            .and_then(|(i, _)| plan.nodes.get(*i))
            .map(|n| n.name.clone());
        let ports: Vec<Value> = p
            .ports
            .iter()
            .map(|cp| {
                let mut v = json!({"containerPort": cp.port, "protocol": cp.protocol.as_str()});
                if let Some(n) = &cp.name {
                    v["name"] = json!(n);
                }
                v
            })
            .collect();
        let ips: Vec<Value> = p
            .ips
            .iter()
            .map(|ip| json!({"ip": ip.to_string()}))
            .collect();
        items.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": p.namespace, "labels": p.labels},
            "spec": {"nodeName": node, "containers": [{"name": "agnhost", "ports": ports}]},
            "status": {"phase": "Running", "podIP": p.ips[0].to_string(), "podIPs": ips}
        }));
    }
    let cluster = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let policies = json!({"apiVersion": "v1", "kind": "List", "items": step.raw_policies});
    (cluster, policies)
}
