//! `lab migrate --to overlay --apply`: a kubenet or Node Subnet lab becomes an Azure CNI
//! Overlay lab, node by node, as AKS's migration reimages every node
//! (Microsoft Learn, "Update Azure CNI IPAM mode and data plane technology",
//! update-azure-cni.md; docs/lab.md, "Migration"). What AKS refuses is decided before this
//! runs, by the planner's migration rules (the `aksnet` command).
//!
//! For each node: its pods are deleted through the plugin (CNI DEL); the node leaves the
//! cluster store (Node Subnet; a kubenet node of the sdn fabric never joined it); the node's
//! namespace is removed (the reimage) and the node joins again with `--overlay`; the fabric
//! routes its /24 as the overlay lab does, the agent runs in `--mode overlay`, and the pods
//! are added again (CNI ADD). kubenet's route table stays attached until every node has
//! moved, as in Azure, where its entries (pod CIDR → node IP) outlive the reimage; then it
//! is detached. After each node the pod-to-pod matrix between nodes is probed, and each pod's
//! outage is measured from its DEL to the first answered probe after its ADD.

use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use aksnet_netlink::{delete_named_netns, IpNet};
use ipnet::Ipv4Net;

use crate::check::{probe_once, Lab};
use crate::error::{LabError, Result};
use crate::exec::{self, Binaries};
use crate::spec::{Fabric, LabSpec, Model, NodePlan, UDR_TABLE_ID};
use crate::state::write_atomic;
use crate::up::{cni_error, via_route, Builder, NodeUp};

/// How long a pod may stay unanswered after its ADD before it counts as unreachable.
pub const OUTAGE_LIMIT: Duration = Duration::from_secs(3);

/// One pod's outage: from its DEL to the first answered probe after its ADD.
#[derive(Debug, Clone)]
pub struct Outage {
    pub pod: String,
    pub old_ip: Ipv4Addr,
    pub new_ip: Ipv4Addr,
    /// None: no probe answered within [`OUTAGE_LIMIT`] after the ADD.
    pub unreachable: Option<Duration>,
    pub witness: String,
}

/// What the migration did.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    pub outages: Vec<Outage>,
    /// Every cross-node pod pair reachable after the last node.
    pub all_reachable: bool,
}

/// Carries the migration out. `pod_cidr` is the overlay pod CIDR (checked by the planner).
pub fn migrate_to_overlay(
    lab: &Lab,
    bins: &Binaries,
    pod_cidr: Ipv4Net,
    out: &mut dyn Write,
) -> Result<MigrateReport> {
    let old = &lab.spec;
    if !matches!(old.model, Model::Kubenet | Model::NodeSubnet) || old.fabric != Fabric::Sdn {
        return Err(LabError::invalid(
            "--apply",
            old.model.as_str(),
            "the lab carries out the migration for kubenet and Node Subnet labs on the sdn fabric",
        ));
    }
    let new = LabSpec {
        model: Model::Overlay,
        pod_cidr,
        ..old.clone()
    };
    let new_topo = new.topology()?;
    let ob = Builder::resume(old, &lab.topo, bins)?;
    let nb = Builder::resume(&new, &new_topo, bins)?;
    let mut report = MigrateReport::default();
    let mut pods = lab.pods.clone();
    let mut migrated: Vec<String> = Vec::new();
    for (i, n) in lab.topo.nodes.iter().enumerate() {
        let nn = new_topo
            .nodes
            .get(i)
            .ok_or_else(|| state_err(old, "node lists differ"))?;
        let _ = writeln!(
            out,
            "\n== node {} ({}/{})",
            n.name,
            i + 1,
            lab.topo.nodes.len()
        );
        let drained = drain(lab, &ob, n, &pods, out)?;
        let node = reimage(lab, &nb, n, nn, out)?;
        migrated.push(n.name.clone());
        // Every ADD first, then the probes: a pod's ADD never waits for another's probing.
        for (pod, old_ip, ip, deleted) in readd(&nb, &node, nn, drained, &mut pods, out)? {
            let o = outage(&pods, &migrated, &pod, old_ip, ip, deleted)?;
            report.outages.push(o);
        }
        print_outages(&report.outages, &n.name, &pods, out);
        report.all_reachable = matrix(&pods, &migrated, out)?;
    }
    detach_route_table(lab, old)?;
    write_atomic(
        &old.state_dir.join(crate::state::SPEC_FILE),
        spec_json(&new)?.as_bytes(),
    )?;
    let _ = writeln!(
        out,
        "\nlab {}: {} → {} (pod CIDR {pod_cidr}); the lab is now an overlay lab",
        old.prefix,
        old.model.title(),
        Model::Overlay.title()
    );
    Ok(report)
}

