//! Shared by the nft tests: a sample table covering every expression we model.

use aksnet_nft::model::priority;
use aksnet_nft::{
    AddrField, AddrValue, BaseChain, Chain, ChainType, Expr, Family, Hook, Op, Policy, Rule, Set,
    SetType, Table,
};

pub fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

pub fn sample_table(name: &str) -> Table {
    Table {
        family: Family::Inet,
        name: name.to_string(),
        sets: vec![
            Set {
                name: "pods-v4".into(),
                set_type: SetType::Ipv4Addr,
                interval: true,
                elements: vec![net("10.244.1.0/24"), net("10.1.2.3/32"), net("10.9.0.0/24")],
            },
            Set {
                name: "empty-v4".into(),
                set_type: SetType::Ipv4Addr,
                interval: true,
                elements: vec![],
            },
            Set {
                name: "pods-v6".into(),
                set_type: SetType::Ipv6Addr,
                interval: true,
                elements: vec![net("fd00::/64")],
            },
        ],
        chains: vec![
            Chain {
                name: "postrouting".into(),
                base: Some(BaseChain {
                    chain_type: ChainType::Nat,
                    hook: Hook::Postrouting,
                    priority: priority::SRCNAT,
                    policy: Policy::Accept,
                }),
                rules: vec![
                    Rule::new(vec![
                        Expr::Addr {
                            field: AddrField::Ip4Saddr,
                            op: Op::Eq,
                            value: AddrValue::SetRef("pods-v4".into()),
                        },
                        Expr::FibDaddrLocal { op: Op::Ne },
                        Expr::Jump("masq-v4".into()),
                    ])
                    .with_comment("pod traffic leaving the node"),
                    Rule::new(vec![
                        Expr::Addr {
                            field: AddrField::Ip6Saddr,
                            op: Op::Eq,
                            value: AddrValue::SetRef("pods-v6".into()),
                        },
                        Expr::FibDaddrLocal { op: Op::Ne },
                        Expr::Goto("masq-v6".into()),
                    ]),
                ],
            },
            Chain {
                name: "masq-v4".into(),
                base: None,
                rules: vec![
                    Rule::new(vec![
                        Expr::Addr {
                            field: AddrField::Ip4Daddr,
                            op: Op::Eq,
                            value: AddrValue::Prefix(net("169.254.0.0/16")),
                        },
                        Expr::Return,
                    ]),
                    Rule::new(vec![
                        Expr::Addr {
                            field: AddrField::Ip4Daddr,
                            op: Op::Ne,
                            value: AddrValue::AnonSet(vec![net("192.0.2.0/24"), net("10.0.0.0/8")]),
                        },
                        Expr::Counter,
                        Expr::Accept,
                    ]),
                    Rule::new(vec![
                        Expr::Addr {
                            field: AddrField::Ip4Daddr,
                            op: Op::Eq,
                            value: AddrValue::SetRef("empty-v4".into()),
                        },
                        Expr::Drop,
                    ]),
                    Rule::new(vec![Expr::Counter, Expr::Masquerade { fully_random: true }]),
                ],
            },
            Chain {
                name: "masq-v6".into(),
                base: None,
                rules: vec![
                    Rule::new(vec![
                        Expr::Addr {
                            field: AddrField::Ip6Daddr,
                            op: Op::Eq,
                            value: AddrValue::Prefix(net("fe80::/10")),
                        },
                        Expr::Return,
                    ]),
                    Rule::new(vec![Expr::Masquerade {
                        fully_random: false,
                    }]),
                ],
            },
        ],
    }
}
