//! ip-masq config parsing and merging against ip-masq-agent-v2's rules
//! (docs/azure.md#ip-masq-agent), every error path, and the directory reader.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use aksnet_agent::masq_config::{
    dir_fingerprint, is_config_file_name, load_dir, merge, parse_aligned_cidr, parse_fragment,
    parse_go_duration, ConfigError,
};
use ipnet::IpNet;

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn yaml_and_json_give_the_same_fragment() {
    let yaml = "nonMasqueradeCIDRs:\n  - 10.224.0.0/12\n  - 192.168.0.0/16\nmasqLinkLocal: true\nmasqLinkLocalIPv6: false\nresyncInterval: 60s\ncidrLimit: 10\n";
    let json = r#"{"nonMasqueradeCIDRs":["10.224.0.0/12","192.168.0.0/16"],"masqLinkLocal":true,"masqLinkLocalIPv6":false,"resyncInterval":"60s","cidrLimit":10}"#;
    let a = parse_fragment("f", yaml, false).unwrap();
    let b = parse_fragment("f", json, false).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a.non_masquerade_cidrs,
        nets(&["10.224.0.0/12", "192.168.0.0/16"])
    );
    assert!(a.masq_link_local);
    assert!(!a.masq_link_local_ipv6);
    assert_eq!(a.resync_interval, Some(Duration::from_secs(60)));
}

#[test]
fn empty_file_and_null_list_are_empty_fragments() {
    let f = parse_fragment("f", "", false).unwrap();
    assert!(f.non_masquerade_cidrs.is_empty());
    assert!(!f.masq_link_local);
    let f = parse_fragment("f", "nonMasqueradeCIDRs:\n", false).unwrap();
    assert!(f.non_masquerade_cidrs.is_empty());
    // AKS#2653's config: an empty list and masqLinkLocal.
    let f = parse_fragment(
        "f",
        "nonMasqueradeCIDRs: []\nmasqLinkLocal: true\nresyncInterval: 60s\n",
        false,
    )
    .unwrap();
    assert!(f.non_masquerade_cidrs.is_empty() && f.masq_link_local);
}

