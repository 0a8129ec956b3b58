use super::*;
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<PluginConfig, PluginError> {
    PluginConfig::parse(v.to_string().as_bytes())
}

fn kubenet() -> serde_json::Value {
    json!({"cniVersion": "1.0.0", "name": "kubenet", "type": "aksnet-cni", "mode": "kubenet",
           "ipam": {"ranges": [[{"subnet": "10.244.1.0/24"}]]}})
}

fn field_of(e: PluginError) -> String {
    match e {
        PluginError::Config { field, .. } => field,
        PluginError::Pool(p) => format!("ipam.{p}"),
        other => panic!("not a config error: {other}"),
    }
}

#[test]
fn kubenet_defaults_match_aks() {
    let c = parse(kubenet()).unwrap();
    let Mode::Kubenet(k) = c.mode else {
        panic!("mode")
    };
    assert_eq!(k.bridge, "cbr0");
    assert!(k.is_gateway);
    assert!(!k.hairpin_mode && !k.promisc_mode);
    assert_eq!(k.mtu, None);
    assert!(!c.ip_masq);
    assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert!(k.routes.is_none());
    assert_eq!(
        k.pool.capacity(),
        253,
        "a /24 minus network, gateway and broadcast"
    );
}

#[test]
fn host_local_shorthand_and_aliases() {
    let mut v = kubenet();
    v["ipam"] = json!({"type": "host-local", "subnet": "10.244.2.0/24", "rangeStart": "10.244.2.10",
                       "rangeEnd": "10.244.2.19", "dataDir": "/tmp/x"});
    v["mode"] = json!("bridge");
    let c = parse(v).unwrap();
    let Mode::Kubenet(k) = c.mode else {
        panic!("mode")
    };
    assert_eq!(k.pool.capacity(), 10);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    let mut n = kubenet();
    n["mode"] = json!("transparent");
    assert!(matches!(parse(n).unwrap().mode, Mode::NodeSubnet(_)));
}

#[test]
fn version_errors_come_first() {
    let mut v = kubenet();
    v["cniVersion"] = json!("0.2.0");
    v["mode"] = json!("nope");
    assert!(matches!(parse(v).unwrap_err(), PluginError::Version { .. }));
    let mut v = kubenet();
    v.as_object_mut().unwrap().remove("cniVersion");
    assert_eq!(field_of(parse(v).unwrap_err()), "cniVersion");
}

#[test]
fn every_bad_field_is_named() {
    let cases = [
        ("name", json!(7), "name"),
        ("name", json!(""), "name"),
        ("mode", json!(1), "mode"),
        ("bridge", json!("a/b"), "bridge"),
        ("bridge", json!("sixteen-chars-xx"), "bridge"),
        ("isGateway", json!("true"), "isGateway"),
        ("promiscMode", json!(1), "promiscMode"),
        ("mtu", json!(70000), "mtu"),
        ("mtu", json!(-1), "mtu"),
        ("ipMasq", json!("no"), "ipMasq"),
        ("dataDir", json!("rel"), "dataDir"),
        ("dataDir", json!(5), "dataDir"),
        (
            "runtimeConfig",
            json!({"ips": "10.0.0.1"}),
            "runtimeConfig.ips",
        ),
        (
            "runtimeConfig",
            json!({"ips": ["nope"]}),
            "runtimeConfig.ips[0]",
        ),
        ("runtimeConfig", json!({"mac": 5}), "runtimeConfig.mac"),
        ("args", json!({"cni": {"ips": [1]}}), "args.cni.ips[0]"),
        ("dns", json!({"nameservers": "x"}), "dns.nameservers"),
        (
            "cni.dev/valid-attachments",
            json!({}),
            "cni.dev/valid-attachments",
        ),
        (
            "cni.dev/valid-attachments",
            json!([{"containerID": "a"}]),
            "cni.dev/valid-attachments[0]",
        ),
    ];
    for (key, value, field) in cases {
        let mut v = kubenet();
        v[key] = value.clone();
        let e = parse(v).expect_err(key);
        assert_eq!(field_of(e), field, "{key} = {value}");
    }
}

