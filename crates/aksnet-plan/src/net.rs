//! Address arithmetic the rules and the capacity maths share. Pure.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

// The AKS facts (Azure's 5 reserved addresses, usable addresses, overlap) have one home,
// aksnet-core::azure; re-exported here for the rules.
pub use aksnet_core::azure::{overlaps, usable_addresses as azure_usable};

/// Ranges no AKS service CIDR, pod CIDR or cluster VNet may touch (rule R1, docs/plan.md; Microsoft Learn legacy CNI page
/// "Deployment parameters").
pub const AKS_RESERVED: [&str; 4] = [
    "169.254.0.0/16",
    "172.30.0.0/16",
    "172.31.0.0/16",
    "192.0.2.0/24",
];

/// Ranges Azure never allows in a VNet (rule R4, docs/plan.md).
pub const VNET_FORBIDDEN: [&str; 5] = [
    "224.0.0.0/4",
    "255.255.255.255/32",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "168.63.129.16/32",
];

/// RFC 1918 and RFC 6598: the private space the rules call "not public" (rule R2, docs/plan.md, R3).
pub const PRIVATE_V4: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
];

pub fn net(s: &str) -> IpNet {
    // Only called on the constants above, which are valid.
    s.parse().unwrap_or_else(|_| IpNet::V4(Ipv4Net::default()))
}

/// Parse "a.b.c.d/len" (or an IPv6 CIDR). Whitespace around it is tolerated.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    s.trim().parse::<IpNet>().ok()
}

pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse::<IpAddr>().ok()
}

/// True when the network address has host bits set (`10.2.0.1/24`), rule S7, docs/plan.md.
pub fn has_host_bits(n: &IpNet) -> bool {
    n.addr() != n.network()
}

/// `outer` holds all of `inner`.
pub fn covers(outer: &IpNet, inner: &IpNet) -> bool {
    outer.contains(&inner.network())
        && outer.prefix_len() <= inner.prefix_len()
        && same_family(outer, inner)
}

pub fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!(
        (a, b),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    )
}

/// Number of addresses in an IPv4 prefix (IPv6 saturates; only IPv4 is counted).
pub fn size_v4(prefix: u8) -> u64 {
    if prefix > 32 {
        0
    } else {
        1u64 << (32 - u32::from(prefix))
    }
}

/// The longest prefix whose Azure-usable count holds `required` addresses (docs/plan.md
/// "Smallest subnet for a plan"). `None` when even a /8 (the VNet maximum) is too small.
pub fn smallest_azure_prefix(required: u64) -> Option<u8> {
    (8..=29u8).rev().find(|p| azure_usable(*p) >= required)
}

pub fn is_private_v4(n: &IpNet) -> bool {
    PRIVATE_V4.iter().any(|p| covers(&net(p), n))
}

pub fn is_multicast(n: &IpNet) -> bool {
    match n {
        IpNet::V4(_) => overlaps(&net("224.0.0.0/4"), n),
        IpNet::V6(_) => overlaps(&net("ff00::/8"), n),
    }
}

/// IPv6 unique-local space (RFC 4193), the only IPv6 the planner calls private.
pub fn is_private_v6(n: &IpNet) -> bool {
    covers(&net("fc00::/7"), n)
}

pub fn is_private(n: &IpNet) -> bool {
    match n {
        IpNet::V4(_) => is_private_v4(n),
        IpNet::V6(_) => is_private_v6(n),
    }
}

/// The `k`-th address of a network (0 = network address).
pub fn nth_v4(n: &Ipv4Net, k: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.network()).wrapping_add(k))
}

pub fn ceil_div(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        a.div_ceil(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_matches_azure() {
        assert_eq!(azure_usable(24), 251);
        assert_eq!(azure_usable(21), 2043);
        assert_eq!(azure_usable(29), 3);
        assert_eq!(azure_usable(31), 0);
    }

    #[test]
    fn smallest_prefix_for_the_docs_example() {
        // DOC-IP: 50 nodes, surge 1, 30 pods → 1,581 → /21; 1,891 → /21.
        assert_eq!(smallest_azure_prefix(1581), Some(21));
        assert_eq!(smallest_azure_prefix(1891), Some(21));
        assert_eq!(smallest_azure_prefix(251), Some(24));
        assert_eq!(smallest_azure_prefix(252), Some(23));
    }

    #[test]
    fn overlap_and_cover() {
        let a = net("10.0.0.0/16");
        let b = net("10.0.5.0/24");
        let c = net("10.1.0.0/16");
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert!(covers(&a, &b) && !covers(&b, &a));
        assert!(is_private(&net("100.64.0.0/16")));
        assert!(!is_private(&net("172.10.0.0/16")));
        assert!(is_multicast(&net("224.1.0.0/16")));
        assert!(has_host_bits(&"10.2.0.1/24".parse().unwrap()));
    }
}
