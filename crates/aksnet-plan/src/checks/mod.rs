//! The rules of docs/plan.md on a resolved plan. Pure; one file per rule family, one
//! function per group; the catalogue (`crate::catalogue`) fixes each rule's severity.

use ipnet::IpNet;

use crate::report::Finding;
use crate::resolve::{CidrValue, Resolved};

mod dual_stack;
mod formats;
mod other;
mod pods;
mod reserved;
mod scale;
mod service;
mod subnets;

use dual_stack::dual_stack;
use formats::formats;
use other::{docker_bridge, notes, other};
use pods::{max_pods, pod_cidr, pod_subnet};
use reserved::reserved;
use scale::{counts, surge};
use service::{dns, service};
use subnets::subnets;

pub fn check(r: &Resolved) -> Vec<Finding> {
    let mut f = Vec::new();
    formats(r, &mut f);
    reserved(r, &mut f);
    service(r, &mut f);
    dns(r, &mut f);
    pod_cidr(r, &mut f);
    subnets(r, &mut f);
    max_pods(r, &mut f);
    counts(r, &mut f);
    surge(r, &mut f);
    dual_stack(r, &mut f);
    docker_bridge(r, &mut f);
    pod_subnet(r, &mut f);
    other(r, &mut f);
    notes(r, &mut f);
    f
}

pub(super) const INSUFFICIENT_TAIL: &str = "If Autoscaler is enabled, the max-count from each nodepool is counted towards this total (which means that pre-allocated IPs count represents a theoretical max value, not the actual number of IPs requested). http://aka.ms/aks/insufficientsubnetsize";

pub(super) fn vnet_ranges(r: &Resolved) -> Vec<(&CidrValue, &str)> {
    r.vnets
        .iter()
        .flat_map(|v| v.prefixes.iter().map(move |p| (p, v.name.as_str())))
        .collect()
}

/// Every subnet prefix with its subnet's name and whether the subnet lies in
/// the AKS-managed VNet (whose overlaps get the managed-VNet rule R5).
pub(super) fn subnet_ranges(r: &Resolved) -> Vec<(IpNet, &str, bool)> {
    r.subnets
        .iter()
        .flat_map(|s| {
            let managed = r.vnets.get(s.vnet).is_some_and(|v| v.managed);
            s.prefixes
                .iter()
                .filter_map(move |p| p.parsed.map(|n| (n, s.name.as_str(), managed)))
        })
        .collect()
}
