//! The compiled nftables tables, run by the model's interpreter (aksnet_nft::filter), agree
//! with the reference evaluator on random clusters, policies and probes: every ordered pair of
//! endpoints, both address families, three protocols, through the source node's table and the
//! destination node's table as the packet would cross them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use aksnet_nft::filter::{run_hook, CtState, FilterTable, Packet};
use aksnet_nft::Hook;
use aksnet_policy::compile::{compile, NodeScope};
use aksnet_policy::eval::{Connection, Endpoint};
use aksnet_policy::model::{Cluster, Policy, Protocol};
use proptest::prelude::*;

mod gen;
use gen::*;

fn tables(cluster: &Cluster, policies: &[Policy]) -> BTreeMap<String, FilterTable> {
    let mut out = BTreeMap::new();
    for n in 1..=2 {
        let ranges = [
            net(&format!("10.244.{n}.0/24")),
            net(&format!("fd00:10:244:{n}::/64")),
        ];
        let node = format!("n{n}");
        let scope = NodeScope {
            table: "aksnet-policy",
            node: &node,
            pod_ranges: &ranges,
        };
        let t = compile(cluster, policies, &scope).unwrap();
        t.validate().unwrap();
        out.insert(node.clone(), t);
    }
    out
}

/// The datapath's verdict: the source node's forward hook, then the destination node's when
/// the packet crosses to another node.
fn datapath(
    tables: &BTreeMap<String, FilterTable>,
    src: &Endpoint,
    dst: &Endpoint,
    pkt: &Packet,
) -> bool {
    let node_of = |e: &Endpoint| match e {
        Endpoint::Pod(p) => p.node.clone(),
        _ => None,
    };
    let (sn, dn) = (node_of(src), node_of(dst));
    let mut nodes = vec![];
    nodes.extend(sn.clone());
    if dn != sn {
        nodes.extend(dn);
    }
    nodes
        .iter()
        .all(|n| run_hook(&tables[n], Hook::Forward, pkt))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]
    #[test]
    fn compiled_tables_agree_with_the_reference((cluster, policies) in scenario()) {
        let tables = tables(&cluster, &policies);
        let externals: Vec<(String, IpAddr)> = vec![
            ("e4".into(), "192.168.1.9".parse().unwrap()),
            ("f4".into(), "192.168.7.9".parse().unwrap()),
            ("e6".into(), "fd00:192:168::9".parse().unwrap()),
        ];
        let mut eps: Vec<(Endpoint, Vec<IpAddr>)> = cluster.pods.iter().map(|p| (Endpoint::Pod(p), p.ips.clone())).collect();
        eps.extend(externals.iter().map(|(n, ip)| (Endpoint::External { name: n, ip: *ip }, vec![*ip])));
        for (s, s_ips) in &eps {
            for (d, d_ips) in &eps {
                if s.label() == d.label() || (!matches!(s, Endpoint::Pod(_)) && !matches!(d, Endpoint::Pod(_))) {
                    continue;
                }
                for d_ip in d_ips {
                    let Some(s_ip) = s_ips.iter().copied().find(|i| i.is_ipv4() == d_ip.is_ipv4()) else { continue };
                    for proto in Protocol::ALL {
                        for port in [80u16, 81, 82, 83] {
                            let model = Connection::new(&cluster, &policies, (s, s_ip), (d, *d_ip), port, proto).verdict();
                            let pkt = Packet { saddr: s_ip, daddr: *d_ip, l4proto: proto.number(), dport: port, ct: CtState::New };
                            let dp = datapath(&tables, s, d, &pkt);
                            prop_assert_eq!(model.allowed, dp, "{} ({}) -> {} ({}) {}/{}: model says {}\npolicies: {:#?}", s.label(), s_ip, d.label(), d_ip, port, proto, model.reason(&s.label(), &d.label()), policies);
                            // Replies of any connection pass (conntrack).
                            let reply = Packet { saddr: *d_ip, daddr: s_ip, ct: CtState::Established, ..pkt };
                            prop_assert!(datapath(&tables, d, s, &reply));
                        }
                    }
                }
            }
        }
    }
}
