//! The protocol surface of the real binary: VERSION, error objects and codes
//! (containernetworking/cni SPEC.md "Error"; docs/cni-clients.md#errors, #conformance).
//! None of these calls may change anything: each runs with a fresh data dir
//! that must stay empty.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use serde_json::json;

fn kubenet(dir: &std::path::Path) -> serde_json::Value {
    kubenet_conf("1.1.0", "aksnt-proto", "aksntbproto", dir, "10.252.0.0/24")
}

fn assert_untouched(dir: &tempfile::TempDir) {
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed call left files: {left:?}");
    assert!(
        !host_link_exists("aksntbproto"),
        "a failed call created the bridge"
    );
}

#[test]
fn version_lists_every_supported_version() {
    // libcni's probe (docs/cni-clients.md#environment).
    let o = call(
        &[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_CONTAINERID", ""),
            ("CNI_NETNS", "dummy"),
            ("CNI_IFNAME", "dummy"),
        ],
        r#"{"cniVersion":"1.0.0"}"#,
    )
    .expect_ok();
    let v = o.json();
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // With an empty stdin too.
    let v = call(&[("CNI_COMMAND", "VERSION")], "").expect_ok().json();
    assert_eq!(v["cniVersion"], "1.1.0");
}

#[test]
fn missing_environment_is_code_4_naming_the_variables() {
    let dir = tempfile::tempdir().unwrap();
    let o = call(&[("CNI_COMMAND", "ADD")], &kubenet(dir.path()).to_string());
    assert_eq!(o.code(), 4);
    for var in ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS"] {
        assert!(o.msg().contains(var), "{}", o.msg());
    }
    assert_eq!(call(&[], "{}").code(), 4, "no CNI_COMMAND");
    assert_eq!(call(&[("CNI_COMMAND", "PUT")], "{}").code(), 4);
    let bad_if = call(
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "way-too-long-ifname"),
        ],
        &kubenet(dir.path()).to_string(),
    );
    assert_eq!(bad_if.code(), 4);
    assert!(bad_if.msg().contains("way-too-long-ifname"));
    assert_untouched(&dir);
}

#[test]
fn unknown_cni_args_need_ignore_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let o = verb(
        None,
        "ADD",
        "c",
        "/run/netns/x",
        &kubenet(dir.path()),
        "FOO=bar",
    );
    assert_eq!(o.code(), 4);
    assert!(o.msg().contains("FOO"));
    assert_untouched(&dir);
}

#[test]
fn undecodable_stdin_is_code_6() {
    for bad in ["", "{", "not json", "[1,2"] {
        let o = call(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c"),
                ("CNI_NETNS", "/run/netns/x"),
                ("CNI_IFNAME", "eth0"),
            ],
            bad,
        );
        assert_eq!(o.code(), 6, "stdin {bad:?}: {}", o.stdout);
    }
}

#[test]
fn unsupported_version_is_code_1_with_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kubenet(dir.path());
    c["cniVersion"] = json!("0.2.0");
    let o = verb(None, "ADD", "c", "/run/netns/x", &c, "");
    assert_eq!(o.code(), 1);
    assert!(o.json()["details"].as_str().unwrap_or("").contains("1.1.0"));
    // CHECK below 0.4.0, GC and STATUS below 1.1.0.
    c["cniVersion"] = json!("0.3.1");
    assert_eq!(verb(None, "CHECK", "c", "/run/netns/x", &c, "").code(), 1);
    c["cniVersion"] = json!("1.0.0");
    assert_eq!(call(&[("CNI_COMMAND", "GC")], &c.to_string()).code(), 1);
    assert_eq!(call(&[("CNI_COMMAND", "STATUS")], &c.to_string()).code(), 1);
    assert_untouched(&dir);
}

#[test]
fn invalid_config_is_code_7_naming_field_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let base = kubenet(dir.path());
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("mode", json!(null), "mode"),
        ("mode", json!("swift"), "swift"),
        (
            "ipam",
            json!({"ranges": [[{"subnet": "10.1.2.3/24"}]]}),
            "10.1.2.3/24",
        ),
        (
            "ipam",
            json!({"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]}),
            "rangeStart",
        ),
        (
            "ipam",
            json!({"type": "dhcp", "ranges": [[{"subnet": "10.1.0.0/24"}]]}),
            "dhcp",
        ),
        ("ipam", json!(null), "ipam"),
        ("mtu", json!(12), "mtu"),
        ("hairpinMode", json!("yes"), "hairpinMode"),
        ("name", json!("bad/name"), "bad/name"),
        ("dataDir", json!("relative/dir"), "relative/dir"),
        ("runtimeConfig", json!({"mac": "zz:zz"}), "zz:zz"),
    ];
    for (field, value, needle) in cases {
        let mut c = base.clone();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(field);
        } else {
            c[field] = value;
        }
        let ns = NetnsGuard::new(&format!("aksnt-{}", tag("cfg")));
        let o = verb(None, "ADD", "c", &ns.path(), &c, "");
        assert_eq!(o.code(), 7, "{field}: {}", o.stdout);
        assert!(
            o.msg().contains(needle),
            "{field}: message must name {needle:?}: {}",
            o.msg()
        );
        let (_, links) = ns.exec(&["ip", "-o", "link"]);
        assert!(
            !links.contains("eth0"),
            "{field}: a refused ADD created a link"
        );
    }
    assert_untouched(&dir);
}

#[test]
fn add_into_a_missing_netns_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = verb(
        None,
        "ADD",
        "c",
        "/run/netns/aksnt-missing",
        &kubenet(dir.path()),
        "",
    );
    assert_eq!(o.code(), 3, "{}", o.stdout);
    assert!(o.msg().contains("/run/netns/aksnt-missing"));
    assert_untouched(&dir);
}

#[test]
fn a_netns_path_that_is_not_a_network_namespace_changes_nothing() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-a-netns");
    std::fs::write(&plain, "").unwrap();
    let data = tempfile::tempdir().unwrap();
    for path in [plain.display().to_string(), "/proc/self/ns/mnt".to_string()] {
        let o = verb(None, "ADD", "c", &path, &kubenet(data.path()), "");
        assert_eq!(o.code(), 3, "{path}: {}", o.stdout);
    }
    assert_untouched(&data);
}

#[test]
fn corrupt_state_is_reported_and_never_reset() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("aksnt-proto.json");
    std::fs::write(&state, "{ this is not the state").unwrap();
    let ns = NetnsGuard::new(&format!("aksnt-{}", tag("cor")));
    let o = verb(None, "ADD", "c", &ns.path(), &kubenet(dir.path()), "");
    assert_eq!(o.code(), 102, "{}", o.stdout);
    assert!(
        o.msg().contains(&state.display().to_string()),
        "{}",
        o.msg()
    );
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "{ this is not the state"
    );
    let _ = LinkGuard("aksntbproto".into());
}

#[test]
fn a_person_asking_gets_an_answer_on_stderr() {
    let o = std::process::Command::new(PLUGIN)
        .arg("--version")
        .env_clear()
        .env("AKSNET_CNI_LOG_FILE", "")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(o.stdout.is_empty(), "stdout is the protocol channel");
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(text.contains("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"), "{text}");
}