/// CNI ADD of the drained pods on the reimaged node, journalled.
fn readd(
    nb: &Builder,
    node: &NodeUp,
    nn: &NodePlan,
    drained: Vec<(String, (Ipv4Addr, Instant))>,
    pods: &mut Pods,
    out: &mut dyn Write,
) -> Result<Vec<(String, Ipv4Addr, Ipv4Addr, Instant)>> {
    let config = nb.cni_config(node);
    let mut added = Vec::new();
    for (pod, (old_ip, deleted)) in drained {
        let plan = nn
            .pods
            .iter()
            .find(|p| p.name == pod)
            .ok_or_else(|| state_err(nb.spec, "pod plan missing"))?;
        let ip = nb
            .cni_add(node, plan, &config)?
            .map_err(|f| cni_error(node, plan, f))?;
        nb.journal.record(&crate::state::Entry::Pod {
            node: nn.name.clone(),
            name: pod.clone(),
            ip,
        })?;
        pods.insert(pod.clone(), (nn.name.clone(), ip));
        let _ = writeln!(out, "  CNI ADD {pod}: {ip} (was {old_ip})");
        added.push((pod, old_ip, ip, deleted));
    }
    Ok(added)
}

fn state_err(spec: &LabSpec, why: &str) -> LabError {
    LabError::State {
        path: spec.state_dir.join(crate::state::SPEC_FILE),
        why: why.to_string(),
    }
}

fn spec_json(spec: &LabSpec) -> Result<String> {
    serde_json::to_string_pretty(spec).map_err(|e| state_err(spec, &e.to_string()))
}

/// CNI DEL of every pod of the node, with the old model's network config; the time of each.
fn drain(
    lab: &Lab,
    ob: &Builder,
    n: &NodePlan,
    pods: &std::collections::BTreeMap<String, (String, Ipv4Addr)>,
    out: &mut dyn Write,
) -> Result<Vec<(String, (Ipv4Addr, Instant))>> {
    let ip = lab
        .node_ips
        .get(&n.name)
        .copied()
        .ok_or_else(|| state_err(&lab.spec, "node without an address"))?;
    let node = NodeUp {
        plan: n.clone(),
        ip,
        pod_cidr: n.pod_cidr,
    };
    let config = ob.cni_config(&node);
    let mut drained = Vec::new();
    for p in &n.pods {
        let Some((_, pod_ip)) = pods.get(&p.name) else {
            continue;
        };
        let deleted = Instant::now();
        if let Err(f) = exec::cni(ob.bins, "DEL", &n.netns, &p.name, &p.netns, &config)? {
            return Err(cni_error(&node, p, f));
        }
        let _ = writeln!(out, "  CNI DEL {} ({pod_ip})", p.name);
        drained.push((p.name.clone(), (*pod_ip, deleted)));
    }
    Ok(drained)
}

/// The node leaves, is reimaged (its namespace and data dir removed) and joins as overlay;
/// kubenet's route table entry for it is put back (Azure's outlives the reimage).
fn reimage(
    lab: &Lab,
    nb: &Builder,
    n: &NodePlan,
    nn: &NodePlan,
    out: &mut dyn Write,
) -> Result<NodeUp> {
    let data_dir = nb.state.node_dir(&n.name);
    if data_dir.join("node-pool.json").exists() {
        exec::node_leave(nb.bins, &n.name, &nb.state.store_dir(), &data_dir)?;
        let _ = writeln!(out, "  node leave {}", n.name);
    }
    // The fabric's end first: a deleted namespace is torn down asynchronously, and the
    // veth pair with it, so the name would still be taken for the new link.
    nb.fabric()?.1.del_link_by_name(&n.fabric_link)?;
    delete_named_netns(&n.netns)?;
    match std::fs::remove_dir_all(&data_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(LabError::io("remove", &data_dir, e))
        }
        _ => {}
    }
    let node = nb.build_node(nn)?;
    let cidr = node.pod_cidr.map(|c| c.to_string()).unwrap_or_default();
    let _ = writeln!(out, "  node join --overlay {}: node IP {}, pod CIDR {cidr}; fabric routes {cidr} via {}; agent --mode overlay", n.name, node.ip, node.ip);
    if let (Model::Kubenet, Some(old_cidr)) = (lab.spec.model, n.pod_cidr) {
        let (_, mut fabric) = nb.fabric()?;
        let link = fabric
            .link_by_name(&n.fabric_link)?
            .ok_or_else(|| state_err(&lab.spec, "fabric link missing after join"))?;
        fabric.add_route(&via_route(
            IpNet::V4(old_cidr),
            node.ip,
            link.index,
            UDR_TABLE_ID,
        ))?;
    }
    Ok(node)
}

