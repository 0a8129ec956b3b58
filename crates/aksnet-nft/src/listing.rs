//! Decoding `nft -j list table <family> <name>` into the model. Tolerant by design: anything we
//! do not model becomes [`Expr::Unknown`] / [`SetType::Other`] instead of an error, because the
//! only question asked of a listing is "is this exactly what we want?" (netavark#942: a strict
//! decoder broke on rules it did not model).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::NftError;
use crate::model::{
    AddrField, AddrValue, BaseChain, Chain, ChainType, Expr, Family, Hook, Op, Policy, Rule, Set,
    SetType, Table,
};

/// A decoded table plus the kernel handle of the table object (a new handle means the table was
/// recreated, which is how tests prove that a no-op reconcile did not rewrite anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub table: Table,
    pub handle: Option<u64>,
}

fn decode_err(op: &str, detail: impl Into<String>) -> NftError {
    NftError::Decode {
        op: op.to_string(),
        detail: detail.into(),
    }
}

/// Decodes the listing of one table. Objects of other tables (there should be none, we list
/// only ours) are ignored.
pub fn decode_table(json: &str, family: Family, name: &str) -> Result<Option<Decoded>, NftError> {
    let op = format!("decode listing of table {family} {name}");
    let root: Value = serde_json::from_str(json).map_err(|e| decode_err(&op, e.to_string()))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| decode_err(&op, "no top-level \"nftables\" array"))?;
    let ours = |o: &Value, table_key: &str| {
        o.get("family").and_then(Value::as_str) == Some(family.as_str())
            && o.get(table_key).and_then(Value::as_str) == Some(name)
    };
    let mut table: Option<Decoded> = None;
    let mut sets = Vec::new();
    let mut chains: Vec<Chain> = Vec::new();
    let mut rules: Vec<(String, Rule)> = Vec::new();
    for item in items {
        if let Some(t) = item.get("table") {
            if ours(t, "name") {
                table = Some(Decoded {
                    table: Table {
                        family,
                        name: name.to_string(),
                        sets: Vec::new(),
                        chains: Vec::new(),
                    },
                    handle: t.get("handle").and_then(Value::as_u64),
                });
            }
        } else if let Some(s) = item.get("set") {
            if ours(s, "table") {
                sets.push(decode_set(s));
            }
        } else if let Some(c) = item.get("chain") {
            if ours(c, "table") {
                chains.push(decode_chain(c));
            }
        } else if let Some(r) = item.get("rule") {
            if ours(r, "table") {
                let chain = r
                    .get("chain")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                rules.push((chain, decode_rule(r)));
            }
        }
    }
    let Some(mut decoded) = table else {
        return Ok(None);
    };
    for (chain_name, rule) in rules {
        match chains.iter_mut().find(|c| c.name == chain_name) {
            Some(c) => c.rules.push(rule),
            None => {
                return Err(decode_err(
                    &op,
                    format!("rule refers to unknown chain {chain_name:?}"),
                ))
            }
        }
    }
    decoded.table.sets = sets;
    decoded.table.chains = chains;
    Ok(Some(decoded))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// nft prints single flags as a string and several as an array.
fn flags_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn decode_set(s: &Value) -> Set {
    let set_type = match str_of(s, "type") {
        "ipv4_addr" => SetType::Ipv4Addr,
        "ipv6_addr" => SetType::Ipv6Addr,
        other => SetType::Other(other.to_string()),
    };
    let flags = flags_of(s.get("flags"));
    let mut elements = Vec::new();
    let mut bad = false;
    if let Some(elems) = s.get("elem").and_then(Value::as_array) {
        for e in elems {
            match decode_prefix(e) {
                Some(n) => elements.push(n),
                None => bad = true,
            }
        }
    }
    Set {
        name: str_of(s, "name").to_string(),
        // An element we cannot decode (a range, a timeout…) makes the set type unknown so the
        // comparison fails and the table is rewritten.
        set_type: if bad {
            SetType::Other(format!("{} with undecodable elements", set_type.as_str()))
        } else {
            set_type
        },
        interval: flags.iter().any(|f| f == "interval") && flags.len() == 1,
        elements,
    }
}

/// `"10.1.2.3"` (a full-length prefix) or `{"prefix": {"addr": "10.0.0.0", "len": 8}}`.
fn decode_prefix(v: &Value) -> Option<IpNet> {
    match v {
        Value::String(s) => s.parse::<IpAddr>().ok().map(IpNet::from),
        Value::Object(_) => {
            let p = v.get("prefix")?;
            let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
            let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
            IpNet::new(addr, len).ok()
        }
        _ => None,
    }
}

