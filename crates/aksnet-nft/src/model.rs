//! The typed nftables model. Only what aksnet emits is modelled; new statements are added here
//! (and to the renderer and the listing decoder) when a feature needs them, e.g. verdict maps for
//! NetworkPolicy dispatch (docs/prior-art.md#networkpolicy-dispatch).

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::error::NftError;

/// Longest table/chain/set name we accept. The kernel allows 256 (NFT_NAME_MAXLEN); we stay far
/// below so names stay readable in `nft list` and in golden files.
pub const MAX_NAME_LEN: usize = 64;

/// Longest rule comment. The kernel limit is NFT_USERDATA_MAXLEN (256) for all user data;
/// nft itself caps comments at 128 bytes (NFTNL_UDATA_COMMENT_MAXLEN).
pub const MAX_COMMENT_LEN: usize = 128;

/// Standard chain priorities (nft(8) "CHAIN PRIORITIES" table; netfilter hooks).
pub mod priority {
    pub const RAW: i32 = -300;
    pub const MANGLE: i32 = -150;
    pub const DSTNAT: i32 = -100;
    pub const FILTER: i32 = 0;
    pub const SECURITY: i32 = 50;
    pub const SRCNAT: i32 = 100;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "ip" => Some(Family::Ip),
            "ip6" => Some(Family::Ip6),
            "inet" => Some(Family::Inet),
            _ => None,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One table, the unit we own and replace atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub family: Family,
    pub name: String,
    pub sets: Vec<Set>,
    pub chains: Vec<Chain>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetType {
    Ipv4Addr,
    Ipv6Addr,
    /// A type we do not model, kept verbatim from a listing (never rendered by us).
    Other(String),
}

impl SetType {
    pub fn as_str(&self) -> &str {
        match self {
            SetType::Ipv4Addr => "ipv4_addr",
            SetType::Ipv6Addr => "ipv6_addr",
            SetType::Other(s) => s,
        }
    }
}

/// A named set of addresses/prefixes (`flags interval` when it holds prefixes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    pub set_type: SetType,
    pub interval: bool,
    pub elements: Vec<IpNet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

impl ChainType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Accept => "accept",
            Policy::Drop => "drop",
        }
    }
}

/// What makes a chain a base chain: attached to a netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub chain_type: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// `None` for a regular chain reached by `jump`/`goto`.
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub exprs: Vec<Expr>,
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(exprs: Vec<Expr>) -> Rule {
        Rule {
            exprs,
            comment: None,
        }
    }

    pub fn with_comment(mut self, comment: &str) -> Rule {
        self.comment = Some(comment.to_string());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
}

impl Op {
    /// The operator as nft prints it in a relational expression: `==` is implicit.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// `ip saddr`, `ip daddr`, `ip6 saddr`, `ip6 daddr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrField {
    Ip4Saddr,
    Ip4Daddr,
    Ip6Saddr,
    Ip6Daddr,
}

impl AddrField {
    pub fn protocol(self) -> &'static str {
        match self {
            AddrField::Ip4Saddr | AddrField::Ip4Daddr => "ip",
            AddrField::Ip6Saddr | AddrField::Ip6Daddr => "ip6",
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            AddrField::Ip4Saddr | AddrField::Ip6Saddr => "saddr",
            AddrField::Ip4Daddr | AddrField::Ip6Daddr => "daddr",
        }
    }

    pub fn is_v4(self) -> bool {
        matches!(self, AddrField::Ip4Saddr | AddrField::Ip4Daddr)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrValue {
    Prefix(IpNet),
    /// `@name`: a named set of this table.
    SetRef(String),
    /// `{ a, b }`: an anonymous set.
    AnonSet(Vec<IpNet>),
}

/// One expression or statement of a rule, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `ip saddr 10.0.0.0/8`, `ip daddr != @set`, …
    Addr {
        field: AddrField,
        op: Op,
        value: AddrValue,
    },
    /// `fib daddr type [!=] local`: the nft form of iptables `-m addrtype --dst-type LOCAL`.
    FibDaddrLocal {
        op: Op,
    },
    /// `counter` (packet/byte values are state, not configuration, and are never compared).
    Counter,
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
    /// `masquerade [fully-random]`.
    Masquerade {
        fully_random: bool,
    },
    /// Anything a listing contained that we do not model (kept as JSON text).
    Unknown(String),
}

fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    // Bytes, not chars (docs/prior-art.md#interface-names: netavark validated by chars()).
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Checks a table/chain/set name: ASCII letter first, then letters, digits, `-`, `_`.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), NftError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NftError::Invalid {
            what,
            value: name.to_string(),
            reason: "must start with an ASCII letter, contain only letters, digits, '-' and '_', and be at most 64 bytes",
        })
    }
}

fn validate_comment(comment: &str) -> Result<(), NftError> {
    let ok = comment.len() <= MAX_COMMENT_LEN
        && comment
            .bytes()
            .all(|c| (b' '..=b'~').contains(&c) && c != b'"' && c != b'\\');
    if ok {
        Ok(())
    } else {
        Err(NftError::Invalid {
            what: "rule comment",
            value: comment.to_string(),
            reason: "must be printable ASCII without '\"' or '\\', at most 128 bytes",
        })
    }
}

