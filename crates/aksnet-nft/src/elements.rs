//! Element-only changes of a filter table (docs/policy.md "Incremental updates"): the set and
//! verdict-map elements to delete and add, in the order one transaction applies them. The
//! same list renders to `nft` text ([`ElementBatch::script`], for `nft -f`) and encodes to
//! nf_tables netlink messages ([`crate::nfnetlink`]), so both ways send the same change.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::error::NftError;
use crate::filter::{Elem, FilterTable, KeyType};
use crate::model::Family;

/// One `add element` / `delete element` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElemOp {
    /// Elements of a named set.
    Set {
        set: String,
        key: KeyType,
        add: bool,
        elems: Vec<Elem>,
    },
    /// Entries of a verdict map: address → `jump CHAIN` (the chain is not sent on delete).
    Map {
        map: String,
        key: KeyType,
        add: bool,
        entries: Vec<(IpAddr, String)>,
    },
}

impl ElemOp {
    fn is_empty(&self) -> bool {
        match self {
            ElemOp::Set { elems, .. } => elems.is_empty(),
            ElemOp::Map { entries, .. } => entries.is_empty(),
        }
    }

    /// The op as one line of nft text (what `nft -f` takes).
    pub fn render(&self, family: Family, table: &str) -> String {
        let verb = |add: bool| if add { "add" } else { "delete" };
        match self {
            ElemOp::Set {
                set, add, elems, ..
            } => {
                let items: Vec<String> = elems.iter().map(crate::filter::elem).collect();
                format!(
                    "{} element {family} {table} {set} {{ {} }}",
                    verb(*add),
                    items.join(", ")
                )
            }
            ElemOp::Map {
                map, add, entries, ..
            } => {
                let items: Vec<String> = entries
                    .iter()
                    .map(|(k, c)| match add {
                        true => format!("{k} : jump {c}"),
                        false => k.to_string(),
                    })
                    .collect();
                format!(
                    "{} element {family} {table} {map} {{ {} }}",
                    verb(*add),
                    items.join(", ")
                )
            }
        }
    }
}

/// The element changes from `old` to `new`, in the order of one transaction: per set its
/// deletions then its additions, then the same per verdict map (a changed map entry is
/// deleted, then added with its new chain). Sets and maps only in one side are left out
/// (the caller creates or deletes them).
pub fn element_ops(old: &FilterTable, new: &FilterTable) -> Vec<ElemOp> {
    let mut ops = Vec::new();
    let empty = BTreeSet::new();
    for s in &new.sets {
        let before = old
            .sets
            .iter()
            .find(|o| o.name == s.name)
            .map_or(&empty, |o| &o.elements);
        for (add, elems) in [
            (false, before.difference(&s.elements).cloned().collect()),
            (true, s.elements.difference(before).cloned().collect()),
        ] {
            ops.push(ElemOp::Set {
                set: s.name.clone(),
                key: s.key,
                add,
                elems,
            });
        }
    }
    let no_map = BTreeMap::new();
    for m in &new.maps {
        let before = old
            .maps
            .iter()
            .find(|o| o.name == m.name)
            .map_or(&no_map, |o| &o.elements);
        let changed = |from: &BTreeMap<IpAddr, String>, to: &BTreeMap<IpAddr, String>| {
            from.iter()
                .filter(|(k, v)| to.get(*k) != Some(*v))
                .map(|(k, v)| (*k, v.clone()))
                .collect::<Vec<_>>()
        };
        for (add, entries) in [
            (false, changed(before, &m.elements)),
            (true, changed(&m.elements, before)),
        ] {
            ops.push(ElemOp::Map {
                map: m.name.clone(),
                key: m.key,
                add,
                entries,
            });
        }
    }
    ops.retain(|o| !o.is_empty());
    ops
}

/// A change that is nothing but elements of existing sets and maps: one transaction, as nft
/// text or as netlink messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementBatch {
    pub family: Family,
    pub table: String,
    pub ops: Vec<ElemOp>,
}

impl ElementBatch {
    /// The same change as nft text (one `nft -f` transaction).
    pub fn script(&self) -> String {
        let mut out = String::new();
        for op in &self.ops {
            let _ = writeln!(out, "{}", op.render(self.family, &self.table));
        }
        out
    }

    /// Commands in the change (the line count of [`ElementBatch::script`]).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// `old` → `new` (parts of one table, as `partial_update_script` takes them) as an element
/// batch, when that is all the change is: the same sets and maps on both sides (so all
/// exist in the kernel), no chain, no interval set (an interval element is a range the
/// kernel stores as two ends; nft handles those). `Ok(None)`: not element-only (use the
/// script) or nothing to do. Names and element types are checked.
pub fn element_batch(
    old: &FilterTable,
    new: &FilterTable,
) -> Result<Option<ElementBatch>, NftError> {
    crate::filter::validate_parts(new)?;
    let names = |t: &FilterTable| -> (Vec<String>, Vec<String>) {
        (
            t.sets.iter().map(|s| s.name.clone()).collect(),
            t.maps.iter().map(|m| m.name.clone()).collect(),
        )
    };
    let only_elements = old.chains.is_empty()
        && new.chains.is_empty()
        && old.family == new.family
        && old.name == new.name
        && names(old) == names(new)
        && old
            .sets
            .iter()
            .zip(&new.sets)
            .all(|(a, b)| !a.interval && !b.interval && a.key == b.key)
        && old.maps.iter().zip(&new.maps).all(|(a, b)| a.key == b.key);
    if !only_elements {
        return Ok(None);
    }
    let ops = element_ops(old, new);
    Ok((!ops.is_empty()).then(|| ElementBatch {
        family: new.family,
        table: new.name.clone(),
        ops,
    }))
}
