//! deploy/ validated against the Kubernetes API types (issue 14, item 2): every manifest
//! deserializes into its `k8s-openapi` type (errors name the field path), and serializing
//! it back loses no key, so a misspelt or misplaced field fails instead of being dropped
//! by the API server. Then the facts docs/kubernetes.md states are checked: host network,
//! the capabilities and nothing more, the downward-API variables, the ConfigMap's
//! ip-masq-agent config parsing as the agent parses it; and the systemd units' commands.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every key of `orig` must be in `back` (recursively): k8s-openapi ignores unknown keys.
fn lost_keys(orig: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(bv) => lost_keys(v, bv, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) => {
            for (i, (ov, bv)) in o.iter().zip(b).enumerate() {
                lost_keys(ov, bv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn strict<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) -> T {
    let typed: T = serde_path_to_error::deserialize(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: field {}: {}", e.path(), e.inner()));
    let back = serde_json::to_value(&typed).unwrap();
    let mut lost = Vec::new();
    lost_keys(doc, &back, "", &mut lost);
    assert!(lost.is_empty(), "{file}: keys unknown to the API: {lost:?}");
    typed
}

fn load(name: &str) -> Vec<Value> {
    let path = deploy().join("kubernetes").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_norway::Value = serde::Deserialize::deserialize(d).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .collect()
}

#[test]
fn every_manifest_is_a_valid_kubernetes_object_with_no_unknown_field() {
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(deploy().join("kubernetes")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        for doc in load(&name) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            match kind.as_str() {
                "DaemonSet" => drop(strict::<DaemonSet>(&name, &doc)),
                "ConfigMap" => drop(strict::<ConfigMap>(&name, &doc)),
                "ServiceAccount" => drop(strict::<ServiceAccount>(&name, &doc)),
                "ClusterRole" => drop(strict::<ClusterRole>(&name, &doc)),
                "ClusterRoleBinding" => drop(strict::<ClusterRoleBinding>(&name, &doc)),
                other => panic!("{name}: kind {other} has no check here"),
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "ServiceAccount"
        ]
    );
}

#[test]
fn the_agent_may_only_read_the_four_kinds_it_watches() {
    let docs = load("rbac.yaml");
    let role: ClusterRole = strict("rbac.yaml", &docs[1]);
    let mut granted = Vec::new();
    for rule in role.rules.unwrap() {
        assert_eq!(rule.verbs, ["get", "list", "watch"], "{rule:?}");
        let group = rule.api_groups.unwrap().join(",");
        for r in rule.resources.unwrap() {
            granted.push(format!("{group}/{r}"));
        }
    }
    granted.sort();
    assert_eq!(
        granted,
        [
            "/namespaces",
            "/nodes",
            "/pods",
            "networking.k8s.io/networkpolicies"
        ]
    );
    let binding: ClusterRoleBinding = strict("rbac.yaml", &docs[2]);
    assert_eq!(binding.role_ref.name, "aksnet-agent");
    let sa = &binding.subjects.unwrap()[0];
    assert_eq!(
        (sa.name.as_str(), sa.namespace.as_deref()),
        ("aksnet", Some("kube-system"))
    );
}

#[test]
fn a_misspelt_field_is_caught() {
    let mut doc = load("daemonset.yaml").remove(0);
    doc["spec"]["template"]["spec"]["hostNetwrok"] = Value::Bool(true);
    let r = std::panic::catch_unwind(|| strict::<DaemonSet>("daemonset.yaml", &doc));
    assert!(r.is_err(), "hostNetwrok was accepted");
}

#[test]
fn daemonset_has_host_network_and_only_the_documented_capabilities() {
    let ds: DaemonSet = strict("daemonset.yaml", &load("daemonset.yaml")[0]);
    let pod = ds.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let init = &pod.init_containers.unwrap()[0];
    let agent = &pod.containers[0];
    let caps = |c: &k8s_openapi::api::core::v1::Container| {
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_ne!(sc.privileged, Some(true), "{}", c.name);
        let caps = sc.capabilities.unwrap();
        (caps.drop.unwrap_or_default(), caps.add.unwrap_or_default())
    };
    assert_eq!(caps(init), (vec!["ALL".to_string()], vec![]));
    assert_eq!(
        caps(agent),
        (vec!["ALL".to_string()], vec!["NET_ADMIN".to_string()])
    );
    assert_eq!(init.args.as_ref().unwrap()[0], "install");
    let args = agent.args.as_ref().unwrap();
    assert_eq!(args[0], "agent");
    assert!(args.iter().any(|a| a == "--in-cluster"), "{args:?}");
    // The API token reaches the agent container only.
    let mounts = |c: &k8s_openapi::api::core::v1::Container| -> Vec<String> {
        c.volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_path)
            .collect()
    };
    let token = "/var/run/secrets/kubernetes.io/serviceaccount".to_string();
    assert!(mounts(agent).contains(&token));
    assert!(!mounts(init).contains(&token));
    let env: Vec<(String, String)> = init
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| {
            let f = e.value_from.unwrap().field_ref.unwrap().field_path;
            (e.name, f)
        })
        .collect();
    assert_eq!(
        env,
        [
            ("NODE_NAME".to_string(), "spec.nodeName".to_string()),
            ("NODE_IP".to_string(), "status.hostIP".to_string())
        ]
    );
    // Every host path it uses is one of the five documented (the plugin's log read-only).
    let mut host: Vec<String> = pod
        .volumes
        .unwrap()
        .into_iter()
        .filter_map(|v| v.host_path.map(|h| h.path))
        .collect();
    host.sort();
    assert_eq!(
        host,
        [
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "/run/aksnet",
            "/var/lib/aksnet",
            "/var/log/aksnet"
        ]
    );
}

#[test]
fn configmap_ip_masq_config_parses_as_the_agent_parses_it() {
    let cm: ConfigMap = strict("configmap.yaml", &load("configmap.yaml")[0]);
    let data = cm.data.unwrap();
    let text = &data["ip-masq-agent"];
    let frag = aksnet_agent::masq_config::parse_fragment("ip-masq-agent", text, false).unwrap();
    assert_eq!(frag.non_masquerade_cidrs.len(), 1);
    for key in [
        "AKSNET_MODE",
        "AKSNET_SUBNET",
        "AKSNET_MAX_PODS",
        "AKSNET_STORE",
    ] {
        assert!(data.contains_key(key), "{key} missing");
    }
}

#[test]
fn systemd_units_run_install_oneshot_and_the_agent_with_net_admin_only() {
    let unit = |n: &str| std::fs::read_to_string(deploy().join("systemd").join(n)).unwrap();
    let install = unit("aksnet-install.service");
    assert!(install.contains("\nType=oneshot\n"), "{install}");
    assert!(install.contains("ExecStart=/usr/local/bin/aksnet install "));
    assert!(install.contains("Before=containerd.service crio.service"));
    let agent = unit("aksnet-agent.service");
    assert!(agent.contains("ExecStart=/usr/local/bin/aksnet agent "));
    assert!(agent.contains("\nCapabilityBoundingSet=CAP_NET_ADMIN\n"));
    assert!(agent.contains("\nRequires=aksnet-install.service\n"));
    for line in install.lines().chain(agent.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        assert!(line.contains('='), "not a key=value line: {line}");
    }
}

/// Runs `aksnet <args> --help`: clap parses every flag and value before it (an unknown
/// flag or a bad value fails with status 2) and checks nothing else, so this proves a
/// command line is accepted by the CLI without running it.
fn assert_cli_accepts(what: &str, args: &[String]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aksnet"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: aksnet {args:?} refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The words systemd makes of an ExecStart after `/usr/local/bin/aksnet`: `${VAR}` is
/// replaced inside a word, a word `$VAR` becomes the value's words (none when empty)
/// (systemd.service(5), "Command lines").
fn systemd_words(unit: &str, env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/aksnet "))
        .unwrap();
    let var = |k: &str| env.get(k).unwrap_or_else(|| panic!("${k} not set")).clone();
    let mut words = Vec::new();
    for w in exec.split_whitespace() {
        if let Some(k) = w.strip_prefix('$').filter(|k| !k.starts_with('{')) {
            words.extend(var(k).split_whitespace().map(str::to_string));
            continue;
        }
        let mut w = w.to_string();
        while let Some(start) = w.find("${") {
            let end = start + w[start..].find('}').unwrap();
            w = format!(
                "{}{}{}",
                &w[..start],
                var(&w[start + 2..end]),
                &w[end + 1..]
            );
        }
        words.push(w);
    }
    words
}

fn env_file(name: &str) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(deploy().join("systemd").join(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_units_and_the_daemonset_run_commands_the_cli_accepts_in_both_modes() {
    let unit = |n: &str| std::fs::read_to_string(deploy().join("systemd").join(n)).unwrap();
    let nodesubnet = env_file("aksnet.env");
    let mut kubenet = nodesubnet.clone();
    kubenet.insert("AKSNET_MODE".into(), "kubenet".into());
    kubenet.insert(
        "AKSNET_INSTALL_ARGS".into(),
        "--pod-cidr=10.244.1.0/24".into(),
    );
    for (mode, env) in [("nodesubnet", &nodesubnet), ("kubenet", &kubenet)] {
        for u in ["aksnet-install.service", "aksnet-agent.service"] {
            assert_cli_accepts(&format!("{u} ({mode})"), &systemd_words(&unit(u), env));
        }
        // What each mode needs beyond parsing (checked by the agent's and install's own
        // validation at run time): the mode's non-masquerade default, kubenet's pod CIDR.
        let agent = systemd_words(&unit("aksnet-agent.service"), env);
        let install = systemd_words(&unit("aksnet-install.service"), env);
        let (flag, install_flag) = match mode {
            "kubenet" => ("--cluster-pod-cidr=10.", "--pod-cidr=10."),
            _ => ("--vnet-cidr=10.", "--subnet=10."),
        };
        assert!(agent.iter().any(|w| w.starts_with(flag)), "{agent:?}");
        assert!(
            install.iter().any(|w| w.starts_with(install_flag)),
            "{install:?}"
        );
    }
    // The LAN unit with each of its env file's AKSNET_AGENT_ARGS lines.
    let lan = std::fs::read_to_string(deploy().join("systemd/aksnet-lan.env")).unwrap();
    for line in lan.lines().filter(|l| l.contains("AKSNET_AGENT_ARGS=")) {
        let mut env = env_file("aksnet-lan.env");
        let args = line.trim_start_matches('#').split_once('=').unwrap().1;
        env.insert("AKSNET_AGENT_ARGS".into(), args.to_string());
        let words = systemd_words(&unit("aksnet-agent-lan.service"), &env);
        assert_cli_accepts("aksnet-agent-lan.service", &words);
    }
    // The DaemonSet's containers, `$(VAR)` expanded from the ConfigMap and the downward API.
    let cm: ConfigMap = strict("configmap.yaml", &load("configmap.yaml")[0]);
    let mut vars = cm.data.unwrap();
    vars.insert("NODE_NAME".into(), "node-1".into());
    let ds: DaemonSet = strict("daemonset.yaml", &load("daemonset.yaml")[0]);
    let pod = ds.spec.unwrap().template.spec.unwrap();
    let containers = pod
        .init_containers
        .unwrap()
        .into_iter()
        .chain(pod.containers);
    for c in containers {
        let args: Vec<String> = c
            .args
            .unwrap()
            .iter()
            .map(|a| {
                vars.iter()
                    .fold(a.clone(), |a, (k, v)| a.replace(&format!("$({k})"), v))
            })
            .collect();
        assert!(!args.iter().any(|a| a.contains("$(")), "{args:?}");
        assert_cli_accepts(&format!("daemonset container {}", c.name), &args);
    }
}