#[test]
fn merge_unions_lists_and_ors_booleans() {
    let a = parse_fragment("a", "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\nmasqLinkLocal: false\nresyncInterval: 2m\n", false).unwrap();
    let b = parse_fragment("b", "nonMasqueradeCIDRs: [172.16.0.0/12, 192.168.0.0/16]\nmasqLinkLocal: true\nresyncInterval: 30s\n", false).unwrap();
    let c = parse_fragment("c", "masqLinkLocalIPv6: true\n", false).unwrap();
    let m = merge(&[a.clone(), b.clone(), c]);
    assert_eq!(
        m.non_masquerade_cidrs,
        nets(&["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])
    );
    assert!(m.masq_link_local);
    assert!(m.masq_link_local_ipv6);
    assert_eq!(m.resync_interval, Some(Duration::from_secs(30)));
    assert_eq!(m.sources, ["a", "b", "c"]);
    // Order of files does not matter.
    let n = merge(&[b, a]);
    assert_eq!(
        n.non_masquerade_cidrs,
        nets(&["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])
    );
    // false OR false stays false.
    let f = merge(&[parse_fragment("x", "masqLinkLocal: false", false).unwrap()]);
    assert!(!f.masq_link_local);
}

fn list_of(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    format!("nonMasqueradeCIDRs: [{}]\n", items.join(", "))
}

#[test]
fn at_most_64_cidrs_per_file_or_cidr_limit() {
    assert_eq!(
        parse_fragment("f", &list_of(64), false)
            .unwrap()
            .non_masquerade_cidrs
            .len(),
        64
    );
    match parse_fragment("f", &list_of(65), false) {
        Err(ConfigError::TooManyCidrs {
            file,
            key,
            count,
            limit,
        }) => {
            assert_eq!(
                (file.as_str(), key.as_str(), count, limit),
                ("f", "nonMasqueradeCIDRs", 65, 64)
            );
        }
        other => panic!("{other:?}"),
    }
    let with_limit = format!("cidrLimit: 100\n{}", list_of(65));
    assert_eq!(
        parse_fragment("f", &with_limit, false)
            .unwrap()
            .non_masquerade_cidrs
            .len(),
        65
    );
    let low = format!("{}cidrLimit: 2\n", list_of(3));
    assert!(matches!(
        parse_fragment("f", &low, false),
        Err(ConfigError::TooManyCidrs { limit: 2, .. })
    ));
    // The limit is per file: two files of 64 merge to 128.
    let a = parse_fragment("a", &list_of(64), false).unwrap();
    let mut b = a.clone();
    b.non_masquerade_cidrs = b
        .non_masquerade_cidrs
        .iter()
        .map(|n| {
            format!("11.{}/24", &n.to_string()[3..n.to_string().len() - 3])
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(merge(&[a, b]).non_masquerade_cidrs.len(), 128);
}

#[test]
fn cidr_errors_name_file_key_and_value() {
    let e = parse_fragment(
        "/etc/config/ip-masq-agent",
        "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.2.3/16]\n",
        false,
    )
    .unwrap_err();
    match &e {
        ConfigError::NotAligned {
            file,
            key,
            value,
            aligned,
        } => {
            assert_eq!(file, "/etc/config/ip-masq-agent");
            assert_eq!(key, "nonMasqueradeCIDRs[1]");
            assert_eq!(value, "10.1.2.3/16");
            assert_eq!(aligned, "10.1.0.0/16");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("/etc/config/ip-masq-agent")
            && msg.contains("nonMasqueradeCIDRs[1]")
            && msg.contains("10.1.2.3/16")
            && msg.contains("not aligned to a CIDR block"),
        "{msg}"
    );

    for bad in ["10.0.0.0", "10.0.0.0/33", "banana", "10.0.0.0/-1", ""] {
        let text = format!("nonMasqueradeCIDRs: [\"{bad}\"]\n");
        match parse_fragment("f", &text, false) {
            Err(ConfigError::BadCidr {
                file, key, value, ..
            }) => {
                assert_eq!(
                    (file.as_str(), key.as_str(), value.as_str()),
                    ("f", "nonMasqueradeCIDRs[0]", bad)
                );
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    match parse_fragment("f", "nonMasqueradeCIDRs: [42]\n", false) {
        Err(ConfigError::WrongType { key, value, .. }) => assert_eq!(
            (key.as_str(), value.as_str()),
            ("nonMasqueradeCIDRs[0]", "42")
        ),
        other => panic!("{other:?}"),
    }
    match parse_fragment("f", "nonMasqueradeCIDRs: 10.0.0.0/8\n", false) {
        Err(ConfigError::WrongType { key, value, .. }) => assert_eq!(
            (key.as_str(), value.as_str()),
            ("nonMasqueradeCIDRs", "\"10.0.0.0/8\"")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ipv6_cidrs_need_ipv6_enabled() {
    match parse_fragment("f", "nonMasqueradeCIDRs: [\"fd00::/8\"]\n", false) {
        Err(ConfigError::Ipv6Disabled { key, value, .. }) => assert_eq!(
            (key.as_str(), value.as_str()),
            ("nonMasqueradeCIDRs[0]", "fd00::/8")
        ),
        other => panic!("{other:?}"),
    }
    let f = parse_fragment("f", "nonMasqueradeCIDRs: [\"fd00::/8\"]\n", true).unwrap();
    assert_eq!(f.non_masquerade_cidrs, nets(&["fd00::/8"]));
    assert!(matches!(
        parse_fragment("f", "nonMasqueradeCIDRs: [\"fd00::1/8\"]\n", true),
        Err(ConfigError::NotAligned { .. })
    ));
}

#[test]
fn unknown_keys_and_wrong_types_are_errors() {
    match parse_fragment("f", "nonMasqueradeCIDRS: [10.0.0.0/8]\n", false) {
        Err(ConfigError::UnknownKey { file, key, value }) => {
            assert_eq!((file.as_str(), key.as_str()), ("f", "nonMasqueradeCIDRS"));
            assert!(value.contains("10.0.0.0/8"), "{value}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_fragment("f", "1: true\n", false),
        Err(ConfigError::UnknownKey { .. })
    ));
    for (text, key) in [
        ("masqLinkLocal: \"true\"\n", "masqLinkLocal"),
        ("masqLinkLocal: yes\n", "masqLinkLocal"),
        ("masqLinkLocalIPv6: 1\n", "masqLinkLocalIPv6"),
        ("cidrLimit: -1\n", "cidrLimit"),
        ("cidrLimit: ten\n", "cidrLimit"),
        ("resyncInterval: 60\n", "resyncInterval"),
    ] {
        match parse_fragment("f", text, false) {
            Err(ConfigError::WrongType { file, key: k, .. }) => {
                assert_eq!((file.as_str(), k.as_str()), ("f", key), "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    match parse_fragment("f", "resyncInterval: soon\n", false) {
        Err(ConfigError::BadDuration { key, value, .. }) => {
            assert_eq!((key.as_str(), value.as_str()), ("resyncInterval", "soon"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_files_name_the_file() {
    for text in [
        "nonMasqueradeCIDRs: [10.0.0.0/8\n",
        "{\"nonMasqueradeCIDRs\": [}",
        "a: b: c\n",
    ] {
        match parse_fragment("/cfg/ip-masq-x", text, false) {
            Err(e @ ConfigError::Malformed { .. }) => assert!(
                e.to_string().starts_with("/cfg/ip-masq-x: malformed"),
                "{e}"
            ),
            other => panic!("{text}: {other:?}"),
        }
    }
    for text in ["- 10.0.0.0/8\n", "just a string\n", "42\n"] {
        assert!(
            matches!(
                parse_fragment("f", text, false),
                Err(ConfigError::NotAMapping { .. })
            ),
            "{text}"
        );
    }
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("60s"), Some(Duration::from_secs(60)));
    assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_go_duration("1.5m"), Some(Duration::from_secs(90)));
    assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
    for bad in ["", "60", "s", "0s", "1d", "-1s", "1m x"] {
        assert_eq!(parse_go_duration(bad), None, "{bad}");
    }
}

#[test]
fn aligned_cidr_parser() {
    assert_eq!(
        parse_aligned_cidr("f", "k", "10.0.0.0/8", false).unwrap(),
        "10.0.0.0/8".parse::<IpNet>().unwrap()
    );
    assert!(parse_aligned_cidr("f", "k", "0.0.0.0/0", false).is_ok());
    assert!(parse_aligned_cidr("f", "k", "10.0.0.1/32", false).is_ok());
}

#[test]
fn directory_reads_only_ip_masq_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("ip-masq-agent"),
        "nonMasqueradeCIDRs: [10.224.0.0/12]\n",
    )
    .unwrap();
    std::fs::write(
        p.join("ip-masq-agent-reconciled"),
        "{\"nonMasqueradeCIDRs\": [\"192.168.0.0/16\"], \"masqLinkLocal\": true}",
    )
    .unwrap();
    // Not read: other names (a broken one proves it), directories named ip-masq*.
    std::fs::write(p.join("other-config"), "this is : not [ valid").unwrap();
    std::fs::write(p.join(".ip-masq-hidden"), "garbage: [").unwrap();
    std::fs::create_dir(p.join("ip-masq-dir")).unwrap();
    // ConfigMap volumes: ip-masq-x -> ..data/ip-masq-x.
    std::fs::create_dir(p.join("..data")).unwrap();
    std::fs::write(
        p.join("..data/ip-masq-linked"),
        "nonMasqueradeCIDRs: [198.51.100.0/24]\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("..data/ip-masq-linked", p.join("ip-masq-linked")).unwrap();
    let frags = load_dir(p, false).unwrap();
    let names: Vec<String> = frags
        .iter()
        .map(|f| f.source.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "ip-masq-agent",
            "ip-masq-agent-reconciled",
            "ip-masq-linked"
        ]
    );
    let m = merge(&frags);
    assert_eq!(
        m.non_masquerade_cidrs,
        nets(&["10.224.0.0/12", "192.168.0.0/16", "198.51.100.0/24"])
    );
    assert!(m.masq_link_local);
    assert!(is_config_file_name("ip-masq") && !is_config_file_name("xip-masq"));

    // A missing directory means no files (defaults apply).
    assert!(load_dir(&p.join("absent"), false).unwrap().is_empty());

    // Errors from every bad file are reported together.
    std::fs::write(p.join("ip-masq-bad1"), "nonMasqueradeCIDRs: [10.0.0.1/8]\n").unwrap();
    std::fs::write(p.join("ip-masq-bad2"), "bogus: 1\n").unwrap();
    let errs = load_dir(p, false).unwrap_err();
    assert_eq!(errs.0.len(), 2);
    let msg = errs.to_string();
    assert!(
        msg.contains("ip-masq-bad1")
            && msg.contains("10.0.0.1/8")
            && msg.contains("ip-masq-bad2")
            && msg.contains("bogus"),
        "{msg}"
    );
}

#[test]
fn fingerprint_changes_when_a_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ip-masq-agent");
    std::fs::write(&f, "nonMasqueradeCIDRs: []\n").unwrap();
    let a = dir_fingerprint(dir.path());
    assert_eq!(a, dir_fingerprint(dir.path()));
    std::fs::write(&f, "nonMasqueradeCIDRs: [10.0.0.0/8]\n").unwrap();
    assert_ne!(a, dir_fingerprint(dir.path()));
    let b = dir_fingerprint(dir.path());
    std::fs::write(dir.path().join("unrelated"), "x").unwrap();
    // The directory's mtime changes too; that only costs one extra (no-op) reconcile.
    let _ = b;
}
