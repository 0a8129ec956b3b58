//! `aksnet lab migrate --to overlay`: the migration of a lab from kubenet or Node Subnet to
//! Azure CNI Overlay (issue 15; docs/lab.md, "Migration"). The lab's state (model, pod CIDR,
//! nodes, pools) is written as a planner spec and planned with the planner's own migration
//! rules (`aksnet plan --migrate-to overlay`, docs/plan.md "Migration"): what AKS refuses, it
//! refuses here with AKS's reason. Exit status: 0 the migration is allowed, 1 AKS refuses it
//! (nothing changed), 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use aksnet_core::azure::OVERLAY_MAX_PODS_PER_NODE;
use aksnet_core::podsubnet::Allocation;
use aksnet_lab::check::Lab;
use aksnet_lab::{Binaries, LabSpec, Model};
use aksnet_plan::{render, PlanOptions, Report, WhatIf};
use ipnet::Ipv4Net;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Target {
    Overlay,
}

#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["dry_run", "apply"])))]
pub struct MigrateArgs {
    #[command(flatten)]
    pub common: super::lab::Common,
    /// The model to migrate to (AKS migrates only to Azure CNI Overlay).
    #[arg(long, value_enum)]
    pub to: Target,
    /// The overlay pod CIDR: required from Node Subnet; from kubenet the lab's pod CIDR is
    /// kept unless a superset of it is given.
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<Ipv4Net>,
    /// Plan only: print what AKS would refuse, the new capacity and the steps.
    #[arg(long)]
    pub dry_run: bool,
    /// Carry the migration out, node by node.
    #[arg(long)]
    pub apply: bool,
    /// Where aksnet and aksnet-cni are (default: $AKSNET_BIN_DIR, else next to this binary).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// The lab as the planner's spec document (docs/plan.md, "Spec file"): one pool of the lab's
/// nodes in the node subnet, the VNet with its subnets, the peered and on-premises ranges.
/// The lab runs no network policy engine, so none is declared.
pub fn lab_as_plan_spec(spec: &LabSpec) -> Value {
    let mut network = json!({});
    match spec.model {
        Model::Kubenet => {
            network = json!({ "plugin": "kubenet", "podCidr": spec.pod_cidr.to_string() });
        }
        Model::NodeSubnet | Model::PodSubnet => network["plugin"] = json!("azure"),
        Model::Overlay => {
            network = json!({ "plugin": "azure", "pluginMode": "overlay",
                              "podCidr": spec.pod_cidr.to_string() });
        }
    }
    let mut pool = json!({
        "name": "labpool", "mode": "System", "count": spec.nodes,
        "maxPods": spec.max_pods, "subnet": spec.subnet_name,
    });
    let mut subnets = vec![json!({ "name": spec.subnet_name, "prefix": spec.subnet.to_string() })];
    if spec.model == Model::PodSubnet {
        pool["podSubnet"] = json!(spec.pod_subnet_name);
        pool["podIpAllocationMode"] = json!(match spec.pod_allocation {
            Allocation::Dynamic => "DynamicIndividual",
            Allocation::Static => "StaticBlock",
        });
        subnets.push(
            json!({ "name": spec.pod_subnet_name, "prefix": spec.pod_subnet.to_string(),
                             "delegations": ["Microsoft.ContainerService/managedClusters"] }),
        );
    }
    json!({
        "apiVersion": "aksnet/v1",
        "cluster": { "name": format!("{}lab", spec.prefix), "network": network, "pools": [pool] },
        "vnet": { "name": format!("{}vnet", spec.prefix),
                  "addressSpace": [spec.vnet.to_string()], "subnets": subnets },
        "peers": [spec.peer.to_string()],
        "onPrem": [spec.on_prem.to_string()],
    })
}

/// Plans the lab's migration with the planner's migration rules.
fn plan(spec: &LabSpec, pod_cidr: Option<Ipv4Net>) -> Result<Report, String> {
    let doc = lab_as_plan_spec(spec);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    // Findings' line numbers refer to this generated spec, not to lab.json: say so.
    let name = PathBuf::from(format!("lab {} as a plan spec", spec.prefix));
    let input = aksnet_plan::input::load_texts(&[(name, text)]).map_err(|e| e.to_string())?;
    let what_if = WhatIf {
        pod_cidr: pod_cidr.map(|c| c.to_string()),
        migrate_to_overlay: true,
        ..WhatIf::default()
    };
    Ok(aksnet_plan::plan(
        &input,
        &PlanOptions {
            what_if,
            growth: None,
        },
    ))
}

/// The overlay pod CIDR the migration ends with: the one given, else kubenet's kept.
pub fn target_pod_cidr(spec: &LabSpec, given: Option<Ipv4Net>) -> Option<Ipv4Net> {
    given.or((spec.model == Model::Kubenet).then_some(spec.pod_cidr))
}

/// The steps, node by node, that `--apply` takes (text).
fn steps(lab: &Lab, pod_cidr: Option<Ipv4Net>) -> String {
    let cidr = pod_cidr.map_or_else(|| "<--pod-cidr>".to_string(), |c| c.to_string());
    let mut out = format!(
        "Capacity after: a /24 of {cidr} per node, room for {OVERLAY_MAX_PODS_PER_NODE} pods \
         (maxPods {} is kept: it cannot change on an existing pool); pods no longer take \
         node-subnet addresses.\n\nSteps (one node at a time):\n",
        lab.spec.max_pods
    );
    for (i, (node, ip)) in lab.node_ips.iter().enumerate() {
        let pods: Vec<&str> = lab
            .pods
            .iter()
            .filter(|(_, (n, _))| n == node)
            .map(|(p, _)| p.as_str())
            .collect();
        out.push_str(&format!(
            "  {}. {node} ({ip}): drain {} pod(s) [{}] through the plugin (CNI DEL); node leave; \
             node join --overlay --pod-cidr-from {cidr}; fabric routes for the node as overlay; \
             agent --mode overlay; recreate the pods (CNI ADD); probe every pod pair\n",
            i + 1,
            pods.len(),
            pods.join(", ")
        ));
    }
    out
}

fn header(lab: &Lab) -> String {
    let s = &lab.spec;
    let pod_cidr = if s.model.has_pod_cidr() {
        s.pod_cidr.to_string()
    } else {
        "none".to_string()
    };
    format!(
        "aksnet lab migrate: lab {} — {} → {}\n  state: {}\n  nodes: {}, maxPods {}, pod CIDR {}, node subnet {}\n\n",
        s.prefix,
        s.model.title(),
        Model::Overlay.title(),
        s.state_dir.display(),
        lab.node_ips.len(),
        s.max_pods,
        pod_cidr,
        s.subnet,
    )
}

pub fn run(a: &MigrateArgs) -> ExitCode {
    let Target::Overlay = a.to;
    let lab = match Lab::open(&a.common.prefix, &a.common.state_dir()) {
        Ok(l) => l,
        Err(e) => return super::lab::fail(&e),
    };
    let report = match plan(&lab.spec, a.pod_cidr) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aksnet lab migrate: plan the lab's migration: {e}");
            return ExitCode::from(2);
        }
    };
    super::lab::say(&header(&lab));
    super::lab::say(&format!("{}\n\n", render::human(&report, false).trim_end()));
    if report.has_errors() {
        eprintln!(
            "aksnet lab migrate: AKS refuses this migration (the errors above); nothing changed"
        );
        return ExitCode::from(1);
    }
    let target = target_pod_cidr(&lab.spec, a.pod_cidr);
    super::lab::say(&steps(&lab, target));
    if a.apply {
        return apply(&lab, a, target);
    }
    ExitCode::SUCCESS
}

