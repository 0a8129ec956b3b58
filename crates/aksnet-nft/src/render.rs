//! nft text rendering. Pure; the output is laid out like `nft list table` so golden files read
//! like what an operator sees on a node.

use std::fmt::Write as _;

use ipnet::IpNet;

use crate::error::NftError;
use crate::model::{
    priority, AddrValue, BaseChain, Chain, Expr, Family, Hook, Op, Rule, Set, Table,
};

/// The table's definition: `table <family> <name> { … }`. Call [`Table::validate`] first (the
/// script functions below do).
pub fn render_table(table: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table {} {} {{", table.family, table.name);
    let mut first = true;
    for set in &table.sets {
        if !first {
            out.push('\n');
        }
        first = false;
        render_set(&mut out, set);
    }
    for chain in &table.chains {
        if !first {
            out.push('\n');
        }
        first = false;
        render_chain(&mut out, chain);
    }
    out.push_str("}\n");
    out
}

/// The whole-table replacement as ONE transaction (`nft -f` applies a file atomically):
/// `table …` creates the table if it is missing so that `delete table …` cannot fail, then the
/// new definition is added. Nothing outside our table is named, so nothing else is touched.
/// (nft 1.0.6 has no `destroy`; this is the portable idiom, docs/prior-art.md#nftables.)
pub fn replace_script(table: &Table) -> Result<String, NftError> {
    table.validate()?;
    let mut out = String::new();
    let _ = writeln!(out, "table {} {}", table.family, table.name);
    let _ = writeln!(out, "delete table {} {}", table.family, table.name);
    out.push_str(&render_table(table));
    Ok(out)
}

/// Deletes our table whether or not it exists, in one transaction.
pub fn delete_script(family: Family, name: &str) -> Result<String, NftError> {
    crate::model::validate_name("table name", name)?;
    Ok(format!(
        "table {family} {name}\ndelete table {family} {name}\n"
    ))
}

fn render_set(out: &mut String, set: &Set) {
    let _ = writeln!(out, "\tset {} {{", set.name);
    let _ = writeln!(out, "\t\ttype {}", set.set_type.as_str());
    if set.interval {
        out.push_str("\t\tflags interval\n");
    }
    if !set.elements.is_empty() {
        out.push_str("\t\telements = {\n");
        let n = set.elements.len();
        for (i, e) in set.elements.iter().enumerate() {
            let sep = if i + 1 < n { "," } else { "" };
            let _ = writeln!(out, "\t\t\t{}{sep}", element(e));
        }
        out.push_str("\t\t}\n");
    }
    out.push_str("\t}\n");
}

/// nft prints a full-length prefix as a bare address; we do the same.
fn element(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

fn render_chain(out: &mut String, chain: &Chain) {
    let _ = writeln!(out, "\tchain {} {{", chain.name);
    if let Some(base) = &chain.base {
        let _ = writeln!(out, "\t\t{}", base_chain_line(base));
    }
    for rule in &chain.rules {
        let _ = writeln!(out, "\t\t{}", render_rule(rule));
    }
    out.push_str("\t}\n");
}

/// `type … hook … priority …; policy …;`, the line that makes a chain a base chain.
pub(crate) fn base_chain_line(base: &BaseChain) -> String {
    format!(
        "type {} hook {} priority {}; policy {};",
        base.chain_type.as_str(),
        base.hook.as_str(),
        priority_name(base),
        base.policy.as_str()
    )
}

/// Standard priorities by name where nft accepts the name for this hook (nft(8) table).
fn priority_name(base: &BaseChain) -> String {
    match (base.priority, base.hook) {
        (priority::SRCNAT, Hook::Postrouting | Hook::Input) => "srcnat".into(),
        (priority::DSTNAT, Hook::Prerouting | Hook::Output) => "dstnat".into(),
        (priority::FILTER, _) => "filter".into(),
        (priority::RAW, _) => "raw".into(),
        (priority::MANGLE, _) => "mangle".into(),
        (priority::SECURITY, _) => "security".into(),
        (p, _) => p.to_string(),
    }
}

/// One rule on one line, e.g. `ip saddr @pods-v4 fib daddr type != local jump ip-masq-v4`.
pub fn render_rule(rule: &Rule) -> String {
    let mut parts: Vec<String> = rule.exprs.iter().map(render_expr).collect();
    if let Some(c) = &rule.comment {
        parts.push(format!("comment \"{c}\""));
    }
    parts.join(" ")
}

fn op_prefix(op: Op) -> &'static str {
    match op {
        Op::Eq => "",
        Op::Ne => "!= ",
    }
}

fn render_expr(expr: &Expr) -> String {
    match expr {
        Expr::Addr { field, op, value } => {
            let v = match value {
                AddrValue::Prefix(n) => element(n),
                AddrValue::SetRef(s) => format!("@{s}"),
                AddrValue::AnonSet(v) => {
                    let items: Vec<String> = v.iter().map(element).collect();
                    format!("{{ {} }}", items.join(", "))
                }
            };
            format!(
                "{} {} {}{v}",
                field.protocol(),
                field.field(),
                op_prefix(*op)
            )
        }
        Expr::FibDaddrLocal { op } => format!("fib daddr type {}local", op_prefix(*op)),
        Expr::Counter => "counter".into(),
        Expr::Accept => "accept".into(),
        Expr::Drop => "drop".into(),
        Expr::Return => "return".into(),
        Expr::Jump(t) => format!("jump {t}"),
        Expr::Goto(t) => format!("goto {t}"),
        Expr::Masquerade { fully_random } => {
            // nft 1.0.6 cannot parse a `comment` after `masquerade fully-random` (syntax
            // error, checked on this machine), so callers keep such rules uncommented.
            if *fully_random {
                "masquerade fully-random".into()
            } else {
                "masquerade".into()
            }
        }
        // validate() refuses these; render something that nft rejects rather than panic.
        Expr::Unknown(s) => format!("# unknown {s}"),
    }
}
