//! In-place changes to objects of a table that several owners share, as ONE transaction.
//!
//! [`crate::model`] owns a whole table and replaces it. The CNI plugin's `ipMasq` table
//! (`inet aksnet-cni`) is shared by every network on the node, and each ADD or DEL only adds
//! or removes set elements, so it needs the other idiom of `nft -f`: block declarations,
//! which create an object when it is missing and leave it alone when it exists, followed by
//! `flush`/`add`/`delete` commands (nft(8), "RULESET" and "SETS"). Every name is validated
//! and every rule goes through [`crate::render::render_rule`], so no caller formats nft
//! text by hand and nothing can be injected.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::error::NftError;
use crate::model::{validate_name, AddrValue, BaseChain, Expr, Family, Rule, SetType};
use crate::render::render_rule;

/// A script of changes to one table, built step by step and applied with
/// [`crate::NftCommand::run_script`] (one `nft -f -`: all of it or nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    family: Family,
    table: String,
    script: String,
}

impl Changes {
    /// Changes to `family name`; the script starts by declaring the table (a no-op when it
    /// exists).
    pub fn new(family: Family, table: &str) -> Result<Self, NftError> {
        validate_name("table name", table)?;
        Ok(Changes {
            family,
            table: table.to_string(),
            script: format!("table {family} {table}\n"),
        })
    }

    fn head(&self) -> String {
        format!("{} {}", self.family, self.table)
    }

    /// Declares an (element-less) address set: created when missing, left as it is otherwise.
    pub fn declare_set(&mut self, name: &str, set_type: SetType) -> Result<&mut Self, NftError> {
        validate_name("set name", name)?;
        if !matches!(set_type, SetType::Ipv4Addr | SetType::Ipv6Addr) {
            return Err(NftError::Invalid {
                what: "set type",
                value: set_type.as_str().to_string(),
                reason: "only address sets can be declared",
            });
        }
        let head = self.head();
        let ty = set_type.as_str();
        let _ = writeln!(
            self.script,
            "table {head} {{\n  set {name} {{ type {ty}; }}\n}}"
        );
        Ok(self)
    }

    /// Declares a base chain: created when missing, left as it is otherwise.
    pub fn declare_base_chain(
        &mut self,
        name: &str,
        base: &BaseChain,
    ) -> Result<&mut Self, NftError> {
        validate_name("chain name", name)?;
        let head = self.head();
        let _ = writeln!(
            self.script,
            "table {head} {{\n  chain {name} {{ {} }}\n}}",
            crate::render::base_chain_line(base)
        );
        Ok(self)
    }

    /// Removes every rule of a chain (declared before, in this script or earlier).
    pub fn flush_chain(&mut self, name: &str) -> Result<&mut Self, NftError> {
        validate_name("chain name", name)?;
        let head = self.head();
        let _ = writeln!(self.script, "flush chain {head} {name}");
        Ok(self)
    }

    /// Appends a rule. Its set references and jump targets must name valid objects; that
    /// they exist is checked by nft when the script runs (a missing one fails it all).
    pub fn add_rule(&mut self, chain: &str, rule: &Rule) -> Result<&mut Self, NftError> {
        validate_name("chain name", chain)?;
        check_rule(rule)?;
        let head = self.head();
        let _ = writeln!(self.script, "add rule {head} {chain} {}", render_rule(rule));
        Ok(self)
    }

    /// Adds addresses to a set (adding one that is there already is a no-op).
    pub fn add_elements(&mut self, set: &str, ips: &[IpAddr]) -> Result<&mut Self, NftError> {
        self.elements("add", set, ips)
    }

    /// Deletes addresses from a set; each must be in it when the script runs, so a caller
    /// that tolerates missing ones adds them first in the same script.
    pub fn delete_elements(&mut self, set: &str, ips: &[IpAddr]) -> Result<&mut Self, NftError> {
        self.elements("delete", set, ips)
    }

    /// Empties a set.
    pub fn flush_set(&mut self, set: &str) -> Result<&mut Self, NftError> {
        validate_name("set name", set)?;
        let head = self.head();
        let _ = writeln!(self.script, "flush set {head} {set}");
        Ok(self)
    }

    fn elements(&mut self, op: &str, set: &str, ips: &[IpAddr]) -> Result<&mut Self, NftError> {
        validate_name("set name", set)?;
        let head = self.head();
        for ip in ips {
            let _ = writeln!(self.script, "{op} element {head} {set} {{ {ip} }}");
        }
        Ok(self)
    }

    /// The script, for `nft -f -`.
    pub fn script(&self) -> &str {
        &self.script
    }
}

