//! Filter tables with named sets, concatenated sets and verdict maps, for NetworkPolicy
//! (docs/policy.md "Datapath"): the typed model, the renderer, the incremental update script
//! (element-only when only memberships change) and a small interpreter of the model that the
//! policy compiler's property tests run packets through.
//!
//! Kept apart from [`crate::model`] so the SNAT table's API stays as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::NftError;
use crate::model::{validate_name, AddrField, AddrValue, BaseChain, Family, Op, Policy};

/// The key of a set or verdict map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyType {
    Ipv4,
    Ipv6,
    /// `ipv4_addr . inet_proto . inet_service`: a named port resolved per pod.
    Ipv4ProtoPort,
    Ipv6ProtoPort,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ipv4 => "ipv4_addr",
            KeyType::Ipv6 => "ipv6_addr",
            KeyType::Ipv4ProtoPort => "ipv4_addr . inet_proto . inet_service",
            KeyType::Ipv6ProtoPort => "ipv6_addr . inet_proto . inet_service",
        }
    }

    fn is_v4(self) -> bool {
        matches!(self, KeyType::Ipv4 | KeyType::Ipv4ProtoPort)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elem {
    Net(IpNet),
    AddrProtoPort(IpAddr, u8, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSet {
    pub name: String,
    pub key: KeyType,
    pub interval: bool,
    pub elements: BTreeSet<Elem>,
}

/// `map NAME { type ipv4_addr : verdict; elements = { 10.0.0.1 : jump CHAIN } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictMap {
    pub name: String,
    pub key: KeyType,
    pub elements: BTreeMap<IpAddr, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
}

impl CtState {
    fn as_str(self) -> &'static str {
        match self {
            CtState::New => "new",
            CtState::Established => "established",
            CtState::Related => "related",
            CtState::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    CtState(Vec<CtState>),
    Addr {
        field: AddrField,
        op: Op,
        value: AddrValue,
    },
    /// `meta l4proto N`.
    L4Proto(u8),
    /// `th dport A[-B]` (TCP, UDP and SCTP keep the destination port at the same offset).
    Dport(u16, u16),
    /// `ip daddr . meta l4proto . th dport @SET`.
    AddrProtoPort {
        field: AddrField,
        set: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    /// `ip saddr vmap @MAP`: jump to the chain the map names for the address, else go on.
    Vmap {
        field: AddrField,
        map: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    pub matches: Vec<Match>,
    pub verdict: Verdict,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterChain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<FilterRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTable {
    pub family: Family,
    pub name: String,
    pub sets: Vec<NamedSet>,
    pub maps: Vec<VerdictMap>,
    pub chains: Vec<FilterChain>,
}

fn invalid(what: &'static str, value: impl Into<String>, reason: &'static str) -> NftError {
    NftError::Invalid {
        what,
        value: value.into(),
        reason,
    }
}

fn elem_fits(key: KeyType, interval: bool, e: &Elem) -> bool {
    match (key, e) {
        (KeyType::Ipv4 | KeyType::Ipv6, Elem::Net(n)) => {
            matches!(n, IpNet::V4(_)) == key.is_v4()
                && n.trunc() == *n
                && (interval || n.prefix_len() == n.max_prefix_len())
        }
        (KeyType::Ipv4ProtoPort | KeyType::Ipv6ProtoPort, Elem::AddrProtoPort(a, _, _)) => {
            a.is_ipv4() == key.is_v4()
        }
        _ => false,
    }
}

impl FilterTable {
    /// Names, element types and every reference (sets, maps, jump targets) checked.
    pub fn validate(&self) -> Result<(), NftError> {
        validate_name("table name", &self.name)?;
        let mut names = BTreeSet::new();
        for s in &self.sets {
            validate_name("set name", &s.name)?;
            if !names.insert(s.name.as_str()) {
                return Err(invalid("set name", &s.name, "defined twice"));
            }
            if let Some(e) = s.elements.iter().find(|e| !elem_fits(s.key, s.interval, e)) {
                return Err(invalid(
                    "set element",
                    format!("{}: {e:?}", s.name),
                    "does not match the set's type",
                ));
            }
        }
        let chains: BTreeSet<&str> = self.chains.iter().map(|c| c.name.as_str()).collect();
        if chains.len() != self.chains.len() {
            return Err(invalid(
                "chain name",
                self.name.clone(),
                "a chain is defined twice",
            ));
        }
        for m in &self.maps {
            validate_name("map name", &m.name)?;
            if !names.insert(m.name.as_str()) {
                return Err(invalid("map name", &m.name, "defined twice"));
            }
            for (k, target) in &m.elements {
                if k.is_ipv4() != m.key.is_v4() || !chains.contains(target.as_str()) {
                    return Err(invalid(
                        "map element",
                        format!("{}: {k} : jump {target}", m.name),
                        "wrong family or no such chain",
                    ));
                }
            }
        }
        for c in &self.chains {
            validate_name("chain name", &c.name)?;
            for r in &c.rules {
                self.validate_rule(r, &chains)?;
            }
        }
        Ok(())
    }

    fn set(&self, name: &str) -> Option<&NamedSet> {
        self.sets.iter().find(|s| s.name == name)
    }

    fn validate_rule(&self, r: &FilterRule, chains: &BTreeSet<&str>) -> Result<(), NftError> {
        if let Some(c) = &r.comment {
            validate_comment(c)?;
        }
        for m in &r.matches {
            self.validate_match(m)?;
        }
        match &r.verdict {
            Verdict::Jump(t) if !chains.contains(t.as_str()) => {
                Err(invalid("jump target", t, "no such chain"))
            }
            Verdict::Vmap { field, map } => match self.maps.iter().find(|m| &m.name == map) {
                Some(m) if m.key.is_v4() == field.is_v4() => Ok(()),
                _ => Err(invalid("verdict map", map, "no map of the field's family")),
            },
            _ => Ok(()),
        }
    }

    fn validate_match(&self, m: &Match) -> Result<(), NftError> {
        match m {
            Match::Addr {
                field,
                value: AddrValue::SetRef(s),
                ..
            } => {
                let want = if field.is_v4() {
                    KeyType::Ipv4
                } else {
                    KeyType::Ipv6
                };
                if self.set(s).map(|s| s.key) != Some(want) {
                    return Err(invalid(
                        "set reference",
                        s,
                        "no address set of the field's family",
                    ));
                }
            }
            Match::Addr {
                field,
                value: AddrValue::Prefix(n),
                ..
            } if n.addr().is_ipv4() != field.is_v4() => {
                return Err(invalid(
                    "address match",
                    n.to_string(),
                    "wrong family for the field",
                ));
            }
            Match::Addr {
                field,
                value: AddrValue::AnonSet(v),
                ..
            } if v.is_empty() || v.iter().any(|n| n.addr().is_ipv4() != field.is_v4()) => {
                return Err(invalid(
                    "anonymous set",
                    format!("{v:?}"),
                    "empty or wrong family",
                ));
            }
            Match::AddrProtoPort { field, set } => {
                let want = if field.is_v4() {
                    KeyType::Ipv4ProtoPort
                } else {
                    KeyType::Ipv6ProtoPort
                };
                if self.set(set).map(|s| s.key) != Some(want) {
                    return Err(invalid(
                        "set reference",
                        set,
                        "no address.proto.port set of the field's family",
                    ));
                }
            }
            Match::CtState(v) if v.is_empty() => return Err(invalid("ct state", "", "empty")),
            _ => {}
        }
        Ok(())
    }
}

fn validate_comment(c: &str) -> Result<(), NftError> {
    let ok = c.len() <= crate::model::MAX_COMMENT_LEN
        && c.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "rule comment",
            c,
            "must be printable ASCII without quotes, at most 128 bytes",
        ))
    }
}

// ---------------------------------------------------------------- rendering

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

pub(crate) fn elem(e: &Elem) -> String {
    match e {
        Elem::Net(n) => net(n),
        Elem::AddrProtoPort(a, p, port) => format!("{a} . {} . {port}", proto_name(*p)),
    }
}

fn addr_value(v: &AddrValue) -> String {
    match v {
        AddrValue::Prefix(n) => net(n),
        AddrValue::SetRef(s) => format!("@{s}"),
        AddrValue::AnonSet(v) => {
            format!("{{ {} }}", v.iter().map(net).collect::<Vec<_>>().join(", "))
        }
    }
}

fn field(f: AddrField) -> String {
    format!("{} {}", f.protocol(), f.field())
}

pub fn render_rule(r: &FilterRule) -> String {
    let mut parts: Vec<String> = r
        .matches
        .iter()
        .map(|m| match m {
            Match::CtState(v) => format!(
                "ct state {}",
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
            ),
            Match::Addr {
                field: f,
                op,
                value,
            } => {
                let op = if *op == Op::Ne { "!= " } else { "" };
                format!("{} {op}{}", field(*f), addr_value(value))
            }
            Match::L4Proto(p) => format!("meta l4proto {}", proto_name(*p)),
            Match::Dport(a, b) if a == b => format!("th dport {a}"),
            Match::Dport(a, b) => format!("th dport {a}-{b}"),
            Match::AddrProtoPort { field: f, set } => {
                format!("{} . meta l4proto . th dport @{set}", field(*f))
            }
        })
        .collect();
    parts.push(match &r.verdict {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Vmap { field: f, map } => format!("{} vmap @{map}", field(*f)),
    });
    if let Some(c) = &r.comment {
        parts.push(format!("comment \"{c}\""));
    }
    parts.join(" ")
}

fn elements_block(items: Vec<String>) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!("\t\telements = {{ {} }}\n", items.join(",\n\t\t\t"))
}

fn render_set(out: &mut String, s: &NamedSet) {
    let _ = writeln!(out, "\tset {} {{\n\t\ttype {}", s.name, s.key.as_str());
    if s.interval {
        out.push_str("\t\tflags interval\n");
    }
    out.push_str(&elements_block(s.elements.iter().map(elem).collect()));
    out.push_str("\t}\n");
}

fn render_map(out: &mut String, m: &VerdictMap) {
    let _ = writeln!(
        out,
        "\tmap {} {{\n\t\ttype {} : verdict",
        m.name,
        m.key.as_str()
    );
    out.push_str(&elements_block(
        m.elements
            .iter()
            .map(|(k, c)| format!("{k} : jump {c}"))
            .collect(),
    ));
    out.push_str("\t}\n");
}

fn base_line(b: &BaseChain) -> String {
    format!(
        "\t\ttype {} hook {} priority {}; policy {};\n",
        b.chain_type.as_str(),
        b.hook.as_str(),
        b.priority,
        b.policy.as_str()
    )
}

fn render_chain(out: &mut String, c: &FilterChain) {
    let _ = writeln!(out, "\tchain {} {{", c.name);
    if let Some(b) = &c.base {
        out.push_str(&base_line(b));
    }
    for r in &c.rules {
        let _ = writeln!(out, "\t\t{}", render_rule(r));
    }
    out.push_str("\t}\n");
}

/// `table FAMILY NAME { … }`.
pub fn render(t: &FilterTable) -> String {
    let mut out = format!("table {} {} {{\n", t.family, t.name);
    for s in &t.sets {
        render_set(&mut out, s);
    }
    for m in &t.maps {
        render_map(&mut out, m);
    }
    for c in &t.chains {
        render_chain(&mut out, c);
    }
    out.push_str("}\n");
    out
}

/// The whole table replaced in ONE transaction (`nft -f` is atomic): packets see the old
/// table or the new one, never none.
pub fn replace_script(t: &FilterTable) -> Result<String, NftError> {
    t.validate()?;
    Ok(format!(
        "table {f} {n}\ndelete table {f} {n}\n{}",
        render(t),
        f = t.family,
        n = t.name
    ))
}

// ---------------------------------------------------------------- running a whole script

impl crate::backend::NftCommand {
    /// Runs `script` as ONE transaction (`nft -f -`), with the whole script in place before
    /// nft starts: it is written into an anonymous in-memory file (`memfd_create(2)`) that
    /// becomes nft's stdin. Through a pipe, a caller killed while writing a script larger
    /// than the pipe (64 KiB) leaves nft a PREFIX of the script, and a prefix of a
    /// line-per-command update is valid nft that nft would apply: half a change. Here the
    /// caller dies either before nft starts (nothing applied) or after (nft has it all).
    pub fn run_script_whole(&self, op: &str, script: &str) -> Result<(), NftError> {
        use std::io::{Seek, Write};
        tracing::debug!(%op, script = %script, "nft -f - (memfd)");
        let spawn_err = |source| NftError::Spawn {
            op: op.to_string(),
            binary: self.binary.clone(),
            source,
        };
        let fd = nix::sys::memfd::memfd_create(
            "aksnet-nft-script",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(|e| spawn_err(std::io::Error::from(e)))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(script.as_bytes()).map_err(spawn_err)?;
        file.rewind().map_err(spawn_err)?;
        let out = std::process::Command::new(&self.binary)
            .args(["-f", "-"])
            .stdin(std::process::Stdio::from(file))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(spawn_err)?;
        if !out.status.success() {
            return Err(NftError::Failed {
                op: op.to_string(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- incremental update

fn same_shape(a: &FilterTable, b: &FilterTable) -> bool {
    let sets_ok = a.sets.iter().all(|s| {
        b.sets
            .iter()
            .find(|t| t.name == s.name)
            .is_none_or(|t| t.key == s.key && t.interval == s.interval)
    });
    let maps_ok = a.maps.iter().all(|m| {
        b.maps
            .iter()
            .find(|t| t.name == m.name)
            .is_none_or(|t| t.key == m.key)
    });
    let chains_ok = a.chains.iter().all(|c| {
        b.chains
            .iter()
            .find(|t| t.name == c.name)
            .is_none_or(|t| t.base == c.base)
    });
    a.family == b.family && a.name == b.name && sets_ok && maps_ok && chains_ok
}

/// The change from `old` (what the kernel holds) to `new` as ONE transaction that touches
/// only what differs: set and map elements added or deleted, chains flushed and refilled only
/// when their rules changed, new objects added, gone ones deleted. `None` when nothing
/// differs. A change of a set's type or a base chain's hook falls back to a full replace.
pub fn update_script(old: &FilterTable, new: &FilterTable) -> Result<Option<String>, NftError> {
    new.validate()?;
    if !same_shape(old, new) {
        return replace_script(new).map(Some);
    }
    Ok(diff_script(old, new))
}

/// Names and element types of the parts of a table a change touches (references to
/// objects outside the parts cannot be checked here).
pub(crate) fn validate_parts(new: &FilterTable) -> Result<(), NftError> {
    validate_name("table name", &new.name)?;
    for s in &new.sets {
        validate_name("set name", &s.name)?;
        if let Some(e) = s.elements.iter().find(|e| !elem_fits(s.key, s.interval, e)) {
            return Err(invalid(
                "set element",
                format!("{}: {e:?}", s.name),
                "does not match the set's type",
            ));
        }
    }
    for m in &new.maps {
        validate_name("map name", &m.name)?;
        if let Some(k) = m.elements.keys().find(|k| k.is_ipv4() != m.key.is_v4()) {
            return Err(invalid(
                "map element",
                format!("{}: {k}", m.name),
                "wrong family",
            ));
        }
        if let Some(c) = m
            .elements
            .values()
            .find(|c| validate_name("chain name", c).is_err())
        {
            return Err(invalid(
                "map element",
                format!("{}: jump {c}", m.name),
                "bad chain name",
            ));
        }
    }
    for c in &new.chains {
        validate_name("chain name", &c.name)?;
    }
    Ok(())
}

/// The same change for two PARTS of a table: `old` holds the objects a change touched as the
/// kernel has them (absent: not there yet), `new` the same objects as they must become
/// (absent: to delete); a set or map on both sides may hold only the elements that differ
/// (the elements of `old` not in `new` are deleted, those of `new` not in `old` added).
/// Objects in neither are left alone, so the script is as small as the change (an
/// incremental compiler's output: one pod → a few elements). References to
/// objects outside the parts cannot be checked here, so the caller's parts must come from a
/// validated table; names and element types are checked. A changed type or hook is an error
/// (a whole replace is the caller's fallback).
pub fn partial_update_script(
    old: &FilterTable,
    new: &FilterTable,
) -> Result<Option<String>, NftError> {
    validate_parts(new)?;
    if !same_shape(old, new) {
        return Err(invalid(
            "partial update",
            new.name.clone(),
            "a set, map or chain changed its type: replace the table",
        ));
    }
    Ok(diff_script(old, new))
}

fn diff_script(old: &FilterTable, new: &FilterTable) -> Option<String> {
    let tbl = format!("{} {}", new.family, new.name);
    let mut out = String::new();
    // 1. New sets, maps and chains (empty chains first: map elements and rules may name them).
    add_new_objects(&mut out, &tbl, old, new);
    let old_chain = |n: &str| old.chains.iter().find(|c| c.name == n);
    // 2. Chains whose rules changed are flushed (refilled in step 4).
    let changed: Vec<&FilterChain> = new
        .chains
        .iter()
        .filter(|c| old_chain(&c.name).is_some_and(|o| o.rules != c.rules))
        .collect();
    for c in &changed {
        let _ = writeln!(out, "flush chain {tbl} {}", c.name);
    }
    // 3. Elements: deletions, then additions.
    elements_diff(&mut out, old, new);
    // 4. Rules of changed and new chains.
    for c in new
        .chains
        .iter()
        .filter(|c| old_chain(&c.name).is_none() || changed.iter().any(|x| x.name == c.name))
    {
        for r in &c.rules {
            let _ = writeln!(out, "add rule {tbl} {} {}", c.name, render_rule(r));
        }
    }
    // 5. Gone chains (flushed first: they may jump to each other), then gone sets and maps.
    delete_gone_objects(&mut out, &tbl, old, new);
    (!out.is_empty()).then_some(out)
}

fn add_new_objects(out: &mut String, tbl: &str, old: &FilterTable, new: &FilterTable) {
    for s in new
        .sets
        .iter()
        .filter(|s| old.sets.iter().all(|o| o.name != s.name))
    {
        let flags = if s.interval { " flags interval;" } else { "" };
        let _ = writeln!(
            out,
            "add set {tbl} {} {{ type {};{flags} }}",
            s.name,
            s.key.as_str()
        );
    }
    for m in new
        .maps
        .iter()
        .filter(|m| old.maps.iter().all(|o| o.name != m.name))
    {
        let _ = writeln!(
            out,
            "add map {tbl} {} {{ type {} : verdict; }}",
            m.name,
            m.key.as_str()
        );
    }
    for c in new
        .chains
        .iter()
        .filter(|c| old.chains.iter().all(|o| o.name != c.name))
    {
        match &c.base {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "add chain {tbl} {} {{ {} }}",
                    c.name,
                    base_line(b).trim()
                );
            }
            None => {
                let _ = writeln!(out, "add chain {tbl} {}", c.name);
            }
        }
    }
}

fn delete_gone_objects(out: &mut String, tbl: &str, old: &FilterTable, new: &FilterTable) {
    let gone: Vec<&FilterChain> = old
        .chains
        .iter()
        .filter(|c| new.chains.iter().all(|n| n.name != c.name))
        .collect();
    for c in &gone {
        let _ = writeln!(out, "flush chain {tbl} {}", c.name);
    }
    for c in &gone {
        let _ = writeln!(out, "delete chain {tbl} {}", c.name);
    }
    for s in old
        .sets
        .iter()
        .filter(|s| new.sets.iter().all(|n| n.name != s.name))
    {
        let _ = writeln!(out, "delete set {tbl} {}", s.name);
    }
    for m in old
        .maps
        .iter()
        .filter(|m| new.maps.iter().all(|n| n.name != m.name))
    {
        let _ = writeln!(out, "delete map {tbl} {}", m.name);
    }
}

fn elements_diff(out: &mut String, old: &FilterTable, new: &FilterTable) {
    for op in crate::elements::element_ops(old, new) {
        let _ = writeln!(out, "{}", op.render(new.family, &new.name));
    }
}

// ---------------------------------------------------------------- interpreter

/// A packet as the filter sees it (after DNAT, before SNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    pub l4proto: u8,
    pub dport: u16,
    pub ct: CtState,
}

enum Flow {
    Accept,
    Drop,
    /// End of a regular chain or `return`: back to the caller.
    Continue,
}

/// Runs a packet through every base chain of `hook` in priority order, as netfilter does:
/// `accept` ends one base chain, `drop` ends them all. True when the packet passes.
pub fn run_hook(t: &FilterTable, hook: crate::model::Hook, p: &Packet) -> bool {
    let mut bases: Vec<&FilterChain> = t
        .chains
        .iter()
        .filter(|c| c.base.is_some_and(|b| b.hook == hook))
        .collect();
    bases.sort_by_key(|c| c.base.map(|b| b.priority));
    for c in bases {
        match run_chain(t, c, p, 0) {
            Flow::Drop => return false,
            Flow::Accept => {}
            Flow::Continue => {
                if c.base.is_some_and(|b| b.policy == Policy::Drop) {
                    return false;
                }
            }
        }
    }
    true
}

fn run_chain(t: &FilterTable, c: &FilterChain, p: &Packet, depth: usize) -> Flow {
    if depth > 16 {
        return Flow::Drop; // the kernel refuses loops; never reached by valid tables
    }
    for r in &c.rules {
        if !r.matches.iter().all(|m| matches(t, m, p)) {
            continue;
        }
        let target = match &r.verdict {
            Verdict::Accept => return Flow::Accept,
            Verdict::Drop => return Flow::Drop,
            Verdict::Return => return Flow::Continue,
            Verdict::Jump(n) => Some(n.clone()),
            Verdict::Vmap { field, map } => {
                let key = addr_of(*field, p);
                t.maps
                    .iter()
                    .find(|m| &m.name == map)
                    .and_then(|m| key.and_then(|k| m.elements.get(&k)).cloned())
            }
        };
        if let Some(next) = target.and_then(|n| t.chains.iter().find(|c| c.name == n)) {
            match run_chain(t, next, p, depth + 1) {
                Flow::Continue => {}
                f => return f,
            }
        }
    }
    Flow::Continue
}

/// The packet's address for a field, or None when the packet is of the other family (nft's
/// implicit `meta nfproto` dependency: such a match, even `!=`, never holds).
fn addr_of(f: AddrField, p: &Packet) -> Option<IpAddr> {
    let a = match f.field() {
        "saddr" => p.saddr,
        _ => p.daddr,
    };
    (a.is_ipv4() == f.is_v4()).then_some(a)
}

fn matches(t: &FilterTable, m: &Match, p: &Packet) -> bool {
    match m {
        Match::CtState(v) => v.contains(&p.ct),
        Match::L4Proto(n) => p.l4proto == *n,
        Match::Dport(a, b) => (*a..=*b).contains(&p.dport),
        Match::Addr { field, op, value } => {
            let Some(a) = addr_of(*field, p) else {
                return false;
            };
            let hit = match value {
                AddrValue::Prefix(n) => n.contains(&a),
                AddrValue::AnonSet(v) => v.iter().any(|n| n.contains(&a)),
                AddrValue::SetRef(s) => t.set(s).is_some_and(|s| {
                    s.elements
                        .iter()
                        .any(|e| matches!(e, Elem::Net(n) if n.contains(&a)))
                }),
            };
            hit == (*op == Op::Eq)
        }
        Match::AddrProtoPort { field, set } => addr_of(*field, p).is_some_and(|a| {
            t.set(set).is_some_and(|s| {
                s.elements
                    .contains(&Elem::AddrProtoPort(a, p.l4proto, p.dport))
            })
        }),
    }
}
