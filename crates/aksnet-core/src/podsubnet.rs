//! Azure CNI Pod Subnet arithmetic (issue 15): a pod subnet separate from the
//! node subnet, handed to nodes in aligned blocks of 16 addresses.
//!
//! Facts (docs/models.md#pod-subnet, docs/azure.md#pod-subnet):
//! - Static block allocation gives each node `/28` blocks of 16 addresses for its
//!   whole life, `ceil((maxPods + 1) / 16)` of them, so maxPods `16N − 1` wastes
//!   nothing (https://learn.microsoft.com/en-us/azure/aks/configure-azure-cni-static-block-allocation;
//!   `PodIPAllocationMode.StaticBlock`, "Number of CIDR blocks >= (maxPods / 16)").
//! - Dynamic allocation hands a node addresses in batches of 16 and asks for
//!   more when fewer than half a batch is free
//!   (https://learn.microsoft.com/en-us/azure/aks/configure-azure-cni-dynamic-ip-allocation).
//!
//! aksnet's choices (documented in docs/models.md, "Pod Subnet in aksnet"):
//! - both modes hand out **aligned /28 blocks**: a dynamic batch is one block, so
//!   the cluster store's index holds one key per batch and a node never holds
//!   more than 16 of them (etcd's 128 operations per transaction);
//! - a block holding one of Azure's 5 reserved addresses (the subnet's first and
//!   last /28) is never handed out;
//! - the first address of a node's first block is the node's own address in the
//!   pod subnet (the "one IP per node" of `16N − 1`); pods never get it;
//! - thresholds of the dynamic mode: [`BATCH`] 16, ask for a batch when fewer than
//!   [`MIN_FREE`] 8 are free, return a wholly free batch when more than
//!   [`MAX_FREE`] 24 are free (Azure's 0.5 × and 1.5 × the batch).
//!
//! Pure: no I/O. The cluster store calls these inside its compare-and-swap loops.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::azure::{MaxPods, NodeSubnet};

/// Addresses in one block (a /28), and one dynamic batch.
pub const BATCH: u32 = 16;
/// Prefix length of a block.
pub const BLOCK_PREFIX: u8 = 28;
/// A dynamic node asks for another batch when fewer addresses than this are free.
pub const MIN_FREE: u32 = BATCH / 2;
/// A dynamic node returns a wholly free batch when more than this are free.
pub const MAX_FREE: u32 = BATCH + BATCH / 2;

/// How a pod subnet hands addresses to nodes (AKS's `podIPAllocationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocation {
    /// `StaticBlock`: every block a node needs, at join, for its life.
    Static,
    /// `DynamicIndividual`: batches on demand, returned when far above need.
    Dynamic,
}

impl Allocation {
    pub fn name(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
        }
    }
}

impl std::fmt::Display for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `ceil((maxPods + 1) / 16)`: the blocks a static node takes, and the most a
/// dynamic node ever holds.
pub fn blocks_for(max_pods: MaxPods) -> u32 {
    (max_pods.get() + 1).div_ceil(BATCH)
}

/// The blocks of `subnet` that may be handed out: every aligned /28 without one
/// of Azure's 5 reserved addresses, in address order (first addresses).
pub fn eligible_blocks(subnet: &NodeSubnet) -> impl Iterator<Item = Ipv4Addr> + '_ {
    let cidr = subnet.cidr();
    let first = u32::from(cidr.network());
    let count = if cidr.prefix_len() > BLOCK_PREFIX {
        0
    } else {
        1u64 << (BLOCK_PREFIX - cidr.prefix_len())
    };
    (0..count)
        .map(move |i| Ipv4Addr::from(first + (i as u32) * BATCH))
        .filter(move |b| !block_addresses(*b).any(|ip| subnet.is_azure_reserved(ip)))
}

/// The 16 addresses of the block starting at `first`.
pub fn block_addresses(first: Ipv4Addr) -> impl Iterator<Item = Ipv4Addr> {
    let f = u32::from(first);
    (0..BATCH).map(move |i| Ipv4Addr::from(f + i))
}

/// The block that holds `ip`.
pub fn block_of(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & !(BATCH - 1))
}

/// True when `first` is an aligned, eligible block of `subnet`.
pub fn is_eligible_block(subnet: &NodeSubnet, first: Ipv4Addr) -> bool {
    u32::from(first) % BATCH == 0
        && subnet.cidr().contains(&first)
        && subnet.cidr().prefix_len() <= BLOCK_PREFIX
        && !block_addresses(first).any(|ip| subnet.is_azure_reserved(ip))
}

