//! `lab netpol`'s plan (pure): which node each pod of a probe file runs on, the node and
//! gateway addresses, each node's pod range, and the manifests the agent reads.
//!
//! Pods keep the addresses the file gives them. A pod's `node` is used when given; otherwise
//! pods are grouped by their /24 (one node per /24, as kubenet gives each node a /24), and
//! when they all share one /24 (Node Subnet only) they alternate over two nodes, so both the
//! same-node and the cross-node paths are exercised.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use aksnet_policy::probe::{Scenario, Step};
use ipnet::Ipv4Net;
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
    /// `ns/pod` → (node index, address), over every step.
    pub pods: BTreeMap<String, (usize, Ipv4Addr)>,
}

fn invalid(value: impl Into<String>, why: impl Into<String>) -> LabError {
    LabError::Invalid {
        flag: "probe file",
        value: value.into(),
        why: why.into(),
    }
}

fn v4(key: &str, ip: IpAddr) -> Result<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(invalid(
            format!("{key} {ip}"),
            "lab netpol builds IPv4 pods only (the policy model and `aksnet policy eval` handle IPv6)",
        )),
    }
}

fn slash24(a: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(a, 24)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| Ipv4Net::from(a))
}

/// Every pod of every step with its address and requested node.
fn all_pods(s: &Scenario) -> Result<BTreeMap<String, (Option<String>, Ipv4Addr)>> {
    let mut out: BTreeMap<String, (Option<String>, Ipv4Addr)> = BTreeMap::new();
    for step in &s.steps {
        for p in &step.cluster.pods {
            let ip = v4(&p.key(), p.ips[0])?;
            if let Some((_, old)) = out.get(&p.key()) {
                if *old != ip {
                    return Err(invalid(p.key(), format!("changes address between steps ({old} then {ip}); give the new pod another name")));
                }
            }
            out.insert(p.key(), (p.node.clone(), ip));
        }
    }
    Ok(out)
}

pub fn plan(s: &Scenario, model: Model) -> Result<NetpolPlan> {
    let pods = all_pods(s)?;
    let mut used: BTreeSet<Ipv4Addr> = pods.values().map(|(_, ip)| *ip).collect();
    for step in &s.steps {
        for e in &step.externals {
            used.insert(v4(&format!("external:{}", e.name), e.ip)?);
        }
    }
    // Node of each pod: its own `node`, else its /24.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, (node, ip)) in &pods {
        let g = node.clone().unwrap_or_else(|| slash24(*ip).to_string());
        groups.entry(g).or_default().push(key.clone());
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
    let (subnet, gateway) = match model {
        Model::NodeSubnet => nodesubnet_subnet(&pods)?,
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
        let ips: Vec<Ipv4Addr> = keys.iter().map(|k| pods[k].1).collect();
        for k in keys {
            assigned.insert(k.clone(), (i, pods[k].1));
        }
        let (pod_cidr, pool) = match model {
            Model::Kubenet => {
                let cidr = slash24(ips[0]);
                if let Some(bad) = ips.iter().find(|a| {
                    !cidr.contains(*a) || **a == cidr.network() || **a == first_host(cidr)
                }) {
                    return Err(invalid(bad.to_string(), format!("kubenet pods of one node must share a /24 ({cidr}) and not use its network or .1 (cbr0) address")));
                }
                (Some(cidr), Vec::new())
            }
            Model::NodeSubnet => {
                let mut pool = ips.clone();
                // maxPods is at least 10 (AKS's minimum): pad with free addresses.
                while pool.len() < 10 {
                    pool.push(free.next().ok_or_else(|| {
                        invalid(subnet.to_string(), "no free address to pad a node pool")
                    })?);
                }
                (None, pool)
            }
        };
        nodes.push(NodeSlot {
            name: format!("node-{i}"),
            ip,
            pod_cidr,
            pool,
        });
    }
    Ok(NetpolPlan {
        model,
        subnet,
        gateway,
        nodes,
        pods: assigned,
    })
}

fn first_host(n: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.network()).wrapping_add(1))
}

/// Node Subnet: pods and nodes share one subnet: the /16 holding every pod.
fn nodesubnet_subnet(
    pods: &BTreeMap<String, (Option<String>, Ipv4Addr)>,
) -> Result<(Ipv4Net, Ipv4Addr)> {
    let mut it = pods.values().map(|(_, ip)| *ip);
    let first = it.next().ok_or_else(|| invalid("pods", "no pods"))?;
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
    if pods.values().any(|(_, ip)| *ip == gw) {
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
