//! One round of a node's lease keepalive (`aksnet node keepalive`, the agent's
//! lease hook; docs/node.md, "Leases and fencing"): renew the lease, read the
//! node's reservation, which must exist on that lease, and make the local pool
//! equal to the store's record (rewritten only when the node's IPAM holds no
//! address outside it). A Pod Subnet node's pool is topped up instead.

use std::path::Path;
use std::time::Duration;

use aksnet_store::local_pool::{read_node_pool_ignoring_fence, write_node_pool, NodeLease};
use aksnet_store::reservation::{get_node, ReservationError};
use aksnet_store::Store;

use crate::held::in_use_in_subnet;
use crate::pods::top_up_pod_pool;
use crate::NodeError;

/// What a round found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// The lease's remaining TTL and the reservation's revision (a watch of the
    /// node's key starts after it); `rewrote`: the local pool was rewritten from
    /// the store.
    Alive {
        ttl: Duration,
        revision: u64,
        rewrote: bool,
    },
    /// The node may no longer own its pool: why (the caller fences it).
    Lost(String),
}

/// Renews `lease` and reconciles the pool of `node` in `data_dir`.
pub fn keepalive_round(
    store: &dyn Store,
    node: &str,
    data_dir: &Path,
    lease: &NodeLease,
) -> Result<Round, NodeError> {
    let Some(left) = store
        .keep_alive(lease.lease)
        .map_err(ReservationError::from)?
    else {
        return Ok(Round::Lost(format!(
            "lease {:x} of node {node} expired: the store has freed its addresses",
            lease.lease
        )));
    };
    let (record, revision) = match get_node(store, node)? {
        None => {
            return Ok(Round::Lost(format!(
                "node {node}'s reservation is gone from the store"
            )))
        }
        Some((r, _)) if r.lease != Some(lease.lease) => {
            return Ok(Round::Lost(format!(
                "the store holds node {node}'s reservation on another lease than {:x}",
                lease.lease
            )))
        }
        Some((r, rev)) => (r, rev),
    };
    let ttl = Duration::from_secs(u64::try_from(left).unwrap_or(1).max(1));
    if record.pod_subnet.is_some() {
        // A Pod Subnet node's pool is its blocks of the pod subnet (topped up
        // and trimmed by the same round as `aksnet node pod-sync`).
        top_up_pod_pool(store, data_dir)?;
        return Ok(Round::Alive {
            ttl,
            revision,
            rewrote: false,
        });
    }
    let want = record.to_node_pool();
    if read_node_pool_ignoring_fence(data_dir)?.as_ref() == Some(&want) {
        return Ok(Round::Alive {
            ttl,
            revision,
            rewrote: false,
        });
    }
    let outside: Vec<_> = in_use_in_subnet(data_dir, record.subnet)?
        .into_iter()
        .filter(|ip| !record.pod_ips.contains(ip))
        .collect();
    if !outside.is_empty() {
        return Ok(Round::Lost(format!(
            "the local pool differs from the store and pods hold {outside:?}, outside \
             the store's reservation"
        )));
    }
    write_node_pool(data_dir, &want)?;
    Ok(Round::Alive {
        ttl,
        revision,
        rewrote: true,
    })
}
