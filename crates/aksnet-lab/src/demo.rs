//! `lab demo`: AKS's documented claims (docs/azure.md, docs/models.md), live. For each of
//! the four models: up, check, the model's own act, then down — also when something fails:
//! kubenet's route table refuses its 401st route; Node Subnet's capacity example (a /24 at
//! maxPods 30 takes 8 nodes, refuses the 9th, and a node refuses its 31st pod); Pod Subnet
//! refuses a VM in the pod subnet and its dynamic blocks move ([`crate::demo_podsubnet`]).
//! Then the four matrices side by side, three models on a plain LAN, and the
//! NetworkPolicy act ([`crate::demo_policy`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::check::{check, CheckReport, Lab};
use crate::down::down;
use crate::error::{LabError, Result};
use crate::exec::{self, Binaries};
use crate::routetable::{RouteTable, AZURE_ROUTE_TABLE_LIMIT};
use crate::spec::{pod_name, Fabric, LabSpec, Model, PodPlan};
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

/// The demo's lab of `model` on `fabric`.
fn demo_spec(opts: &DemoOptions, model: Model, fabric: Fabric) -> Result<LabSpec> {
    let mut spec = LabSpec::defaults(&opts.prefix, model);
    if let Some(d) = &opts.state_dir {
        spec.state_dir = d.clone();
    }
    spec.fabric = fabric;
    // The Legacy CNI article's capacity example: a /24 at maxPods 30 holds 8 nodes.
    if model == Model::NodeSubnet && fabric == Fabric::Sdn {
        spec.subnet = "10.224.0.0/24".parse().unwrap_or(spec.subnet);
        spec.nodes = 8;
    }
    spec.topology()?;
    // Leftovers of an interrupted demo under the demo's own prefix.
    down(&spec.prefix, &spec.state_dir)?;
    Ok(spec)
}

