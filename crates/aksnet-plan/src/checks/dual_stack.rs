//! Dual-stack (V*).

use ipnet::IpNet;

use crate::catalogue::RuleId;
use crate::report::Finding;
use crate::resolve::{CidrValue, NetModel, Resolved};

pub(super) fn dual_stack(r: &Resolved, f: &mut Vec<Finding>) {
    let fam: Vec<String> = r
        .ip_families
        .iter()
        .map(|x| x.to_ascii_lowercase())
        .collect();
    let ok = fam == ["ipv4"] || fam == ["ipv4", "ipv6"];
    if !ok {
        f.push(Finding::new(
            RuleId::V1,
            "networkProfile.ipFamilies",
            format!(
                "ipFamilies [{}] is not supported; use [IPv4] or [IPv4, IPv6].",
                r.ip_families.join(", ")
            ),
        ));
    }
    let is_v6 = |c: &CidrValue| matches!(c.parsed, Some(IpNet::V6(_)));
    if let Some(first) = r.service_cidrs.first() {
        if is_v6(first) {
            f.push(Finding::new(RuleId::V6, &first.field, "The first service CIDR is IPv6; put IPv4 first (an API server crash followed IPv6 first).".to_string()));
        }
    }
    if ok {
        let check = |list: &[CidrValue], name: &str, f: &mut Vec<Finding>| {
            let families: Vec<&str> = list
                .iter()
                .filter_map(|c| c.parsed)
                .map(|n| {
                    if matches!(n, IpNet::V6(_)) {
                        "ipv6"
                    } else {
                        "ipv4"
                    }
                })
                .collect();
            if families.len() == list.len() && families != fam {
                f.push(Finding::new(RuleId::V2, format!("networkProfile.{name}"), format!("{name} [{}] must hold one CIDR per IP family in the order of ipFamilies [{}].", list.iter().map(|c| c.raw.as_str()).collect::<Vec<_>>().join(", "), r.ip_families.join(", "))));
            }
        };
        check(&r.service_cidrs, "serviceCidrs", f);
        if r.model().uses_pod_cidr() {
            check(&r.pod_cidrs, "podCidrs", f);
        }
    }
    for s in &r.service_cidrs {
        if let Some(IpNet::V6(n)) = s.parsed {
            if n.prefix_len() < 108 {
                f.push(Finding::new(
                    RuleId::V3,
                    &s.field,
                    format!("The IPv6 service CIDR {} is larger than /108.", s.raw),
                ));
            }
        }
    }
    if r.dual_stack() {
        dual_stack_needs(r, f);
    }
}

/// V5, V8, V7: what dual-stack needs of the model, the policy and the version.
fn dual_stack_needs(r: &Resolved, f: &mut Vec<Finding>) {
    let cilium = r
        .network_dataplane
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case("cilium"));
    if r.model() != NetModel::Overlay && !cilium {
        if r.plugin_explicit {
            f.push(Finding::new(RuleId::V5, "networkProfile.ipFamilies", format!("Dual-stack needs Azure CNI Overlay (or the Cilium dataplane); this cluster is {}.", r.model().label())));
        } else {
            f.push(Finding::new(RuleId::V8, "networkProfile.networkPlugin", format!("Dual-stack is asked for but networkPlugin is not set, so the plan assumed {} (the default for this kind of input, see Defaults applied); dual-stack needs Azure CNI Overlay: set networkPlugin azure and networkPluginMode overlay.", r.model().label())));
        }
    }
    if let Some(pol) = r
        .network_policy
        .as_deref()
        .filter(|p| p.eq_ignore_ascii_case("azure") || p.eq_ignore_ascii_case("calico"))
    {
        f.push(Finding::new(
            RuleId::V5,
            "networkProfile.networkPolicy",
            format!("Dual-stack does not support the {pol} network policy."),
        ));
    }
    if let Some(v) = r.k8s {
        if v < (1, 21, 2) {
            f.push(Finding::new(
                RuleId::V7,
                "kubernetesVersion",
                format!(
                    "Dual-stack needs Kubernetes 1.21.2 or later; the cluster runs {}.{}.{}.",
                    v.0, v.1, v.2
                ),
            ));
        }
    }
}