impl Table {
    /// Everything the renderer relies on: valid names and comments, set element families that
    /// match the set type, jump targets and set references that exist, no unknown expressions.
    pub fn validate(&self) -> Result<(), NftError> {
        validate_name("table name", &self.name)?;
        let mut set_names = BTreeSet::new();
        for set in &self.sets {
            validate_name("set name", &set.name)?;
            if !set_names.insert(set.name.as_str()) {
                return Err(NftError::Invalid {
                    what: "set name",
                    value: set.name.clone(),
                    reason: "defined twice",
                });
            }
            for e in &set.elements {
                let fits = match set.set_type {
                    SetType::Ipv4Addr => matches!(e, IpNet::V4(_)),
                    SetType::Ipv6Addr => matches!(e, IpNet::V6(_)),
                    SetType::Other(_) => false,
                };
                if !fits {
                    return Err(NftError::Invalid {
                        what: "set element",
                        value: format!("{}: {e}", set.name),
                        reason: "does not match the set's type",
                    });
                }
                if e.trunc() != *e {
                    return Err(NftError::Invalid {
                        what: "set element",
                        value: format!("{}: {e}", set.name),
                        reason: "has host bits set",
                    });
                }
                if !set.interval && e.prefix_len() != e.max_prefix_len() {
                    return Err(NftError::Invalid {
                        what: "set element",
                        value: format!("{}: {e}", set.name),
                        reason: "a prefix needs a set with flags interval",
                    });
                }
            }
        }
        let mut chain_names = BTreeSet::new();
        for chain in &self.chains {
            validate_name("chain name", &chain.name)?;
            if !chain_names.insert(chain.name.as_str()) {
                return Err(NftError::Invalid {
                    what: "chain name",
                    value: chain.name.clone(),
                    reason: "defined twice",
                });
            }
        }
        for chain in &self.chains {
            for rule in &chain.rules {
                if let Some(c) = &rule.comment {
                    validate_comment(c)?;
                    // nft 1.0.6 fails to parse `masquerade fully-random comment "…"` (checked on
                    // this machine), so a masquerade rule never carries a comment.
                    if rule
                        .exprs
                        .iter()
                        .any(|e| matches!(e, Expr::Masquerade { .. }))
                    {
                        return Err(NftError::Invalid {
                            what: "rule comment",
                            value: c.clone(),
                            reason: "not allowed on a masquerade rule (nft 1.0.6 cannot parse it)",
                        });
                    }
                }
                for expr in &rule.exprs {
                    self.validate_expr(expr, &chain_names)?;
                }
            }
        }
        Ok(())
    }

    fn validate_expr(&self, expr: &Expr, chains: &BTreeSet<&str>) -> Result<(), NftError> {
        match expr {
            Expr::Jump(t) | Expr::Goto(t) if !chains.contains(t.as_str()) => {
                Err(NftError::Invalid {
                    what: "jump target",
                    value: t.clone(),
                    reason: "no such chain in the table",
                })
            }
            Expr::Addr { field, value, .. } => {
                let family_ok = |n: &IpNet| matches!(n, IpNet::V4(_)) == field.is_v4();
                match value {
                    AddrValue::Prefix(n) if !family_ok(n) || n.trunc() != *n => {
                        Err(NftError::Invalid {
                            what: "address match",
                            value: n.to_string(),
                            reason: "wrong address family for the field, or host bits set",
                        })
                    }
                    AddrValue::AnonSet(v) if v.is_empty() || !v.iter().all(family_ok) => {
                        Err(NftError::Invalid {
                            what: "anonymous set",
                            value: format!("{v:?}"),
                            reason: "empty, or wrong address family for the field",
                        })
                    }
                    AddrValue::SetRef(name) => {
                        let want = if field.is_v4() {
                            SetType::Ipv4Addr
                        } else {
                            SetType::Ipv6Addr
                        };
                        match self.sets.iter().find(|s| &s.name == name) {
                            Some(s) if s.set_type == want => Ok(()),
                            _ => Err(NftError::Invalid {
                                what: "set reference",
                                value: name.clone(),
                                reason: "no set of the field's address type with this name",
                            }),
                        }
                    }
                    _ => Ok(()),
                }
            }
            Expr::Unknown(s) => Err(NftError::Invalid {
                what: "expression",
                value: s.clone(),
                reason: "unknown expressions come from listings and cannot be rendered",
            }),
            _ => Ok(()),
        }
    }

    /// The form used to compare a desired table with a listed one: set elements and anonymous
    /// set members sorted and deduplicated (nft prints them in its own order).
    pub fn canonical(&self) -> Table {
        let mut t = self.clone();
        for s in &mut t.sets {
            s.elements.sort();
            s.elements.dedup();
        }
        for c in &mut t.chains {
            for r in &mut c.rules {
                for e in &mut r.exprs {
                    if let Expr::Addr {
                        value: AddrValue::AnonSet(v),
                        ..
                    } = e
                    {
                        v.sort();
                        v.dedup();
                    }
                }
            }
        }
        t
    }

    /// True when both tables program the same ruleset.
    pub fn same_ruleset(&self, other: &Table) -> bool {
        self.canonical() == other.canonical()
    }
}