fn apply(lab: &Lab, a: &MigrateArgs, target: Option<Ipv4Net>) -> ExitCode {
    // The planner refuses Node Subnet without --pod-cidr (MG4), so a target is known here.
    let Some(pod_cidr) = target else {
        eprintln!("aksnet lab migrate: --pod-cidr is required from Node Subnet");
        return ExitCode::from(2);
    };
    let bins = match Binaries::locate(a.bin_dir.as_deref()) {
        Ok(b) => b,
        Err(e) => return super::lab::fail(&e),
    };
    match aksnet_lab::migrate::migrate_to_overlay(lab, &bins, pod_cidr, &mut std::io::stdout()) {
        Ok(r) if r.all_reachable => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("aksnet lab migrate: migrated, but some pod pairs are unreachable (above)");
            ExitCode::from(1)
        }
        Err(e) => {
            let code = super::lab::fail(&e);
            eprintln!(
                "aksnet lab migrate: the migration stopped midway; `aksnet lab down --prefix {}` removes the lab",
                lab.spec.prefix
            );
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: &LabSpec, pod_cidr: Option<&str>) -> Vec<String> {
        let cidr = pod_cidr.map(|c| c.parse().expect("test CIDR"));
        let report = plan(spec, cidr).expect("the lab's spec is a plan input");
        report
            .findings
            .iter()
            .filter(|f| f.severity == aksnet_plan::Severity::Error)
            .map(|f| f.rule.to_string())
            .collect()
    }

    #[test]
    fn each_model_is_planned_with_the_planners_migration_rules() {
        let spec = |m| LabSpec::defaults("aksmgu-", m);
        assert_eq!(errors(&spec(Model::Kubenet), None), Vec::<String>::new());
        assert_eq!(
            errors(&spec(Model::Kubenet), Some("10.240.0.0/12")),
            Vec::<String>::new()
        );
        assert_eq!(errors(&spec(Model::NodeSubnet), None), vec!["MG4"]);
        assert_eq!(
            errors(&spec(Model::NodeSubnet), Some("172.16.0.0/16")),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(&spec(Model::NodeSubnet), Some("10.224.0.0/12")),
            vec!["P3"]
        );
        assert_eq!(
            errors(&spec(Model::PodSubnet), Some("172.16.0.0/16")),
            vec!["MG2"]
        );
        assert_eq!(errors(&spec(Model::Overlay), None), vec!["MG2"]);
    }

    #[test]
    fn the_target_pod_cidr_is_kubenets_unless_one_is_given() {
        let kubenet = LabSpec::defaults("aksmgu-", Model::Kubenet);
        let nodesubnet = LabSpec::defaults("aksmgu-", Model::NodeSubnet);
        let given: Ipv4Net = "10.240.0.0/12".parse().expect("test CIDR");
        assert_eq!(target_pod_cidr(&kubenet, None), Some(kubenet.pod_cidr));
        assert_eq!(target_pod_cidr(&kubenet, Some(given)), Some(given));
        assert_eq!(target_pod_cidr(&nodesubnet, None), None);
    }
}
