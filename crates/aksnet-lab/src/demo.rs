//! `lab demo`: AKS's documented claims (docs/azure.md), live. For each model: up, check, the
//! capacity example (Node Subnet: a /24 at maxPods 30 takes 8 nodes, refuses
//! the 9th, and a node refuses its 31st pod; kubenet: the route table refuses
//! its 401st route), then down — also when something fails. Last, the NetworkPolicy act
//! ([`crate::demo_policy`]): a default-deny namespace and one allow, live.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::check::{check, Lab};
use crate::down::down;
use crate::error::{LabError, Result};
use crate::exec::{self, Binaries};
use crate::routetable::{RouteTable, AZURE_ROUTE_TABLE_LIMIT};
use crate::spec::{pod_name, LabSpec, Model, PodPlan};
use crate::up::{up, Builder, NodeUp};

/// The demo's prefix: not `lab up`'s default, so the demo never removes a
/// lab the user built.
pub const DEFAULT_DEMO_PREFIX: &str = "aksnl-demo-";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub prefix: String,
    /// Defaults to `/run/<prefix>lab`.
    pub state_dir: Option<PathBuf>,
}

/// Runs the demo; `Ok(true)` when every claim held.
pub fn demo(opts: &DemoOptions, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let started = Instant::now();
    let _ = writeln!(out, "aksnet lab demo: AKS's legacy network models, live, in network namespaces on this machine.");
    let _ = writeln!(
        out,
        "Each line checks a claim of \"AKS Legacy Container Networking Interfaces (CNI)\" (Microsoft Learn, 2025-04-01):"
    );
    let _ = writeln!(
        out,
        "a TCP connection, the source address the documentation says its target sees, and the one it saw.\n"
    );
    let mut all_ok = true;
    for (n, model) in [Model::NodeSubnet, Model::Kubenet].into_iter().enumerate() {
        let mut spec = LabSpec::defaults(&opts.prefix, model);
        if let Some(d) = &opts.state_dir {
            spec.state_dir = d.clone();
        }
        match model {
            // The Legacy CNI article's capacity example: a /24 at maxPods 30 holds 8 nodes.
            Model::NodeSubnet => {
                spec.subnet = "10.224.0.0/24".parse().unwrap_or(spec.subnet);
                spec.nodes = 8;
            }
            Model::Kubenet => spec.nodes = 3,
        }
        spec.topology()?;
        // Leftovers of an interrupted demo under the demo's own prefix.
        down(&spec.prefix, &spec.state_dir)?;
        let _ = writeln!(out, "{}/4 {}", n + 1, model.title());
        all_ok &= run_and_down(&spec, bins, out, run_model)?;
    }
    // Real hosts of one LAN: the same claims with a plain bridge and no SDN.
    let _ = writeln!(
        out,
        "3/4 the same claims on a plain LAN (--fabric l2: a bridge, no SDN, an ordinary router)"
    );
    for model in [Model::NodeSubnet, Model::Kubenet] {
        let mut spec = LabSpec::defaults(&opts.prefix, model);
        if let Some(d) = &opts.state_dir {
            spec.state_dir = d.clone();
        }
        spec.fabric = crate::spec::Fabric::L2;
        spec.topology()?;
        down(&spec.prefix, &spec.state_dir)?;
        all_ok &= run_and_down(&spec, bins, out, run_l2)?;
    }
    // The NetworkPolicy act: default-deny plus one allow, in both models.
    let _ = writeln!(out, "4/4 NetworkPolicy (docs/policy.md)");
    for (model, tag) in [(Model::NodeSubnet, "n"), (Model::Kubenet, "k")] {
        // Under the demo's own prefix (shortened: link names are at most 15 bytes).
        let prefix = format!("{}np{tag}", opts.prefix.chars().take(6).collect::<String>());
        let dir = PathBuf::from(format!("/run/{prefix}netpol"));
        all_ok &= crate::demo_policy::policy_act(&prefix, model, dir, bins, out)?;
    }
    let _ = writeln!(
        out,
        "demo: {} ({:.1} s)",
        if all_ok {
            "every claim holds"
        } else {
            "SOME CLAIMS FAILED"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(all_ok)
}

type Act = fn(&LabSpec, &Binaries, &mut dyn Write) -> Result<bool>;

/// Runs `act` on a lab of `spec`, then removes the lab, also when `act` failed.
fn run_and_down(spec: &LabSpec, bins: &Binaries, out: &mut dyn Write, act: Act) -> Result<bool> {
    let result = act(spec, bins, out);
    let t = Instant::now();
    let cleaned = down(&spec.prefix, &spec.state_dir);
    match (&result, cleaned) {
        (_, Ok(r)) => {
            let _ = writeln!(
                out,
                "  down: {} namespaces removed in {:.1} s\n",
                r.netns_deleted,
                t.elapsed().as_secs_f64()
            );
        }
        (Err(_), Err(e)) => {
            let _ = writeln!(out, "  down failed too: {e}");
        }
        (Ok(_), Err(e)) => return Err(e),
    }
    result
}

/// The l2 fabric: up and check.
fn run_l2(spec: &LabSpec, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let mut buf = Vec::new();
    up(spec, bins, &mut buf)?;
    let _ = write!(out, "  {}", String::from_utf8_lossy(&buf));
    let lab = Lab::open(&spec.prefix, &spec.state_dir)?;
    let matrix = check(&lab)?;
    for line in matrix.render(&lab).lines() {
        let _ = writeln!(out, "  {line}");
    }
    Ok(matrix.ok)
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok  "
    } else {
        "FAIL"
    }
}

fn run_model(spec: &LabSpec, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let mut buf = Vec::new();
    let report = up(spec, bins, &mut buf)?;
    let _ = write!(out, "  {}", String::from_utf8_lossy(&buf));
    let lab = Lab::open(&spec.prefix, &spec.state_dir)?;
    let matrix = check(&lab)?;
    let _ = writeln!(out);
    for line in matrix.render(&lab).lines() {
        let _ = writeln!(out, "  {line}");
    }
    let mut ok = matrix.ok;
    let _ = writeln!(out);
    match spec.model {
        Model::NodeSubnet => ok &= capacity(spec, &lab, bins, out)?,
        Model::Kubenet => {
            let mut t = RouteTable::new(format!("{}routetable", spec.prefix));
            let mut refused = None;
            for i in 0..=AZURE_ROUTE_TABLE_LIMIT as u32 {
                let cidr =
                    ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0a80_0000 + (i << 8)), 24)
                        .map_err(|e| LabError::invalid("pod CIDR", i, e.to_string()))?;
                if let Err(e) = t.add(
                    &format!("node-{i}"),
                    cidr,
                    crate::spec::host(spec.subnet, 4),
                ) {
                    refused = Some((i, e));
                }
            }
            let held = t.routes().len() == AZURE_ROUTE_TABLE_LIMIT
                && refused.as_ref().is_some_and(|(i, _)| *i == 400);
            ok &= held;
            let _ = writeln!(
                out,
                "  {} the route table (one route per node, as the fabric uses it) holds {} routes; the 401st is refused\n         {}",
                mark(held),
                t.routes().len(),
                refused.map(|(_, e)| e.to_string()).unwrap_or_else(|| "NOT refused".into())
            );
        }
    }
    let _ = report;
    Ok(ok)
}

