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
//! Every change is one `nft -f -` transaction. Like the bridge, the table and
//! chain outlive the last pod; `nft delete table inet aksnet-cni` removes them.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::error::PluginError;

pub const TABLE: &str = "aksnet-cni";

/// Per-network object names: `pods4-<h>`, `pods6-<h>`, `post-<h>`.
fn suffix(network: &str) -> String {
    let d = sha1_smol::Sha1::from(network.as_bytes())
        .digest()
        .to_string();
    d[..10].to_string()
}

fn family_of(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "4",
        IpAddr::V6(_) => "6",
    }
}

/// Creates the network's sets if missing (a block declaration is idempotent).
fn declare_sets(network: &str) -> String {
    let h = suffix(network);
    format!(
        "table inet {TABLE} {{\n  set pods4-{h} {{ type ipv4_addr; }}\n  set pods6-{h} {{ type ipv6_addr; }}\n}}\n"
    )
}

/// Creates the network's chain and (re)writes its one rule per family.
fn declare_chain(network: &str, subnets: &[IpNet]) -> String {
    let h = suffix(network);
    let mut s = format!(
        "table inet {TABLE} {{\n  chain post-{h} {{ type nat hook postrouting priority srcnat; policy accept; }}\n}}\n"
    );
    s.push_str(&format!("flush chain inet {TABLE} post-{h}\n"));
    for fam in ["4", "6"] {
        let (kw, multicast) = if fam == "4" {
            ("ip", "224.0.0.0/4")
        } else {
            ("ip6", "ff00::/8")
        };
        let mut excluded: Vec<String> = subnets
            .iter()
            .filter(|n| (n.addr().is_ipv4()) == (fam == "4"))
            .map(|n| n.trunc().to_string())
            .collect();
        excluded.push(multicast.to_string());
        s.push_str(&format!(
            "add rule inet {TABLE} post-{h} {kw} saddr @pods{fam}-{h} {kw} daddr != {{ {} }} masquerade\n",
            excluded.join(", ")
        ));
    }
    s
}

fn elements(op: &str, network: &str, ips: &[IpAddr]) -> String {
    let h = suffix(network);
    let mut s = String::new();
    for ip in ips {
        let fam = family_of(ip);
        s.push_str(&format!(
            "{op} element inet {TABLE} pods{fam}-{h} {{ {ip} }}\n"
        ));
    }
    s
}

/// ADD: the pod's addresses join the network's masquerade set.
pub fn script_add(network: &str, subnets: &[IpNet], ips: &[IpAddr]) -> String {
    declare_sets(network) + &declare_chain(network, subnets) + &elements("add", network, ips)
}

/// DEL: remove the pod's addresses. Adding then deleting in one transaction
/// makes a missing element a no-op (DEL must tolerate anything missing).
pub fn script_del(network: &str, ips: &[IpAddr]) -> String {
    declare_sets(network) + &elements("add", network, ips) + &elements("delete", network, ips)
}

/// GC: the set becomes exactly the addresses still held.
pub fn script_sync(network: &str, ips: &[IpAddr]) -> String {
    let h = suffix(network);
    declare_sets(network)
        + &format!("flush set inet {TABLE} pods4-{h}\nflush set inet {TABLE} pods6-{h}\n")
        + &elements("add", network, ips)
}

/// Runs one `nft -f -` transaction.
pub fn apply(script: &str) -> Result<(), PluginError> {
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft");
    let fail = |why: String| PluginError::IpMasq {
        why,
        script: script.to_string(),
    };
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {nft}: {e} (install the nftables package)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| fail(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "nft exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_add_script() {
        let s = script_add(
            "kubenet",
            &["10.244.1.0/24".parse().unwrap()],
            &["10.244.1.5".parse().unwrap()],
        );
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
        let s = script_del("n", &["fd00::5".parse().unwrap()]);
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
