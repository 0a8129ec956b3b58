//! What-if (`--plugin`, `--mode`, `--pod-cidr`) and the migration to Azure CNI Overlay
//! (`--migrate-to overlay`, docs/plan.md, "Migration"). Pure: both rewrite a resolved plan
//! and return the findings that only the change itself can raise.

use ipnet::IpNet;

use crate::catalogue::RuleId;
use crate::model::Plugin;
use crate::net;
use crate::report::{DefaultApplied, Finding};
use crate::resolve::{NetModel, Resolved, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WhatIf {
    pub plugin: Option<Plugin>,
    /// Some(true) = overlay, Some(false) = no mode.
    pub overlay: Option<bool>,
    pub pod_cidr: Option<String>,
    pub migrate_to_overlay: bool,
}

impl WhatIf {
    pub fn is_empty(&self) -> bool {
        self.plugin.is_none()
            && self.overlay.is_none()
            && self.pod_cidr.is_none()
            && !self.migrate_to_overlay
    }
}

/// Plan with AKS's default pod CIDR, listed under "Defaults applied" with `reason`.
fn default_pod_cidr(r: &mut Resolved, defaults: &mut Vec<DefaultApplied>, reason: &str) {
    set_pod_cidr(r, "10.244.0.0/16");
    defaults.push(DefaultApplied {
        field: "networkProfile.podCidr".into(),
        value: "10.244.0.0/16".into(),
        reason: reason.into(),
    });
}

fn set_pod_cidr(r: &mut Resolved, raw: &str) {
    r.pod_cidrs = vec![Value {
        raw: raw.to_string(),
        parsed: net::parse_cidr(raw),
        field: "--pod-cidr".into(),
    }];
    r.pod_cidr_explicit = true;
}

/// P6: an overlay pod CIDR (or kubenet's, kept on migration) changes only to a superset.
fn check_expansion(old: Option<IpNet>, new_raw: &str, f: &mut Vec<Finding>) {
    if let (Some(old), Some(new)) = (old, net::parse_cidr(new_raw)) {
        if !net::covers(&new.trunc(), &old.trunc()) {
            f.push(Finding::new(RuleId::P6, "--pod-cidr", format!("The pod CIDR can only grow to a contiguous superset of {old}; {new_raw} is not one (no shrink or move).")));
        }
    }
}

/// Apply the what-if or migration to `r`. Returns findings and the label for the report.
pub fn apply(
    r: &mut Resolved,
    w: &WhatIf,
    defaults: &mut Vec<DefaultApplied>,
) -> (Vec<Finding>, Option<String>) {
    let mut f = Vec::new();
    if w.is_empty() {
        return (f, None);
    }
    let before = r.model();
    let old_pod = r.v4_pod_cidr().and_then(|c| c.parsed);
    if w.migrate_to_overlay {
        migrate(r, w, before, old_pod, &mut f, defaults);
        let label = format!("migration {} → {}", before.label(), r.model().label());
        return (f, Some(label));
    }
    if let Some(p) = w.plugin {
        r.plugin = p;
        r.plugin_explicit = true;
        if p != Plugin::Azure {
            r.overlay = false;
        }
    }
    if let Some(o) = w.overlay {
        r.overlay = o && r.plugin == Plugin::Azure;
    }
    let after = r.model();
    if let Some(pc) = &w.pod_cidr {
        if before == NetModel::Overlay && after == NetModel::Overlay {
            check_expansion(old_pod, pc, &mut f);
        }
        set_pod_cidr(r, pc);
    } else if after.uses_pod_cidr() && r.pod_cidrs.is_empty() {
        default_pod_cidr(r, defaults, "what-if: the model needs a pod CIDR");
    }
    if !after.uses_pod_cidr() {
        r.pod_cidrs.clear();
        r.pod_cidr_explicit = false;
    }
    if after != before {
        for p in &r.pools {
            f.push(Finding::new(RuleId::M5, format!("{}.maxPods", p.field), format!("What-if keeps pool {}'s maxPods {} (it cannot change on an existing pool); under {} a node costs {} node-subnet addresses.", p.name, p.max_pods, after.label(), r.node_cost(p))));
        }
    }
    let label = if after != before {
        format!("what-if {} → {}", before.label(), after.label())
    } else {
        format!("what-if on {}", after.label())
    };
    (f, Some(label))
}

fn migrate(
    r: &mut Resolved,
    w: &WhatIf,
    before: NetModel,
    old_pod: Option<IpNet>,
    f: &mut Vec<Finding>,
    defaults: &mut Vec<DefaultApplied>,
) {
    match before {
        NetModel::Kubenet | NetModel::NodeSubnet => {}
        other => {
            f.push(Finding::new(RuleId::MG2, "networkProfile.networkPlugin", format!("Only kubenet and Azure CNI Node Subnet clusters can migrate to overlay; this cluster is {}.", other.label())));
        }
    }
    if let Some(v) = r.k8s {
        if (v.0, v.1) < (1, 27) {
            f.push(Finding::new(
                RuleId::MG1,
                "kubernetesVersion",
                format!(
                    "Migration to overlay needs Kubernetes 1.27 or later; the cluster runs {}.{}.",
                    v.0, v.1
                ),
            ));
        }
    }
    if let Some(pol) = r.network_policy.clone() {
        if before == NetModel::Kubenet && pol.eq_ignore_ascii_case("calico") {
            f.push(Finding::new(RuleId::MG3a, "networkProfile.networkPolicy", "kubenet with Calico: update-azure-cni.md forbids a policy engine, use-network-policies.md describes this very upgrade; verify before migrating.".to_string()));
        } else {
            f.push(Finding::new(RuleId::MG3, "networkProfile.networkPolicy", format!("The cluster runs the {pol} network policy engine; migration to overlay needs none installed.")));
        }
    }
    match before {
        NetModel::NodeSubnet => match &w.pod_cidr {
            Some(pc) => set_pod_cidr(r, pc),
            None => {
                f.push(Finding::new(RuleId::MG4, "--pod-cidr", "Node Subnet to overlay requires --pod-cidr (az aks update --network-plugin-mode overlay --pod-cidr ...); planned with 10.244.0.0/16.".to_string()));
                default_pod_cidr(r, defaults, "migration: --pod-cidr not given");
            }
        },
        NetModel::Kubenet => {
            if let Some(pc) = &w.pod_cidr {
                check_expansion(old_pod, pc, f);
                set_pod_cidr(r, pc);
            }
            let uami = r
                .identity_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("userassigned"));
            if !uami {
                f.push(Finding::new(RuleId::MG5, "identity.type", format!("kubenet to overlay detaches the route table, which needs a user-assigned managed identity; the cluster's identity is {}.", r.identity_type.as_deref().unwrap_or("not given"))));
            }
        }
        // MG2 refuses the migration; a --pod-cidr given is still planned, so the report
        // does not add a missing-pod-CIDR error (V2) to the real reason.
        _ => {
            if let Some(pc) = &w.pod_cidr {
                set_pod_cidr(r, pc);
            }
        }
    }
    r.plugin = Plugin::Azure;
    r.overlay = true;
    r.plugin_explicit = true;
    f.push(Finding::new(
        RuleId::MG6,
        "networkProfile.networkPluginMode",
        "All node pools are reimaged together during the migration, and it cannot be undone."
            .to_string(),
    ));
}
