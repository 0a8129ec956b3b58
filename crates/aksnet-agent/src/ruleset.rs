//! The desired ruleset: settings + merged ip-masq config → one nftables table.
//!
//! It is ip-masq-agent-v2's iptables programming (docs/azure.md#ip-masq-agent) in nftables:
//!
//! ```text
//! POSTROUTING: -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
//! IP-MASQ-AGENT: -d 169.254.0.0/16 -j RETURN   (unless masqLinkLocal)
//!                -d <each nonMasqueradeCIDR> -j RETURN
//!                -j MASQUERADE                 (must be last in chain)
//! ```
//!
//! becomes, in `table inet <name>`: a `postrouting` base chain (nat, srcnat) that sends pod
//! traffic to non-local destinations (`fib daddr type != local`) to `ip-masq-v4`/`ip-masq-v6`,
//! which return for link-local and the non-masquerade set and masquerade the rest. Unlike v2 we
//! match the pod source ranges too (issue 4: only pod traffic is masqueraded). The CIDR lists
//! are named interval sets, so a change is a set change, not a rule change.
//!
//! Room for NetworkPolicy (docs/prior-art.md#networkpolicy-dispatch): policy adds base chains (filter,
//! forward/output) and sets/verdict maps to this same table; nothing here depends on being
//! the only chain.

use aksnet_nft::model::priority;
use aksnet_nft::{
    AddrField, AddrValue, BaseChain, Chain, ChainType, Expr, Family, Hook, Op, Policy, Rule, Set,
    SetType, Table,
};
use ipnet::IpNet;

use crate::masq_config::MasqConfig;
use crate::settings::AgentSettings;

/// IPv4 link-local, masqueraded only with `masqLinkLocal` (v2).
pub const LINK_LOCAL_V4: &str = "169.254.0.0/16";
/// IPv6 link-local, masqueraded only with `masqLinkLocalIPv6` (v2).
pub const LINK_LOCAL_V6: &str = "fe80::/10";

pub const CHAIN_POSTROUTING: &str = "postrouting";
pub const CHAIN_MASQ_V4: &str = "ip-masq-v4";
pub const CHAIN_MASQ_V6: &str = "ip-masq-v6";
pub const SET_PODS_V4: &str = "pod-sources-v4";
pub const SET_PODS_V6: &str = "pod-sources-v6";
pub const SET_NON_MASQ_V4: &str = "non-masquerade-v4";
pub const SET_NON_MASQ_V6: &str = "non-masquerade-v6";

/// The family of the agent's table: one `inet` table serves IPv4 and IPv6.
pub const TABLE_FAMILY: Family = Family::Inet;

/// Sorted, merged prefixes of one family: interval sets refuse overlapping elements.
fn aggregate(nets: &[IpNet], v4: bool) -> Vec<IpNet> {
    let of_family: Vec<IpNet> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V4(_)) == v4)
        .map(IpNet::trunc)
        .collect();
    IpNet::aggregate(&of_family)
}

fn interval_set(name: &str, set_type: SetType, elements: Vec<IpNet>) -> Set {
    Set {
        name: name.to_string(),
        set_type,
        interval: true,
        elements,
    }
}

struct FamilyParts {
    saddr: AddrField,
    daddr: AddrField,
    pods_set: &'static str,
    non_masq_set: &'static str,
    chain: &'static str,
    link_local: &'static str,
    masq_link_local: bool,
}

fn masq_chain(parts: &FamilyParts, random_fully: bool) -> Chain {
    let mut rules = Vec::new();
    if !parts.masq_link_local {
        if let Ok(ll) = parts.link_local.parse::<IpNet>() {
            rules.push(
                Rule::new(vec![
                    Expr::Addr {
                        field: parts.daddr,
                        op: Op::Eq,
                        value: AddrValue::Prefix(ll),
                    },
                    Expr::Return,
                ])
                .with_comment("link-local is not masqueraded (masqLinkLocal false)"),
            );
        }
    }
    rules.push(
        Rule::new(vec![
            Expr::Addr {
                field: parts.daddr,
                op: Op::Eq,
                value: AddrValue::SetRef(parts.non_masq_set.to_string()),
            },
            Expr::Return,
        ])
        .with_comment("nonMasqueradeCIDRs keep the pod address"),
    );
    // Last in chain, as in v2; uncommented because nft 1.0.6 cannot parse a comment after
    // `masquerade fully-random`.
    rules.push(Rule::new(vec![
        Expr::Counter,
        Expr::Masquerade {
            fully_random: random_fully,
        },
    ]));
    Chain {
        name: parts.chain.to_string(),
        base: None,
        rules,
    }
}

fn dispatch_rule(parts: &FamilyParts) -> Rule {
    Rule::new(vec![
        Expr::Addr {
            field: parts.saddr,
            op: Op::Eq,
            value: AddrValue::SetRef(parts.pods_set.to_string()),
        },
        Expr::FibDaddrLocal { op: Op::Ne },
        Expr::Jump(parts.chain.to_string()),
    ])
    .with_comment("pod traffic to destinations not local to the node")
}

/// The table the agent wants in the kernel.
pub fn desired_table(settings: &AgentSettings, config: &MasqConfig) -> Table {
    let pods = settings.pod_sources();
    let v4 = FamilyParts {
        saddr: AddrField::Ip4Saddr,
        daddr: AddrField::Ip4Daddr,
        pods_set: SET_PODS_V4,
        non_masq_set: SET_NON_MASQ_V4,
        chain: CHAIN_MASQ_V4,
        link_local: LINK_LOCAL_V4,
        masq_link_local: config.masq_link_local,
    };
    let v6 = FamilyParts {
        saddr: AddrField::Ip6Saddr,
        daddr: AddrField::Ip6Daddr,
        pods_set: SET_PODS_V6,
        non_masq_set: SET_NON_MASQ_V6,
        chain: CHAIN_MASQ_V6,
        link_local: LINK_LOCAL_V6,
        masq_link_local: config.masq_link_local_ipv6,
    };
    let mut sets = vec![
        interval_set(SET_PODS_V4, SetType::Ipv4Addr, aggregate(&pods, true)),
        interval_set(
            SET_NON_MASQ_V4,
            SetType::Ipv4Addr,
            aggregate(&config.non_masquerade_cidrs, true),
        ),
    ];
    let mut dispatch = vec![dispatch_rule(&v4)];
    let mut masq = vec![masq_chain(&v4, settings.random_fully)];
    if settings.enable_ipv6 {
        sets.push(interval_set(
            SET_PODS_V6,
            SetType::Ipv6Addr,
            aggregate(&pods, false),
        ));
        sets.push(interval_set(
            SET_NON_MASQ_V6,
            SetType::Ipv6Addr,
            aggregate(&config.non_masquerade_cidrs, false),
        ));
        dispatch.push(dispatch_rule(&v6));
        masq.push(masq_chain(&v6, settings.random_fully));
    }
    let mut chains = vec![Chain {
        name: CHAIN_POSTROUTING.to_string(),
        // ip-masq-agent appends to nat POSTROUTING; srcnat is that hook's NAT priority.
        base: Some(BaseChain {
            chain_type: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: priority::SRCNAT,
            policy: Policy::Accept,
        }),
        rules: dispatch,
    }];
    chains.extend(masq);
    Table {
        family: TABLE_FAMILY,
        name: settings.table_name.clone(),
        sets,
        chains,
    }
}