/// After the last node: the route table is detached (kubenet), so only the overlay's routes
/// carry pod traffic.
fn detach_route_table(lab: &Lab, old: &LabSpec) -> Result<()> {
    if old.model != Model::Kubenet {
        return Ok(());
    }
    for n in &lab.topo.nodes {
        exec::ip(
            &lab.topo.fabric_netns,
            &[
                "rule",
                "del",
                "iif",
                &n.fabric_link,
                "lookup",
                &UDR_TABLE_ID.to_string(),
            ],
        )?;
    }
    exec::ip(
        &lab.topo.fabric_netns,
        &["route", "flush", "table", &UDR_TABLE_ID.to_string()],
    )?;
    Ok(())
}

type Pods = std::collections::BTreeMap<String, (String, Ipv4Addr)>;

fn netns_of(pod: &str) -> String {
    pod.to_string()
}

/// Probes `pod` from a pod of another node (a migrated one first) until it answers.
fn outage(
    pods: &Pods,
    migrated: &[String],
    pod: &str,
    old_ip: Ipv4Addr,
    new_ip: Ipv4Addr,
    deleted: Instant,
) -> Result<Outage> {
    let node = pods.get(pod).map(|(n, _)| n.clone()).unwrap_or_default();
    let mut others: Vec<(&String, &String)> = pods
        .iter()
        .filter(|(_, (n, _))| *n != node)
        .map(|(p, (n, _))| (p, n))
        .collect();
    others.sort_by_key(|(_, n)| !migrated.contains(n));
    let witness = others
        .first()
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| pod.to_string());
    let added = Instant::now();
    let mut unreachable = None;
    while added.elapsed() < OUTAGE_LIMIT {
        if probe_once(&netns_of(&witness), &netns_of(pod), new_ip)?.is_ok() {
            unreachable = Some(deleted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(Outage {
        pod: pod.to_string(),
        old_ip,
        new_ip,
        unreachable,
        witness,
    })
}

fn print_outages(outages: &[Outage], node: &str, pods: &Pods, out: &mut dyn Write) {
    for o in outages
        .iter()
        .filter(|o| pods.get(&o.pod).is_some_and(|(n, _)| n == node))
    {
        let _ = match o.unreachable {
            Some(d) => writeln!(
                out,
                "  {} unreachable for {:.1} ms (DEL to first answer from {})",
                o.pod,
                d.as_secs_f64() * 1e3,
                o.witness
            ),
            None => writeln!(
                out,
                "  {} still unreachable from {} {} s after its ADD",
                o.pod,
                o.witness,
                OUTAGE_LIMIT.as_secs()
            ),
        };
    }
}

/// Every cross-node pod pair, probed; true when all answered.
fn matrix(pods: &Pods, migrated: &[String], out: &mut dyn Write) -> Result<bool> {
    let tag = |p: &str| {
        if pods.get(p).is_some_and(|(n, _)| migrated.contains(n)) {
            "overlay"
        } else {
            "old"
        }
    };
    let _ = writeln!(out, "  {:<28} {:<28} RESULT", "FROM", "TO");
    let mut all = true;
    for (from, (fnode, _)) in pods {
        for (to, (tnode, tip)) in pods {
            if fnode == tnode {
                continue;
            }
            let result = match probe_once(&netns_of(from), &netns_of(to), *tip)? {
                Ok(seen) => format!("ok (sees {seen})"),
                Err(why) => {
                    all = false;
                    format!("UNREACHABLE ({why})")
                }
            };
            let _ = writeln!(
                out,
                "  {:<28} {:<28} {result}",
                format!("{from} [{}]", tag(from)),
                format!("{to} [{}]", tag(to))
            );
        }
    }
    Ok(all)
}
