//! Random clusters and policies shared by the property tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use aksnet_policy::model::{
    Cluster, NamedPort, Namespace, NamespaceScope, Peer, Pod, Policy, PortMatch, PortSpec,
    Protocol, Requirement, Rule, Selector,
};
use ipnet::IpNet;
use proptest::prelude::*;

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn selector() -> impl Strategy<Value = Selector> {
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

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn peer() -> impl Strategy<Value = Peer> {
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

pub fn port_spec() -> impl Strategy<Value = PortSpec> {
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

pub fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::option::of(prop::collection::vec(peer(), 1..3)),
        prop::option::of(prop::collection::vec(port_spec(), 1..3)),
    )
        .prop_map(|(peers, ports)| Rule { peers, ports })
}

pub fn policy() -> impl Strategy<Value = Policy> {
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

pub fn pod() -> impl Strategy<Value = (String, String, Option<String>, usize, Vec<NamedPort>)> {
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

pub fn scenario() -> impl Strategy<Value = (Cluster, Vec<Policy>)> {
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