/// docs/azure.md#up-front-reservation: "That same basic /24 subnet range can only support a maximum of
/// 8 nodes in the cluster. This node count can only support up to 240 pods,
/// with a default maximum of 30 pods per node."
fn capacity(spec: &LabSpec, lab: &Lab, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let _ = writeln!(
        out,
        "  capacity: \"a basic /24 subnet ... a maximum of 8 nodes ... up to 240 pods, with a default maximum of 30 pods per node\""
    );
    let joined = lab.node_ips.len();
    let eight = joined == 8;
    let _ = writeln!(
        out,
        "  {} {joined} nodes joined {} at maxPods {} ({joined} × (30 + 1) = {} of its 251 usable addresses)",
        mark(eight),
        spec.subnet,
        spec.max_pods,
        joined * (spec.max_pods as usize + 1)
    );
    let ninth = format!("{}node-{}", spec.prefix, joined);
    let builder = Builder::resume(spec, &lab.topo, bins)?;
    let data_dir = builder.state.node_dir(&ninth);
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| LabError::io("create node data dir", &data_dir, e))?;
    let refusal = match exec::node_join(
        bins,
        &ninth,
        spec.subnet,
        &spec.subnet_name,
        spec.max_pods,
        &builder.state.store_dir(),
        &data_dir,
    ) {
        Ok(_) => None,
        Err(LabError::Command { message, .. }) => Some(message),
        Err(e) => return Err(e),
    };
    let refused = refusal
        .as_deref()
        .is_some_and(|m| m.contains("InsufficientSubnetSize"));
    let shown = refusal
        .as_deref()
        .map(|m| m.find("InsufficientSubnetSize").map_or(m, |at| &m[at..]))
        .unwrap_or("it JOINED; the subnet should have been full");
    let _ = writeln!(
        out,
        "  {} the 9th node is refused\n         {shown}",
        mark(refused)
    );

    // Fill node 0 to maxPods, then one more.
    let plan = lab
        .topo
        .nodes
        .first()
        .cloned()
        .ok_or_else(|| LabError::invalid("--nodes", 0, "no node"))?;
    let node = NodeUp {
        ip: lab
            .node_ips
            .get(&plan.name)
            .copied()
            .unwrap_or(lab.topo.gateway),
        pod_cidr: plan.pod_cidr,
        plan: plan.clone(),
    };
    let t = Instant::now();
    let have = plan.pods.len() as u32;
    for j in have..spec.max_pods {
        let pod = PodPlan {
            name: pod_name(&spec.prefix, 0, j),
            netns: pod_name(&spec.prefix, 0, j),
        };
        builder
            .add_pod(&node, &pod)?
            .map_err(|f| crate::up::cni_error(&node, &pod, f))?;
    }
    let extra = PodPlan {
        name: pod_name(&spec.prefix, 0, spec.max_pods),
        netns: pod_name(&spec.prefix, 0, spec.max_pods),
    };
    let over = builder.add_pod(&node, &extra)?;
    let refused31 = matches!(&over, Err(f) if f.code == 100);
    let text = match &over {
        Ok(ip) => format!("it got {ip}; the node should have been full"),
        Err(f) => format!("CNI error {}: {}", f.code, f.msg),
    };
    let _ = writeln!(
        out,
        "  {} {} takes {} pods ({:.1} s to add them); pod {} is refused by aksnet-cni ADD\n         {text}",
        mark(refused31),
        plan.name,
        spec.max_pods,
        t.elapsed().as_secs_f64(),
        spec.max_pods + 1
    );
    Ok(eight && refused && refused31)
}
