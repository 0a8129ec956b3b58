//! One path for the JSON records the store keeps under keys (node reservations,
//! pod subnet blocks, pod CIDRs, subnets): parse, serialise, get, list, and the
//! check that no address or block is held by two records. A record that does not
//! parse is never skipped or reset: it is an error naming its key.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::kv::{Revision, Store, StoreError};
use crate::reservation::ReservationError;

/// The error for a record at `key` that is not what its family allows.
pub(crate) fn corrupt(key: &str, detail: impl Into<String>) -> ReservationError {
    ReservationError::CorruptRecord {
        key: key.to_string(),
        detail: detail.into(),
    }
}

pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    key: &str,
    value: &[u8],
) -> Result<T, ReservationError> {
    serde_json::from_slice(value).map_err(|e| corrupt(key, e.to_string()))
}

pub(crate) fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, ReservationError> {
    serde_json::to_vec(value).map_err(|e| corrupt(key, format!("cannot serialise: {e}")))
}

/// The record at `key`, checked by `parse`, and its revision; `None` when absent.
pub(crate) fn get<S, T, E>(
    store: &S,
    key: &str,
    parse: impl FnOnce(&str, &[u8]) -> Result<T, E>,
) -> Result<Option<(T, Revision)>, E>
where
    S: Store + ?Sized,
    E: From<StoreError>,
{
    match store.get(key)? {
        None => Ok(None),
        Some((v, rev)) => Ok(Some((parse(key, &v)?, rev))),
    }
}

/// Every record under `prefix`, in key order, each checked by `parse`.
pub(crate) fn list<S, T, E>(
    store: &S,
    prefix: &str,
    parse: impl Fn(&str, &[u8]) -> Result<T, E>,
) -> Result<Vec<T>, E>
where
    S: Store + ?Sized,
    E: From<StoreError>,
{
    store
        .list(prefix)?
        .iter()
        .map(|kv| parse(&kv.key, &kv.value))
        .collect()
}

/// The first thing two holders claim, as `(thing, first holder, second holder)`;
/// `None` when every thing has one holder.
pub(crate) fn first_held_twice<'a, K: Eq + Hash>(
    held: impl IntoIterator<Item = (K, &'a str)>,
) -> Option<(K, String, String)> {
    let mut holder: HashMap<K, &str> = HashMap::new();
    for (thing, by) in held {
        if let Some(first) = holder.get(&thing) {
            return Some((thing, first.to_string(), by.to_string()));
        }
        holder.insert(thing, by);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use crate::MemStore;

    #[test]
    fn first_held_twice_names_both_holders_in_order() {
        assert_eq!(first_held_twice([(1, "a"), (2, "b")]), None);
        assert_eq!(
            first_held_twice([(1, "a"), (2, "b"), (2, "c"), (1, "d")]),
            Some((2, "b".to_string(), "c".to_string()))
        );
    }

    #[test]
    fn get_and_list_parse_every_record_and_name_a_corrupt_one() {
        let s = MemStore::new();
        let put = |k: &str, v: &str| Op::Put {
            key: k.into(),
            value: v.as_bytes().to_vec(),
        };
        s.txn(&[], &[put("r/a", "1"), put("r/b", "2")])
            .expect("txn");
        let num = |k: &str, v: &[u8]| parse::<u32>(k, v);
        assert_eq!(list(&s, "r/", num).expect("list"), vec![1, 2]);
        assert_eq!(get(&s, "r/b", num).expect("get").map(|(v, _)| v), Some(2));
        assert!(get(&s, "r/c", num).expect("get").is_none());
        s.txn(&[], &[put("r/c", "x")]).expect("txn");
        let e = list(&s, "r/", num).expect_err("corrupt");
        assert!(e.to_string().contains("r/c"), "{e}");
    }
}