#[test]
fn ipam_errors_are_named() {
    let cases = [
        (json!("x"), "ipam"),
        (
            json!({"type": "dhcp", "ranges": [[{"subnet": "10.0.0.0/24"}]]}),
            "ipam.type",
        ),
        (json!({}), "ipam.ranges"),
        (json!({"ranges": []}), "ipam.ranges"),
        (json!({"ranges": [[]]}), "ipam.ranges[0]"),
        (json!({"ranges": [["x"]]}), "ipam.ranges[0][0]"),
        (json!({"ranges": [[{}]]}), "ipam.ranges[0][0].subnet"),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/33"}]]}),
            "ipam.ranges[0][0].subnet",
        ),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24", "gateway": "x"}]]}),
            "ipam.ranges[0][0].gateway",
        ),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24"}]], "routes": [{"gw": "10.0.0.1"}]}),
            "ipam.routes[0].dst",
        ),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24"}]], "routes": {}}),
            "ipam.routes",
        ),
    ];
    for (ipam, field) in cases {
        let mut v = kubenet();
        v["ipam"] = ipam.clone();
        assert_eq!(field_of(parse(v).expect_err("ipam")), field, "{ipam}");
    }
    // Semantic range errors come from the allocator's validation, prefixed ipam.
    let mut v = kubenet();
    v["ipam"] = json!({"ranges": [[{"subnet": "10.0.0.5/24"}]]});
    let e = field_of(parse(v).unwrap_err());
    assert!(e.starts_with("ipam.") && e.contains("10.0.0.5/24"), "{e}");
}

#[test]
fn requested_addresses_args_win_over_runtime_config() {
    let mut v = kubenet();
    v["runtimeConfig"] = json!({"ips": ["10.244.1.5/24"], "mac": "02:00:00:00:00:01"});
    let c = parse(v.clone()).unwrap();
    assert_eq!(
        c.requested_ips,
        vec!["10.244.1.5".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(c.requested_mac.as_deref(), Some("02:00:00:00:00:01"));
    v["args"] = json!({"cni": {"ips": ["10.244.1.9"]}});
    assert_eq!(
        parse(v).unwrap().requested_ips,
        vec!["10.244.1.9".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn gc_attachments_both_key_names_and_absent() {
    let mut v = kubenet();
    assert_eq!(parse(v.clone()).unwrap().valid_attachments, None);
    v["cni.dev/attachments"] = json!([{"containerID": "a", "ifname": "eth0"}]);
    assert_eq!(
        parse(v.clone()).unwrap().valid_attachments.unwrap().len(),
        1
    );
    v["cni.dev/valid-attachments"] = json!([]);
    assert_eq!(
        parse(v).unwrap().valid_attachments,
        Some(vec![]),
        "the newer key wins"
    );
}

#[test]
fn prev_result_of_any_version_and_unknown_keys() {
    let mut v = kubenet();
    v["prevResult"] =
        json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.244.1.5/24"}]});
    v["someRuntimeKey"] = json!(true);
    v["capabilities"] = json!({"portMappings": true});
    let c = parse(v).unwrap();
    assert_eq!(c.prev_result.unwrap().ips.len(), 1);
    assert_eq!(c.ignored_keys, vec!["someRuntimeKey".to_string()]);
    let mut v = kubenet();
    v["prevResult"] = json!({"ips": "bad"});
    assert!(matches!(
        parse(v).unwrap_err(),
        PluginError::Decode {
            what: "prevResult",
            ..
        }
    ));
}

#[test]
fn not_json_or_not_an_object() {
    assert!(matches!(
        PluginConfig::parse(b"{").unwrap_err(),
        PluginError::Decode { .. }
    ));
    assert_eq!(
        field_of(PluginConfig::parse(b"[1]").unwrap_err()),
        "(stdin)"
    );
}

#[test]
fn a_type_error_names_the_path_and_the_value() {
    let mut v = kubenet();
    v["ipam"]["ranges"] = json!([[{"subnet": "10.244.1.0/24", "rangeEnd": 7}]]);
    let e = parse(v).unwrap_err();
    let PluginError::Config { field, value, why } = e else {
        panic!("not a config error: {e}")
    };
    assert_eq!(field, "ipam.ranges[0][0].rangeEnd");
    assert_eq!(value, "7");
    assert!(why.contains("expected a string"), "{why}");
}

#[test]
fn the_derive_lists_the_keys_it_reads() {
    let names = raw::field_names();
    for key in [
        "mode",
        "ipam",
        "runtimeConfig",
        "prevResult",
        "cni.dev/valid-attachments",
    ] {
        assert!(names.contains(&key), "{key} in {names:?}");
    }
    let mut v = kubenet();
    for (key, value) in [
        ("isDefaultGateway", json!(true)),
        ("uplink", json!("eth0")),
        ("logMaxBytes", json!(8192)),
        ("asyncDelete", json!(false)),
        ("cniVersions", json!(["1.0.0"])),
    ] {
        v[key] = value;
    }
    let c = parse(v).expect("typed values");
    assert!(
        c.ignored_keys.is_empty() && !c.async_delete,
        "{:?}",
        c.ignored_keys
    );
}