/// What [`crate::model::Table::validate`] checks of a rule that does not need the table.
fn check_rule(rule: &Rule) -> Result<(), NftError> {
    if rule.comment.is_some() {
        return Err(NftError::Invalid {
            what: "rule comment",
            value: rule.comment.clone().unwrap_or_default(),
            reason: "rules of a shared table carry no comment",
        });
    }
    for e in &rule.exprs {
        match e {
            Expr::Jump(t) | Expr::Goto(t) => validate_name("jump target", t)?,
            Expr::Addr {
                value: AddrValue::SetRef(name),
                ..
            } => validate_name("set reference", name)?,
            Expr::Addr {
                field,
                value: AddrValue::AnonSet(v),
                ..
            } if v.is_empty() || v.iter().any(|n| n.addr().is_ipv4() != field.is_v4()) => {
                return Err(NftError::Invalid {
                    what: "anonymous set",
                    value: format!("{v:?}"),
                    reason: "empty, or wrong address family for the field",
                })
            }
            Expr::Addr {
                field,
                value: AddrValue::Prefix(n),
                ..
            } if n.addr().is_ipv4() != field.is_v4() => {
                return Err(NftError::Invalid {
                    what: "address match",
                    value: n.to_string(),
                    reason: "wrong address family for the field",
                })
            }
            Expr::Unknown(s) => {
                return Err(NftError::Invalid {
                    what: "expression",
                    value: s.clone(),
                    reason: "unknown expressions come from listings and cannot be rendered",
                })
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{priority, AddrField, ChainType, Hook, Op, Policy};

    fn masq_rule() -> Rule {
        Rule::new(vec![
            Expr::Addr {
                field: AddrField::Ip4Saddr,
                op: Op::Eq,
                value: AddrValue::SetRef("pods4-x".into()),
            },
            Expr::Addr {
                field: AddrField::Ip4Daddr,
                op: Op::Ne,
                value: AddrValue::AnonSet(vec![
                    "10.244.1.0/24".parse().unwrap(),
                    "224.0.0.0/4".parse().unwrap(),
                ]),
            },
            Expr::Masquerade {
                fully_random: false,
            },
        ])
    }

    #[test]
    fn golden_script() {
        let mut c = Changes::new(Family::Inet, "aksnet-cni").unwrap();
        c.declare_set("pods4-x", SetType::Ipv4Addr)
            .unwrap()
            .declare_base_chain(
                "post-x",
                &BaseChain {
                    chain_type: ChainType::Nat,
                    hook: Hook::Postrouting,
                    priority: priority::SRCNAT,
                    policy: Policy::Accept,
                },
            )
            .unwrap()
            .flush_chain("post-x")
            .unwrap()
            .add_rule("post-x", &masq_rule())
            .unwrap()
            .add_elements("pods4-x", &["10.244.1.5".parse().unwrap()])
            .unwrap()
            .delete_elements("pods4-x", &["10.244.1.5".parse().unwrap()])
            .unwrap()
            .flush_set("pods4-x")
            .unwrap();
        assert_eq!(
            c.script(),
            "table inet aksnet-cni\n\
             table inet aksnet-cni {\n  set pods4-x { type ipv4_addr; }\n}\n\
             table inet aksnet-cni {\n  chain post-x { type nat hook postrouting priority srcnat; policy accept; }\n}\n\
             flush chain inet aksnet-cni post-x\n\
             add rule inet aksnet-cni post-x ip saddr @pods4-x ip daddr != { 10.244.1.0/24, 224.0.0.0/4 } masquerade\n\
             add element inet aksnet-cni pods4-x { 10.244.1.5 }\n\
             delete element inet aksnet-cni pods4-x { 10.244.1.5 }\n\
             flush set inet aksnet-cni pods4-x\n"
        );
    }

    #[test]
    fn names_and_rules_are_checked() {
        assert!(Changes::new(Family::Inet, "bad name").is_err());
        let mut c = Changes::new(Family::Inet, "t").unwrap();
        assert!(c.declare_set("x;flush ruleset", SetType::Ipv4Addr).is_err());
        assert!(c.declare_set("s", SetType::Other("mark".into())).is_err());
        assert!(c.add_elements("s }", &[]).is_err());
        let wrong_family = Rule::new(vec![Expr::Addr {
            field: AddrField::Ip6Daddr,
            op: Op::Ne,
            value: AddrValue::AnonSet(vec!["10.0.0.0/8".parse().unwrap()]),
        }]);
        assert!(c.add_rule("c", &wrong_family).is_err());
        assert!(c.add_rule("c", &masq_rule().with_comment("x")).is_err());
        assert_eq!(c.script(), "table inet t\n", "a refused step adds nothing");
    }
}