/// The pod subnet has no room: in the shape of Azure's exhaustion, naming the
/// subnet and its use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pod subnet {name} ({cidr}) is exhausted: node {node} needs {need} more block(s) of 16 \
     addresses, {free} of its {total} blocks are free ({held} held by nodes: {used_addresses} \
     addresses); add a pod subnet or lower maxPods"
)]
pub struct PodSubnetExhausted {
    pub name: String,
    pub cidr: Ipv4Net,
    pub node: String,
    pub need: u32,
    pub free: u64,
    pub total: u64,
    pub held: u64,
    pub used_addresses: u64,
}

/// Picks `n` free eligible blocks of `subnet`, lowest first, given the blocks
/// nodes hold already (`taken`, first addresses).
pub fn pick_blocks(
    subnet: &NodeSubnet,
    taken: &BTreeSet<Ipv4Addr>,
    n: u32,
) -> Option<Vec<Ipv4Addr>> {
    let picked: Vec<Ipv4Addr> = eligible_blocks(subnet)
        .filter(|b| !taken.contains(b))
        .take(n as usize)
        .collect();
    (picked.len() == n as usize).then_some(picked)
}

/// The exhaustion error for a pick of `need` blocks that failed.
pub fn exhausted(
    name: &str,
    subnet: &NodeSubnet,
    node: &str,
    taken: &BTreeSet<Ipv4Addr>,
    need: u32,
) -> PodSubnetExhausted {
    let total = eligible_blocks(subnet).count() as u64;
    let held = taken.len() as u64;
    PodSubnetExhausted {
        name: name.to_string(),
        cidr: subnet.cidr(),
        node: node.to_string(),
        need,
        free: total.saturating_sub(held),
        total,
        held,
        used_addresses: held * u64::from(BATCH),
    }
}

/// The addresses pods may take from a node's blocks: every address of the
/// blocks except the first of the first block (the node's own), at most
/// `limit` of them (maxPods for a static node; `None` = all).
pub fn pod_addresses(blocks: &[Ipv4Addr], limit: Option<usize>) -> Vec<Ipv4Addr> {
    let mut sorted: Vec<Ipv4Addr> = blocks.to_vec();
    sorted.sort_unstable();
    sorted
        .iter()
        .flat_map(|b| block_addresses(*b))
        .skip(1)
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

/// What a dynamic node should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    /// Enough free and not too many: nothing.
    Keep,
    /// Ask the store for this many more blocks.
    Grow(u32),
    /// Return these wholly free blocks.
    Shrink(Vec<Ipv4Addr>),
}

