//! Privileged: the real backend against the kernel, each test in a fresh network namespace made
//! with unshare(CLONE_NEWNET) on its own thread (docs/prior-art.md#tests); `nft`
//! children inherit the thread's namespace, and the namespace dies with the thread.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::process::Command;

use aksnet_nft::{Family, NftBackend, NftCommand};
use common::{net, sample_table};
use proptest::prelude::*;

fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) failed: these tests must run as root");
        f()
    })
    .join()
    .expect("test thread panicked")
}

fn nft(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut c = Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the nft binary is required (Debian package nftables)");
    c.stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn replace_read_back_and_delete_in_the_kernel() {
    in_fresh_netns(|| {
        let backend = NftCommand::default();
        let table = sample_table("aksnt-sample");
        assert_eq!(
            backend.get_table(Family::Inet, "aksnt-sample").unwrap(),
            None
        );
        backend.replace_table(&table).unwrap();
        let first = backend
            .get_table(Family::Inet, "aksnt-sample")
            .unwrap()
            .unwrap();
        assert!(first.table.same_ruleset(&table), "{:#?}", first.table);
        // The golden listing used by the pure decoder test is what this nft prints.
        let json = nft(&["-j", "list", "table", "inet", "aksnt-sample"], None);
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/golden/sample-listing.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let got: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            got["nftables"].as_array().unwrap().len(),
            want["nftables"].as_array().unwrap().len()
        );

        // Reading does not recreate; replacing does (new table handle).
        let again = backend
            .get_table(Family::Inet, "aksnt-sample")
            .unwrap()
            .unwrap();
        assert_eq!(again.handle, first.handle);
        let mut changed = table.clone();
        changed.sets[0].elements.push(net("10.200.0.0/16"));
        backend.replace_table(&changed).unwrap();
        let second = backend
            .get_table(Family::Inet, "aksnt-sample")
            .unwrap()
            .unwrap();
        assert!(second.table.same_ruleset(&changed));
        assert!(!second.table.same_ruleset(&table));

        assert!(backend.delete_table(Family::Inet, "aksnt-sample").unwrap());
        assert_eq!(
            backend.get_table(Family::Inet, "aksnt-sample").unwrap(),
            None
        );
        assert!(!backend.delete_table(Family::Inet, "aksnt-sample").unwrap());
    });
}

#[test]
fn never_touches_another_table() {
    in_fresh_netns(|| {
        nft(
            &["-f", "-"],
            Some("table ip aksnt-other {\n chain c {\n  ip daddr 192.0.2.1 counter drop\n }\n}\n"),
        );
        let before = nft(&["list", "table", "ip", "aksnt-other"], None);
        let backend = NftCommand::default();
        backend.replace_table(&sample_table("aksnt-mine")).unwrap();
        backend.replace_table(&sample_table("aksnt-mine")).unwrap();
        backend.delete_table(Family::Inet, "aksnt-mine").unwrap();
        // Same family and name in another family are different tables too.
        backend.delete_table(Family::Inet, "aksnt-other").unwrap();
        assert_eq!(nft(&["list", "table", "ip", "aksnt-other"], None), before);
    });
}

#[test]
fn a_refused_transaction_leaves_the_old_table_in_force() {
    in_fresh_netns(|| {
        let backend = NftCommand::default();
        let good = sample_table("aksnt-atomic");
        backend.replace_table(&good).unwrap();
        // Overlapping intervals without auto-merge: the kernel/nft refuses the whole batch,
        // including the `delete table` that precedes it.
        let mut bad = good.clone();
        bad.sets[0].elements = vec![net("10.0.0.0/8"), net("10.1.0.0/16")];
        let err = backend.replace_table(&bad).unwrap_err();
        assert!(matches!(err, aksnet_nft::NftError::Failed { .. }), "{err}");
        let now = backend
            .get_table(Family::Inet, "aksnt-atomic")
            .unwrap()
            .unwrap();
        assert!(now.table.same_ruleset(&good));
    });
}

fn arb_prefixes() -> impl Strategy<Value = Vec<ipnet::IpNet>> {
    proptest::collection::vec((any::<u32>(), 8u8..=32), 0..12).prop_map(|v| {
        let nets: Vec<ipnet::IpNet> = v
            .into_iter()
            .map(|(a, l)| ipnet::IpNet::V4(ipnet::Ipv4Net::new(a.into(), l).unwrap().trunc()))
            .collect();
        ipnet::IpNet::aggregate(&nets)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    /// Whatever aggregated prefix list we render, nft stores and lists back the same set.
    #[test]
    fn any_aggregated_set_round_trips_through_nft(elems in arb_prefixes()) {
        let ok = in_fresh_netns(move || {
            let backend = NftCommand::default();
            let mut t = sample_table("aksnt-prop");
            t.sets[0].elements = elems;
            backend.replace_table(&t).unwrap();
            let listed = backend.get_table(Family::Inet, "aksnt-prop").unwrap().unwrap();
            listed.table.same_ruleset(&t)
        });
        prop_assert!(ok);
    }
}