/// Runs the demo; `Ok(true)` when every claim held.
pub fn demo(opts: &DemoOptions, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let started = Instant::now();
    let _ = writeln!(
        out,
        "aksnet lab demo: AKS's four network models, live, in network namespaces on this machine."
    );
    let _ = writeln!(
        out,
        "Each line checks a claim of Microsoft Learn's AKS networking articles (docs/models.md lists them):"
    );
    let _ = writeln!(
        out,
        "a TCP connection, the source address the documentation says its target sees, and the one it saw.\n"
    );
    let mut all_ok = true;
    let mut columns = Vec::new();
    let acts = Model::ALL.len() + 3;
    for (n, model) in Model::ALL.into_iter().enumerate() {
        let spec = demo_spec(opts, model, Fabric::Sdn)?;
        let _ = writeln!(out, "{}/{acts} {}", n + 1, spec.title());
        let mut act = |spec: &LabSpec, out: &mut dyn Write| -> Result<bool> {
            let (ok, report) = run_model(spec, bins, out)?;
            columns.push((spec.model, report));
            Ok(ok)
        };
        all_ok &= run_and_down(&spec, out, &mut act)?;
    }
    let _ = writeln!(
        out,
        "{}/{acts} side by side: the source address each destination observes",
        Model::ALL.len() + 1
    );
    let _ = write!(out, "{}", side_by_side(&columns));
    // Real hosts of one LAN: the same claims with a plain bridge and no SDN
    // (not Pod Subnet: nothing on a LAN routes its blocks yet).
    let _ = writeln!(
        out,
        "\n{}/{acts} the same claims on a plain LAN (--fabric l2: a bridge, no SDN, an ordinary router; not Pod Subnet)",
        Model::ALL.len() + 2
    );
    for model in [Model::Kubenet, Model::NodeSubnet, Model::Overlay] {
        let spec = demo_spec(opts, model, Fabric::L2)?;
        let mut act = |spec: &LabSpec, out: &mut dyn Write| run_l2(spec, bins, out);
        all_ok &= run_and_down(&spec, out, &mut act)?;
    }
    // The NetworkPolicy act: default-deny plus one allow, in both models.
    let _ = writeln!(out, "{acts}/{acts} NetworkPolicy (docs/policy.md)");
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

/// The matrices of the models that ran, one column each: what each target saw.
pub fn side_by_side(columns: &[(Model, CheckReport)]) -> String {
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["path".to_string()];
    head.extend(columns.iter().map(|(m, _)| m.title().to_string()));
    table.push(head);
    for path in crate::check::PATHS {
        let mut line = vec![crate::check::path_title(path).to_string()];
        for (_, report) in columns {
            let cell = report
                .rows
                .iter()
                .find(|r| r.path == path)
                .map(|r| {
                    let mark = if r.ok == Some(false) { " FAIL" } else { "" };
                    format!("{}{mark}", r.seen.text())
                })
                .unwrap_or_else(|| "-".into());
            line.push(cell);
        }
        table.push(line);
    }
    let cols = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            table
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &table {
        out.push_str("  ");
        for (i, cell) in line.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            out.push_str(cell);
            if i + 1 < line.len() {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out
}

type Act<'a> = dyn FnMut(&LabSpec, &mut dyn Write) -> Result<bool> + 'a;

/// Runs `act` on a lab of `spec`, then removes the lab, also when `act` failed.
fn run_and_down(spec: &LabSpec, out: &mut dyn Write, act: &mut Act<'_>) -> Result<bool> {
    let result = act(spec, out);
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

pub(crate) fn mark(ok: bool) -> &'static str {
    if ok {
        "ok  "
    } else {
        "FAIL"
    }
}

/// Up, check and the model's own act; the matrix for the side-by-side table.
fn run_model(spec: &LabSpec, bins: &Binaries, out: &mut dyn Write) -> Result<(bool, CheckReport)> {
    let mut buf = Vec::new();
    up(spec, bins, &mut buf)?;
    let _ = write!(out, "  {}", String::from_utf8_lossy(&buf));
    let lab = Lab::open(&spec.prefix, &spec.state_dir)?;
    let matrix = check(&lab)?;
    let _ = writeln!(out);
    for line in matrix.render(&lab).lines() {
        let _ = writeln!(out, "  {line}");
    }
    let mut ok = matrix.ok;
    let _ = writeln!(out);
    ok &= match spec.model {
        Model::NodeSubnet => capacity(spec, &lab, bins, out)?,
        Model::Kubenet => route_table_limit(spec, out)?,
        Model::PodSubnet => crate::demo_podsubnet::pod_subnet_act(spec, &lab, bins, out)?,
        // Overlay's claims are all in the matrix.
        Model::Overlay => true,
    };
    Ok((ok, matrix))
}

/// The route table (one route per node, as the fabric uses it) holds 400
/// routes and refuses the 401st (docs/azure.md#kubenet-routes).
fn route_table_limit(spec: &LabSpec, out: &mut dyn Write) -> Result<bool> {
    let mut t = RouteTable::new(format!("{}routetable", spec.prefix));
    let mut refused = None;
    for i in 0..=AZURE_ROUTE_TABLE_LIMIT as u32 {
        let cidr = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0a80_0000 + (i << 8)), 24)
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
    let _ = writeln!(
        out,
        "  {} the route table (one route per node, as the fabric uses it) holds {} routes; the 401st is refused\n         {}",
        mark(held),
        t.routes().len(),
        refused.map(|(_, e)| e.to_string()).unwrap_or_else(|| "NOT refused".into())
    );
    Ok(held)
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
    let builder = Builder::resume(spec, &lab.topo, bins)?;
    let refused = ninth_node_refused(spec, &builder, bins, joined, out)?;
    let refused31 = node_fills_to_max_pods(spec, lab, &builder, out)?;
    Ok(eight && refused && refused31)
}

/// A node past the subnet's room: `node join` refuses it with AKS's
/// InsufficientSubnetSize.
fn ninth_node_refused(
    spec: &LabSpec,
    builder: &Builder,
    bins: &Binaries,
    joined: usize,
    out: &mut dyn Write,
) -> Result<bool> {
    let ninth = format!("{}node-{}", spec.prefix, joined);
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
        &[],
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
    Ok(refused)
}

/// Fills node 0 to maxPods, then one more, which aksnet-cni ADD refuses.
fn node_fills_to_max_pods(
    spec: &LabSpec,
    lab: &Lab,
    builder: &Builder,
    out: &mut dyn Write,
) -> Result<bool> {
    let node = first_node(lab)?;
    let plan = node.plan.clone();
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
    Ok(refused31)
}

/// The lab's first node as the demo adds pods to it: its plan, the address it
/// joined with and its pod CIDR (kubenet; the plan carries none otherwise).
pub(crate) fn first_node(lab: &Lab) -> Result<NodeUp> {
    let plan = lab
        .topo
        .nodes
        .first()
        .cloned()
        .ok_or_else(|| LabError::invalid("--nodes", 0, "no node"))?;
    Ok(NodeUp {
        ip: lab
            .node_ips
            .get(&plan.name)
            .copied()
            .unwrap_or(lab.topo.gateway),
        pod_cidr: plan.pod_cidr,
        plan,
    })
}