/// The dynamic mode's decision for a node holding `blocks` with `in_use` of
/// its pod addresses allocated, at `max_pods`. Grows by one batch when fewer
/// than [`MIN_FREE`] are free (never past [`blocks_for`]); while more than
/// [`MAX_FREE`] are free, returns wholly free blocks, highest first, keeping
/// the first block (it holds the node's own address). A return leaves more
/// than `MAX_FREE − BATCH` = [`MIN_FREE`] free, so the two never oscillate.
pub fn rebalance(blocks: &[Ipv4Addr], in_use: &BTreeSet<Ipv4Addr>, max_pods: MaxPods) -> Rebalance {
    let pods = pod_addresses(blocks, None);
    let used = pods.iter().filter(|ip| in_use.contains(ip)).count() as u32;
    let free = pods.len() as u32 - used;
    let held = blocks.len() as u32;
    if free < MIN_FREE && held < blocks_for(max_pods) {
        return Rebalance::Grow(1);
    }
    let mut sorted: Vec<Ipv4Addr> = blocks.to_vec();
    sorted.sort_unstable();
    let first_block = sorted.first().copied();
    let mut give_back = Vec::new();
    let mut free_left = free;
    for b in sorted.iter().rev() {
        // The first block carries the node's own address: kept while the node is.
        if Some(*b) == first_block || free_left <= MAX_FREE {
            break;
        }
        if block_addresses(*b).any(|ip| in_use.contains(&ip)) {
            continue;
        }
        give_back.push(*b);
        free_left -= BATCH;
    }
    if give_back.is_empty() {
        Rebalance::Keep
    } else {
        Rebalance::Shrink(give_back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> NodeSubnet {
        NodeSubnet::new(s.parse().expect("cidr")).expect("subnet")
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn blocks_per_node_follow_aks() {
        for (max, want) in [
            (10, 1),
            (15, 1),
            (16, 2),
            (30, 2),
            (31, 2),
            (47, 3),
            (250, 16),
        ] {
            assert_eq!(blocks_for(MaxPods::new(max).expect("max")), want, "{max}");
        }
    }

    #[test]
    fn blocks_with_azure_reserved_addresses_are_never_eligible() {
        let s = subnet("10.1.0.0/24");
        let all: Vec<Ipv4Addr> = eligible_blocks(&s).collect();
        assert_eq!(all.len(), 14);
        assert_eq!(all.first(), Some(&ip("10.1.0.16")));
        assert_eq!(all.last(), Some(&ip("10.1.0.224")));
        assert!(!is_eligible_block(&s, ip("10.1.0.0")));
        assert!(!is_eligible_block(&s, ip("10.1.0.17")));
        assert!(is_eligible_block(&s, ip("10.1.0.32")));
        assert_eq!(eligible_blocks(&subnet("10.1.0.0/28")).count(), 0);
        assert_eq!(block_of(ip("10.1.0.47")), ip("10.1.0.32"));
    }

    #[test]
    fn picks_lowest_free_blocks_and_reports_exhaustion_with_use() {
        let s = subnet("10.1.0.0/26");
        let taken = BTreeSet::from([ip("10.1.0.16")]);
        assert_eq!(pick_blocks(&s, &taken, 1), Some(vec![ip("10.1.0.32")]));
        assert_eq!(pick_blocks(&s, &taken, 2), None);
        let e = exhausted("pods", &s, "n1", &taken, 2).to_string();
        assert_eq!(
            e,
            "pod subnet pods (10.1.0.0/26) is exhausted: node n1 needs 2 more block(s) of 16 \
             addresses, 1 of its 2 blocks are free (1 held by nodes: 16 addresses); add a pod \
             subnet or lower maxPods"
        );
    }

    #[test]
    fn pod_addresses_skip_the_nodes_own_and_respect_the_limit() {
        let blocks = [ip("10.1.0.32"), ip("10.1.0.16")];
        let pods = pod_addresses(&blocks, Some(30));
        assert_eq!(pods.len(), 30);
        assert_eq!(pods[0], ip("10.1.0.17"));
        assert_eq!(pods[29], ip("10.1.0.46"));
        assert_eq!(pod_addresses(&blocks, None).len(), 31);
    }

    #[test]
    fn rebalance_grows_below_min_free_and_returns_far_above_max_free() {
        let max = MaxPods::new(250).expect("max");
        let b = |n: u32| -> Vec<Ipv4Addr> {
            (0..n)
                .map(|i| Ipv4Addr::from(u32::from(ip("10.1.0.16")) + i * BATCH))
                .collect()
        };
        // One block: 15 pod addresses, all free: keep.
        assert_eq!(rebalance(&b(1), &BTreeSet::new(), max), Rebalance::Keep);
        // 8 of 15 used: 7 free < 8: grow.
        let used: BTreeSet<Ipv4Addr> = pod_addresses(&b(1), None).into_iter().take(8).collect();
        assert_eq!(rebalance(&b(1), &used, max), Rebalance::Grow(1));
        // Four blocks, nothing used: 63 free; return while more than 24 are free.
        let Rebalance::Shrink(back) = rebalance(&b(4), &BTreeSet::new(), max) else {
            panic!("expected a shrink")
        };
        assert_eq!(
            back,
            vec![ip("10.1.0.64"), ip("10.1.0.48"), ip("10.1.0.32")]
        );
        // A block with one address in use is never returned.
        let one = BTreeSet::from([ip("10.1.0.70")]);
        assert_eq!(
            rebalance(&b(4), &one, max),
            Rebalance::Shrink(vec![ip("10.1.0.48"), ip("10.1.0.32")])
        );
        // 25 free of 31: one block back leaves 9, above MIN_FREE.
        let six: BTreeSet<Ipv4Addr> = pod_addresses(&b(2), None).into_iter().take(6).collect();
        assert_eq!(
            rebalance(&b(2), &six, max),
            Rebalance::Shrink(vec![ip("10.1.0.32")])
        );
        // At the cap nothing grows, even when full.
        let small = MaxPods::new(15).expect("max");
        let full: BTreeSet<Ipv4Addr> = pod_addresses(&b(1), None).into_iter().collect();
        assert_eq!(rebalance(&b(1), &full, small), Rebalance::Keep);
    }
}