fn decode_chain(c: &Value) -> Chain {
    let base = match (c.get("type"), c.get("hook")) {
        (Some(t), Some(h)) => {
            let chain_type = match t.as_str() {
                Some("filter") => Some(ChainType::Filter),
                Some("nat") => Some(ChainType::Nat),
                Some("route") => Some(ChainType::Route),
                _ => None,
            };
            let hook = match h.as_str() {
                Some("prerouting") => Some(Hook::Prerouting),
                Some("input") => Some(Hook::Input),
                Some("forward") => Some(Hook::Forward),
                Some("output") => Some(Hook::Output),
                Some("postrouting") => Some(Hook::Postrouting),
                _ => None,
            };
            let policy = match c.get("policy").and_then(Value::as_str) {
                Some("drop") => Some(Policy::Drop),
                Some("accept") | None => Some(Policy::Accept),
                _ => None,
            };
            let priority = c
                .get("prio")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok());
            match (chain_type, hook, policy, priority) {
                (Some(chain_type), Some(hook), Some(policy), Some(priority)) => Some(BaseChain {
                    chain_type,
                    hook,
                    priority,
                    policy,
                }),
                // A base chain we cannot describe: keep it a base chain that can never equal
                // one of ours.
                _ => Some(BaseChain {
                    chain_type: ChainType::Route,
                    hook: Hook::Input,
                    priority: i32::MIN,
                    policy: Policy::Drop,
                }),
            }
        }
        _ => None,
    };
    Chain {
        name: str_of(c, "name").to_string(),
        base,
        rules: Vec::new(),
    }
}

fn decode_rule(r: &Value) -> Rule {
    let exprs = r
        .get("expr")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(decode_expr).collect())
        .unwrap_or_default();
    Rule {
        exprs,
        comment: r.get("comment").and_then(Value::as_str).map(str::to_string),
    }
}

fn decode_expr(e: &Value) -> Expr {
    decode_known_expr(e).unwrap_or_else(|| Expr::Unknown(e.to_string()))
}

fn decode_known_expr(e: &Value) -> Option<Expr> {
    let obj = e.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (key, val) = obj.iter().next()?;
    match key.as_str() {
        "match" => decode_match(val),
        "counter" => Some(Expr::Counter),
        "accept" => Some(Expr::Accept),
        "drop" => Some(Expr::Drop),
        "return" => Some(Expr::Return),
        "jump" => Some(Expr::Jump(val.get("target")?.as_str()?.to_string())),
        "goto" => Some(Expr::Goto(val.get("target")?.as_str()?.to_string())),
        "masquerade" => {
            let flags = flags_of(val.get("flags"));
            match flags.as_slice() {
                [] => Some(Expr::Masquerade {
                    fully_random: false,
                }),
                [f] if f == "fully-random" => Some(Expr::Masquerade { fully_random: true }),
                _ => None,
            }
        }
        _ => None,
    }
}

fn decode_match(m: &Value) -> Option<Expr> {
    let op = match m.get("op")?.as_str()? {
        "==" | "in" => Op::Eq,
        "!=" => Op::Ne,
        _ => return None,
    };
    let left = m.get("left")?;
    let right = m.get("right")?;
    if let Some(fib) = left.get("fib") {
        let flags = flags_of(fib.get("flags"));
        if fib.get("result")?.as_str()? == "type"
            && flags == ["daddr"]
            && right.as_str()? == "local"
        {
            return Some(Expr::FibDaddrLocal { op });
        }
        return None;
    }
    let payload = left.get("payload")?;
    let field = match (
        payload.get("protocol")?.as_str()?,
        payload.get("field")?.as_str()?,
    ) {
        ("ip", "saddr") => AddrField::Ip4Saddr,
        ("ip", "daddr") => AddrField::Ip4Daddr,
        ("ip6", "saddr") => AddrField::Ip6Saddr,
        ("ip6", "daddr") => AddrField::Ip6Daddr,
        _ => return None,
    };
    let value = match right {
        Value::String(s) => match s.strip_prefix('@') {
            Some(set) => AddrValue::SetRef(set.to_string()),
            None => AddrValue::Prefix(decode_prefix(right)?),
        },
        Value::Object(o) if o.contains_key("set") => {
            let items = right.get("set")?.as_array()?;
            let v: Option<Vec<IpNet>> = items.iter().map(decode_prefix).collect();
            AddrValue::AnonSet(v?)
        }
        Value::Object(_) => AddrValue::Prefix(decode_prefix(right)?),
        _ => return None,
    };
    Some(Expr::Addr { field, op, value })
}
