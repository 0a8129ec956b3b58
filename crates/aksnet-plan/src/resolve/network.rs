//! The network profile: the plugin, IP families, pod and service CIDRs and the DNS service IP,
//! with AKS's defaults where absent (docs/plan.md, "Decisions" and "Defaults applied").

use super::{cidr, CidrValue, Defaults, NP};
use crate::model::{Cluster, Origin, Plugin};

/// The address part of the network profile, defaults applied.
pub(super) struct Network {
    pub ip_families: Vec<String>,
    pub pod_cidrs: Vec<CidrValue>,
    pub pod_cidr_explicit: bool,
    pub service_cidrs: Vec<CidrValue>,
    pub service_cidr_explicit: bool,
    pub dns_raw: String,
    pub dns_explicit: bool,
}

/// (plugin, overlay, given explicitly). The CLI's current default is overlay; an API request
/// without a networkProfile got kubenet (docs/plan.md, decisions).
pub(super) fn plugin(c: &Cluster, origin: Origin, d: &mut Defaults) -> (Plugin, bool, bool) {
    match c.network_plugin {
        Some(p) => (
            p,
            p == Plugin::Azure
                && c.network_plugin_mode
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("overlay")),
            true,
        ),
        None if matches!(origin, Origin::Spec | Origin::AzScript) => {
            d.add(
                format!("{NP}.networkPlugin"),
                "azure (networkPluginMode overlay)",
                "absent: az aks create's current default is Azure CNI Overlay",
            );
            (Plugin::Azure, true, false)
        }
        None => {
            d.add(
                format!("{NP}.networkPlugin"),
                "kubenet",
                "absent: the API's default for a request without networkPlugin",
            );
            (Plugin::Kubenet, false, false)
        }
    }
}

/// IP families follow the CIDR lists when absent.
fn ip_families(c: &Cluster, d: &mut Defaults) -> Vec<String> {
    if !c.ip_families.is_empty() {
        return c.ip_families.clone();
    }
    let v6 = c
        .pod_cidrs
        .iter()
        .chain(c.service_cidrs.iter())
        .any(|s| s.contains(':'));
    let families: Vec<String> = if v6 {
        vec!["IPv4".into(), "IPv6".into()]
    } else {
        vec!["IPv4".into()]
    };
    d.add(
        format!("{NP}.ipFamilies"),
        families.join(","),
        "absent: follows the CIDRs given",
    );
    families
}

/// `given`, else `default`; with dual-stack and only an IPv4 range, AKS's IPv6 default is
/// added (DOC-DS).
fn with_defaults(
    given: &[String],
    field: &str,
    default: Option<&str>,
    v6_default: Option<&str>,
    d: &mut Defaults,
) -> Vec<String> {
    let mut raw = given.to_vec();
    if let (true, Some(def)) = (raw.is_empty(), default) {
        raw.push(def.into());
        let why = if field == "podCidr" {
            "absent: AKS default pod CIDR (rule P7, docs/plan.md)"
        } else {
            "absent: AKS default service CIDR"
        };
        d.add(format!("{NP}.{field}"), def, why);
    }
    if let Some(v6) = v6_default {
        if raw.len() == 1 && !raw.iter().any(|s| s.contains(':')) {
            raw.push(v6.into());
            d.add(
                format!("{NP}.{field}s[1]"),
                v6,
                "absent: AKS dual-stack default (DOC-DS)",
            );
        }
    }
    raw
}

/// `networkProfile.podCidr` for one range, `podCidrs[i]` for several.
fn values(raw: &[String], name: &str) -> Vec<CidrValue> {
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            let field = if raw.len() == 1 {
                format!("{NP}.{name}")
            } else {
                format!("{NP}.{name}s[{i}]")
            };
            cidr(s, field)
        })
        .collect()
}

/// IP families, pod and service CIDRs and the DNS service IP, defaults applied.
pub(super) fn addresses(c: &Cluster, plugin: Plugin, overlay: bool, d: &mut Defaults) -> Network {
    let ip_families = ip_families(c, d);
    let dual = ip_families.iter().any(|f| f.eq_ignore_ascii_case("ipv6"));
    let uses_pod_cidr = plugin == Plugin::Kubenet || overlay;
    let pod_raw = with_defaults(
        &c.pod_cidrs,
        "podCidr",
        uses_pod_cidr.then_some("10.244.0.0/16"),
        (dual && uses_pod_cidr).then_some("fd12:3456:789a::/64"),
        d,
    );
    let svc_raw = with_defaults(
        &c.service_cidrs,
        "serviceCidr",
        Some("10.0.0.0/16"),
        dual.then_some("fd12:3456:789a:1::/108"),
        d,
    );
    let dns_raw = c.dns_service_ip.clone().unwrap_or_else(|| {
        d.add(
            format!("{NP}.dnsServiceIP"),
            "10.0.0.10",
            "absent: AKS default DNS service IP",
        );
        "10.0.0.10".into()
    });
    Network {
        ip_families,
        pod_cidrs: values(&pod_raw, "podCidr"),
        pod_cidr_explicit: !c.pod_cidrs.is_empty(),
        service_cidrs: values(&svc_raw, "serviceCidr"),
        service_cidr_explicit: !c.service_cidrs.is_empty(),
        dns_raw,
        dns_explicit: c.dns_service_ip.is_some(),
    }
}
