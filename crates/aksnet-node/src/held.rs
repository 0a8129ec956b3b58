//! The addresses a node's IPAM state hands to pods (every network in its data
//! directory): what join, leave, keepalive and pod-sync must not take away, and
//! what the agent answers ARP for.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::NodeError;

/// The IPAM state of `data_dir` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("read the IPAM state in {}: {source}", data_dir.display())]
pub struct HeldError {
    pub data_dir: PathBuf,
    #[source]
    pub source: aksnet_ipam::IpamError,
}

impl From<HeldError> for NodeError {
    fn from(e: HeldError) -> Self {
        NodeError::Ipam {
            data_dir: e.data_dir,
            source: Box::new(e.source),
        }
    }
}

/// The IPv4 addresses the node's IPAM state (every network in `data_dir`)
/// hands to pods.
pub fn held_addresses(data_dir: &Path) -> Result<BTreeSet<Ipv4Addr>, HeldError> {
    let held = aksnet_ipam::allocated_addresses(data_dir).map_err(|source| HeldError {
        data_dir: data_dir.to_path_buf(),
        source,
    })?;
    Ok(held
        .into_iter()
        .filter_map(|h| match h.ip {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .collect())
}

/// [`held_addresses`] as a node operation's error.
pub fn held_v4(data_dir: &Path) -> Result<BTreeSet<Ipv4Addr>, NodeError> {
    Ok(held_addresses(data_dir)?)
}

/// Pod addresses of `pod_ips` that the node's IPAM state in `data_dir` holds.
pub fn pods_in_use(data_dir: &Path, pod_ips: &[Ipv4Addr]) -> Result<BTreeSet<Ipv4Addr>, NodeError> {
    let ours: BTreeSet<Ipv4Addr> = pod_ips.iter().copied().collect();
    Ok(held_v4(data_dir)?.intersection(&ours).copied().collect())
}

/// Addresses of `subnet` that the node's IPAM state hands to pods: the block a
/// join gives the node must hold them all.
pub fn in_use_in_subnet(data_dir: &Path, subnet: Ipv4Net) -> Result<BTreeSet<Ipv4Addr>, NodeError> {
    let mut held = held_v4(data_dir)?;
    held.retain(|ip| subnet.contains(ip));
    Ok(held)
}
