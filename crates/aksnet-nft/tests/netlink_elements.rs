//! Privileged: element batches sent over netlink (`aksnet_nft::nfnetlink`) do in the kernel
//! exactly what the same change as nft text does, and a refused batch changes nothing. Each
//! test runs in a fresh network namespace made with unshare(CLONE_NEWNET) on its own thread;
//! the netlink socket and the `nft` children live in it, and it dies with the thread.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::Command;

use aksnet_nft::elements::{ElemOp, ElementBatch};
use aksnet_nft::filter::{Elem, KeyType};
use aksnet_nft::nfnetlink::send_batch;
use aksnet_nft::{Family, NftCommand};
use serde_json::Value;

fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) failed: these tests must run as root");
        f()
    })
    .join()
    .expect("test thread panicked")
}

fn nft_f(script: &str) {
    NftCommand::default()
        .run_script_whole("test", script)
        .expect("the nft binary is required (Debian package nftables)");
}

/// A table with every key type the policy compiler uses, and verdict maps used by a base
/// chain (so a jump element makes the kernel validate the table, as in the agent's).
fn table(name: &str) -> String {
    format!(
        "table inet {name} {{
  set s4 {{ type ipv4_addr; elements = {{ 10.0.0.1 }} }}
  set s6 {{ type ipv6_addr; }}
  set np4 {{ type ipv4_addr . inet_proto . inet_service; }}
  set np6 {{ type ipv6_addr . inet_proto . inet_service; }}
  map m4 {{ type ipv4_addr : verdict; elements = {{ 10.0.0.1 : jump c1 }} }}
  map m6 {{ type ipv6_addr : verdict; }}
  chain c1 {{ ip saddr @s4 accept; drop; }}
  chain c2 {{ ip saddr . meta l4proto . th dport @np4 accept; drop; }}
  chain f {{ type filter hook forward priority 0; policy accept;
    ip saddr vmap @m4; ip6 saddr vmap @m6; }}
}}
"
    )
}

/// The table as nft lists it, without handles and its own name, elements sorted.
fn listing(name: &str) -> Value {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", name])
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace(name, "T");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let items = v["nftables"].as_array_mut().unwrap();
    items.retain(|i| i.get("metainfo").is_none());
    for i in items.iter_mut() {
        for kind in ["table", "chain", "rule", "set", "map"] {
            if let Some(o) = i.get_mut(kind).and_then(Value::as_object_mut) {
                o.remove("handle");
                if let Some(Value::Array(e)) = o.get_mut("elem") {
                    e.sort_by_key(|x| x.to_string());
                }
            }
        }
    }
    v
}

fn set(name: &str, key: KeyType, add: bool, elems: Vec<Elem>) -> ElemOp {
    ElemOp::Set {
        set: name.into(),
        key,
        add,
        elems,
    }
}

fn map(name: &str, key: KeyType, add: bool, entries: &[(&str, &str)]) -> ElemOp {
    ElemOp::Map {
        map: name.into(),
        key,
        add,
        entries: entries
            .iter()
            .map(|(k, c)| (k.parse().unwrap(), c.to_string()))
            .collect(),
    }
}

fn net(s: &str) -> Elem {
    Elem::Net(s.parse().unwrap())
}

fn app(ip: &str, proto: u8, port: u16) -> Elem {
    Elem::AddrProtoPort(ip.parse().unwrap(), proto, port)
}

fn batch(table: &str, ops: Vec<ElemOp>) -> ElementBatch {
    ElementBatch {
        family: Family::Inet,
        table: table.into(),
        ops,
    }
}

/// The same ops, sent over netlink to table `aksnt-nl` and as nft text to `aksnt-tx`, leave
/// the two tables equal.
fn same_as_nft(ops: Vec<ElemOp>) {
    let via_netlink = batch("aksnt-nl", ops.clone());
    assert!(
        send_batch("test", &via_netlink).unwrap(),
        "small batch sent"
    );
    nft_f(&batch("aksnt-tx", ops).script());
    assert_eq!(listing("aksnt-nl"), listing("aksnt-tx"));
}

#[test]
fn netlink_batches_equal_nft_text() {
    in_fresh_netns(|| {
        nft_f(&table("aksnt-nl"));
        nft_f(&table("aksnt-tx"));
        // Additions of every key type, map entries jumping to chains.
        same_as_nft(vec![
            set(
                "s4",
                KeyType::Ipv4,
                true,
                vec![net("10.0.0.2/32"), net("10.0.0.3/32")],
            ),
            set("s6", KeyType::Ipv6, true, vec![net("fd00::2/128")]),
            set(
                "np4",
                KeyType::Ipv4ProtoPort,
                true,
                vec![app("10.0.0.2", 6, 8080), app("10.0.0.3", 17, 53)],
            ),
            set(
                "np6",
                KeyType::Ipv6ProtoPort,
                true,
                vec![app("fd00::2", 132, 9)],
            ),
            map(
                "m4",
                KeyType::Ipv4,
                true,
                &[("10.0.0.2", "c1"), ("10.0.0.3", "c2")],
            ),
            map("m6", KeyType::Ipv6, true, &[("fd00::2", "c2")]),
        ]);
        let listed = listing("aksnt-nl").to_string();
        assert!(
            listed.contains("8080") && listed.contains("fd00::2"),
            "{listed}"
        );
        // Deletions, and a map entry moved to another chain (deleted, then added).
        same_as_nft(vec![
            set("s4", KeyType::Ipv4, false, vec![net("10.0.0.1/32")]),
            set(
                "np4",
                KeyType::Ipv4ProtoPort,
                false,
                vec![app("10.0.0.3", 17, 53)],
            ),
            map(
                "m4",
                KeyType::Ipv4,
                false,
                &[("10.0.0.1", "c1"), ("10.0.0.2", "c1")],
            ),
            map("m4", KeyType::Ipv4, true, &[("10.0.0.2", "c2")]),
            map("m6", KeyType::Ipv6, false, &[("fd00::2", "c2")]),
        ]);
        // Many elements: more than one message per set.
        let many: Vec<Elem> = (0..600u32)
            .map(|i| net(&format!("10.1.{}.{}/32", i / 250, i % 250 + 1)))
            .collect();
        same_as_nft(vec![set("s4", KeyType::Ipv4, true, many)]);
    });
}

#[test]
fn a_refused_batch_changes_nothing() {
    in_fresh_netns(|| {
        nft_f(&table("aksnt-nl"));
        let before = listing("aksnt-nl");
        // Valid additions first, then a deletion of an element that is not there.
        let bad = batch(
            "aksnt-nl",
            vec![
                set("s4", KeyType::Ipv4, true, vec![net("10.0.0.7/32")]),
                map("m4", KeyType::Ipv4, true, &[("10.0.0.7", "c1")]),
                set("s6", KeyType::Ipv6, false, vec![net("fd00::9/128")]),
            ],
        );
        let err = send_batch("test", &bad).unwrap_err();
        match &err {
            aksnet_nft::NftError::Netlink { source, .. } => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT), "{err}")
            }
            other => panic!("{other}"),
        }
        assert_eq!(listing("aksnt-nl"), before);
        // A jump to a chain that does not exist is refused too.
        let dangling = batch(
            "aksnt-nl",
            vec![map("m4", KeyType::Ipv4, true, &[("10.0.0.8", "nochain")])],
        );
        assert!(send_batch("test", &dangling).is_err());
        assert_eq!(listing("aksnt-nl"), before);
    });
}
