//! `ipMasq: true`: SNAT for the network's pods in the plugin itself, like the
//! reference bridge plugin's option (`pkg/ip/ipmasq_*_linux.go`): traffic from
//! a pod to anything outside the pod subnets (and not multicast) leaves with
//! the node's address. Off by default: on AKS SNAT belongs to ip-masq-agent,
//! which `aksnet agent` replaces (docs/azure.md#kubenet-snat).
//!
//! Rules live in one table, `inet aksnet-cni`, shared by every network on the
//! node. Per network (names carry a hash of the network name, so any valid
//! network name is safe in nft syntax): a set of pod addresses per family and
//! a nat base chain with one masquerade rule over that set. Rules are static;
//! ADD and DEL only change set elements (the "rules, not elements per pod"
//! lesson of the Go plugin's nftables flavour, docs/prior-art.md#nftables).
//! Every change is one `nft -f -` transaction, built with `aksnet_nft::Changes`
//! (the one nftables path: no nft text is formatted here). Like the bridge, the table and
//! chain outlive the last pod; `nft delete table inet aksnet-cni` removes them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aksnet_nft::model::priority;
use aksnet_nft::{
    AddrField, AddrValue, BaseChain, ChainType, Changes, Expr, Family, Hook, NftCommand, NftError,
    Op, Policy, Rule, SetType,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::PluginError;

pub const TABLE: &str = "aksnet-cni";

/// Per-network object names: `pods4-<h>`, `pods6-<h>`, `post-<h>`.
fn suffix(network: &str) -> String {
    let d = sha1_smol::Sha1::from(network.as_bytes())
        .digest()
        .to_string();
    d[..10].to_string()
}

fn set_of(h: &str, ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("pods4-{h}"),
        IpAddr::V6(_) => format!("pods6-{h}"),
    }
}

/// Starts the network's script: the table and its two sets, created if missing
/// (a block declaration is idempotent).
fn declare_sets(network: &str) -> Result<(Changes, String), NftError> {
    let h = suffix(network);
    let mut c = Changes::new(Family::Inet, TABLE)?;
    c.declare_set(&format!("pods4-{h}"), SetType::Ipv4Addr)?
        .declare_set(&format!("pods6-{h}"), SetType::Ipv6Addr)?;
    Ok((c, h))
}

/// The network's one masquerade rule of a family: from its pods' set to
/// anything outside the pod subnets and multicast.
fn masq_rule(h: &str, subnets: &[IpNet], v4: bool) -> Rule {
    let (saddr, daddr, set, multicast) = if v4 {
        let m = IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4));
        (AddrField::Ip4Saddr, AddrField::Ip4Daddr, "pods4", m)
    } else {
        let m = IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
        ));
        (AddrField::Ip6Saddr, AddrField::Ip6Daddr, "pods6", m)
    };
    let set = format!("{set}-{h}");
    let mut excluded: Vec<IpNet> = subnets
        .iter()
        .filter(|n| n.addr().is_ipv4() == v4)
        .map(IpNet::trunc)
        .collect();
    excluded.push(multicast);
    Rule::new(vec![
        Expr::Addr {
            field: saddr,
            op: Op::Eq,
            value: AddrValue::SetRef(set),
        },
        Expr::Addr {
            field: daddr,
            op: Op::Ne,
            value: AddrValue::AnonSet(excluded),
        },
        Expr::Masquerade {
            fully_random: false,
        },
    ])
}

/// Creates the network's chain and (re)writes its one rule per family.
fn declare_chain(c: &mut Changes, h: &str, subnets: &[IpNet]) -> Result<(), NftError> {
    let chain = format!("post-{h}");
    let base = BaseChain {
        chain_type: ChainType::Nat,
        hook: Hook::Postrouting,
        priority: priority::SRCNAT,
        policy: Policy::Accept,
    };
    c.declare_base_chain(&chain, &base)?.flush_chain(&chain)?;
    for v4 in [true, false] {
        c.add_rule(&chain, &masq_rule(h, subnets, v4))?;
    }
    Ok(())
}

fn elements(c: &mut Changes, h: &str, add: bool, ips: &[IpAddr]) -> Result<(), NftError> {
    for ip in ips {
        let set = set_of(h, ip);
        if add {
            c.add_elements(&set, &[*ip])?;
        } else {
            c.delete_elements(&set, &[*ip])?;
        }
    }
    Ok(())
}

/// ADD: the pod's addresses join the network's masquerade set.
pub fn script_add(network: &str, subnets: &[IpNet], ips: &[IpAddr]) -> Result<Changes, NftError> {
    let (mut c, h) = declare_sets(network)?;
    declare_chain(&mut c, &h, subnets)?;
    elements(&mut c, &h, true, ips)?;
    Ok(c)
}

/// DEL: remove the pod's addresses. Adding then deleting in one transaction
/// makes a missing element a no-op (DEL must tolerate anything missing).
pub fn script_del(network: &str, ips: &[IpAddr]) -> Result<Changes, NftError> {
    let (mut c, h) = declare_sets(network)?;
    elements(&mut c, &h, true, ips)?;
    elements(&mut c, &h, false, ips)?;
    Ok(c)
}

/// GC: the set becomes exactly the addresses still held.
pub fn script_sync(network: &str, ips: &[IpAddr]) -> Result<Changes, NftError> {
    let (mut c, h) = declare_sets(network)?;
    c.flush_set(&format!("pods4-{h}"))?
        .flush_set(&format!("pods6-{h}"))?;
    elements(&mut c, &h, true, ips)?;
    Ok(c)
}

/// Runs one `nft -f -` transaction. A runtime may call the plugin without
/// `PATH`, so nft is looked for where distributions install it first.
pub fn apply(changes: Result<Changes, NftError>) -> Result<(), PluginError> {
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft");
    let fail = |source: NftError, script: &str| PluginError::IpMasq {
        script: script.to_string(),
        source,
    };
    let changes = changes.map_err(|e| fail(e, ""))?;
    NftCommand::new(nft)
        .run_script("ipMasq", changes.script())
        .map_err(|e| fail(e, changes.script()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_add_script() {
        let c = script_add(
            "kubenet",
            &["10.244.1.0/24".parse().unwrap()],
            &["10.244.1.5".parse().unwrap()],
        )
        .unwrap();
        let s = c.script();
        let h = suffix("kubenet");
        assert!(s.contains(&format!(
            "add rule inet aksnet-cni post-{h} ip saddr @pods4-{h} ip daddr != {{ 10.244.1.0/24, 224.0.0.0/4 }} masquerade"
        )));
        assert!(s.contains(&format!(
            "add element inet aksnet-cni pods4-{h} {{ 10.244.1.5 }}"
        )));
        assert!(s.contains("type nat hook postrouting priority srcnat"));
    }

    #[test]
    fn del_adds_then_deletes() {
        let c = script_del("n", &["fd00::5".parse().unwrap()]).unwrap();
        let s = c.script();
        let add = s.find("add element").unwrap();
        let del = s.find("delete element").unwrap();
        assert!(add < del);
        assert!(s.contains("pods6-"));
    }

    #[test]
    fn names_differ_per_network_and_are_nft_safe() {
        assert_ne!(suffix("a"), suffix("b"));
        assert!(suffix("we.ird_name-1")
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
    }
}
