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
use aksnet_policy::eval::{evaluate, Endpoint};
use aksnet_policy::model::{
    Cluster, NamedPort, Namespace, NamespaceScope, Peer, Pod, Policy, PortMatch, PortSpec,
    Protocol, Requirement, Rule, Selector,
};
use ipnet::IpNet;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        Just(Selector::everything()),
        prop::sample::select(vec!["a", "b", "c"]).prop_map(|v| Selector {
            match_labels: labels(&[("pod", v)]),
            match_expressions: vec![]
        }),
        prop::sample::select(vec!["x", "y", "z"]).prop_map(|v| Selector {
            match_labels: labels(&[("ns", v)]),
            match_expressions: vec![]
        }),
        (0..4usize, prop::sample::select(vec!["web", "db"])).prop_map(|(op, v)| {
            let set = [v.to_string()].into_iter().collect();
            let r = match op {
                0 => Requirement::In("tier".into(), set),
                1 => Requirement::NotIn("tier".into(), set),
                2 => Requirement::Exists("tier".into()),
                _ => Requirement::DoesNotExist("tier".into()),
            };
            Selector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![r],
            }
        }),
    ]
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        (selector(), prop::sample::select(vec!["x", "y"])).prop_map(|(pods, ns)| Peer::Pods {
            namespaces: NamespaceScope::Own(ns.into()),
            pods
        }),
        (selector(), selector()).prop_map(|(n, pods)| Peer::Pods {
            namespaces: NamespaceScope::Matching(n),
            pods
        }),
        prop::sample::select(vec![
            ("10.244.0.0/16", vec![]),
            ("10.244.1.0/24", vec!["10.244.1.8/29"]),
            ("10.244.2.0/24", vec![]),
            ("0.0.0.0/0", vec!["10.244.0.0/16"]),
            ("192.168.0.0/16", vec!["192.168.1.0/24"]),
            ("fd00::/8", vec!["fd00:10:244:1::/64"]),
            ("::/0", vec![]),
        ])
        .prop_map(|(c, e)| Peer::IpBlock {
            cidr: net(c),
            except: e.into_iter().map(net).collect()
        }),
    ]
}

fn port_spec() -> impl Strategy<Value = PortSpec> {
    (
        prop::sample::select(Protocol::ALL.to_vec()),
        prop_oneof![
            Just(PortMatch::All),
            Just(PortMatch::Range(80, 80)),
            Just(PortMatch::Range(81, 82)),
            Just(PortMatch::Named("web".into())),
            Just(PortMatch::Named("alt".into())),
        ],
    )
        .prop_map(|(protocol, port)| PortSpec { protocol, port })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::option::of(prop::collection::vec(peer(), 1..3)),
        prop::option::of(prop::collection::vec(port_spec(), 1..3)),
    )
        .prop_map(|(peers, ports)| Rule { peers, ports })
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::sample::select(vec!["x", "y"]),
        selector(),
        prop::option::of(prop::collection::vec(rule(), 0..3)),
        prop::option::of(prop::collection::vec(rule(), 0..3)),
    )
        .prop_map(|(ns, pod_selector, ingress, egress)| Policy {
            namespace: ns.into(),
            name: String::new(),
            pod_selector,
            ingress,
            egress,
        })
}

fn pod() -> impl Strategy<Value = (String, String, Option<String>, usize, Vec<NamedPort>)> {
    (
        prop::sample::select(vec!["x", "y", "z"]),
        prop::sample::select(vec!["a", "b", "c"]),
        prop::option::of(prop::sample::select(vec!["web", "db"])),
        0..2usize,
        prop::collection::vec(
            (
                prop::sample::select(vec!["web", "alt"]),
                80..83u16,
                prop::sample::select(Protocol::ALL.to_vec()),
            )
                .prop_map(|(n, port, protocol)| NamedPort {
                    name: Some(n.into()),
                    port,
                    protocol,
                }),
            0..3,
        ),
    )
        .prop_map(|(ns, p, tier, node, ports)| {
            (ns.into(), p.into(), tier.map(Into::into), node, ports)
        })
}

fn scenario() -> impl Strategy<Value = (Cluster, Vec<Policy>)> {
    (
        prop::collection::vec(pod(), 2..7),
        prop::collection::vec(policy(), 0..5),
        prop::sample::select(vec!["x", "y", "z"]),
    )
        .prop_map(|(pods, mut policies, labelled_ns)| {
            for (i, p) in policies.iter_mut().enumerate() {
                p.name = format!("p{i}");
            }
            let namespaces = ["x", "y", "z"]
                .iter()
                .map(|n| Namespace {
                    name: n.to_string(),
                    labels: if *n == labelled_ns {
                        labels(&[("ns", n), ("tier", "web")])
                    } else {
                        labels(&[("ns", n)])
                    },
                })
                .collect();
            let pods = pods
                .into_iter()
                .enumerate()
                .map(|(i, (ns, name, tier, node, mut ports))| {
                    let mut l = labels(&[("pod", &name)]);
                    if let Some(t) = tier {
                        l.insert("tier".into(), t);
                    }
                    // One name per protocol per pod (Kubernetes requires unique port names).
                    ports.sort_by_key(|p| (p.name.clone(), p.protocol));
                    ports.dedup_by_key(|p| p.name.clone());
                    let host = 4 + i * 3;
                    Pod {
                        namespace: ns,
                        name: format!("{name}{i}"),
                        labels: l,
                        ips: vec![
                            format!("10.244.{}.{host}", node + 1).parse().unwrap(),
                            format!("fd00:10:244:{}::{host}", node + 1).parse().unwrap(),
                        ],
                        ports,
                        node: Some(format!("n{}", node + 1)),
                    }
                })
                .collect();
            (Cluster { namespaces, pods }, policies)
        })
}

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
                            let model = evaluate(&cluster, &policies, (s, s_ip), (d, *d_ip), port, proto);
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
