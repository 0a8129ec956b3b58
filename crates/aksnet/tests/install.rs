//! `aksnet install` / `aksnet uninstall` through the real binary, into temp directories
//! (issue 14, item 2): atomic copy of the plugin, the conflist at the chosen cniVersion,
//! idempotence, `node join` from the downward API's NODE_NAME, and an uninstall that
//! reverses exactly what install did.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

fn aksnet(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("NODE_NAME").env_remove("NODE_IP");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn base_args(t: &Path) -> Vec<String> {
    [
        "--cni-bin-dir",
        &t.join("bin").display().to_string(),
        "--cni-conf-dir",
        &t.join("net.d").display().to_string(),
        "--plugin",
        &t.join("aksnet-cni.build").display().to_string(),
        "--data-dir",
        &t.join("data").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn kubenet_install_is_idempotent_and_uninstall_restores_what_was_there() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::write(t.join("aksnet-cni.build"), b"\x7fELF pretend plugin").unwrap();
    // Someone else's conflist of the same name: install replaces it, uninstall restores it.
    fs::create_dir(t.join("net.d")).unwrap();
    fs::write(t.join("net.d/10-aksnet.conflist"), "{\"old\":true}").unwrap();
    let mut args: Vec<String> = [
        "install",
        "--mode",
        "kubenet",
        "--pod-cidr",
        "10.244.1.0/24",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(base_args(t));
    args.extend(["--cni-version".to_string(), "1.0.0".to_string()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(aksnet(&a, &[]));
    assert!(out.contains("aksnet-cni: created"), "{out}");
    assert!(
        out.contains("10-aksnet.conflist: replaced (cniVersion 1.0.0)"),
        "{out}"
    );
    let bin = t.join("bin/aksnet-cni");
    assert_eq!(fs::read(&bin).unwrap(), b"\x7fELF pretend plugin");
    assert_eq!(fs::metadata(&bin).unwrap().mode() & 0o7777, 0o755);
    let list: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("net.d/10-aksnet.conflist")).unwrap()).unwrap();
    assert_eq!(list["cniVersion"], "1.0.0");
    assert_eq!(list["plugins"][0]["mode"], "kubenet");
    assert_eq!(
        list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.244.1.0/24"
    );

    // Again: nothing changes.
    let out = ok(aksnet(&a, &[]));
    assert!(
        out.contains("aksnet-cni: unchanged") && out.contains("conflist: unchanged"),
        "{out}"
    );

    let out = ok(aksnet(
        &[
            "uninstall",
            "--data-dir",
            &t.join("data").display().to_string(),
        ],
        &[],
    ));
    assert!(out.contains("removed") && out.contains("restored"), "{out}");
    assert!(!bin.exists());
    assert_eq!(
        fs::read_to_string(t.join("net.d/10-aksnet.conflist")).unwrap(),
        "{\"old\":true}"
    );
    assert!(!t.join("data/.install-record.json").exists());
    let left: Vec<_> = fs::read_dir(t.join("net.d")).unwrap().collect();
    assert_eq!(left.len(), 1, "only the restored conflist is left");
}

#[test]
fn nodesubnet_install_joins_with_node_name_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::write(t.join("aksnet-cni.build"), b"plugin").unwrap();
    let store = t.join("cluster").display().to_string();
    let mut args: Vec<String> = [
        "install",
        "--mode",
        "nodesubnet",
        "--subnet",
        "10.240.0.0/24",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(base_args(t));
    args.extend(["--store".to_string(), store.clone()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();

    // No node name anywhere: a usage error naming the flag and the variable.
    let o = aksnet(&a, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NODE_NAME"));

    let out = ok(aksnet(&a, &[("NODE_NAME", "aks-nodepool1-0")]));
    assert!(out.contains("cniVersion 1.0.0"), "{out}");
    let pool: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("data/node-pool.json")).unwrap()).unwrap();
    assert_eq!(pool["node"], "aks-nodepool1-0");
    let list: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("net.d/10-aksnet.conflist")).unwrap()).unwrap();
    assert_eq!(list["plugins"][0]["mode"], "nodesubnet");

    // NODE_IP must match the address the store reserved for the node.
    let o = aksnet(
        &a,
        &[
            ("NODE_NAME", "aks-nodepool1-0"),
            ("NODE_IP", "10.240.0.200"),
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("10.240.0.200"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    ok(aksnet(
        &[
            "uninstall",
            "--data-dir",
            &t.join("data").display().to_string(),
        ],
        &[],
    ));
    assert!(!t.join("data/node-pool.json").exists(), "the node left");
    assert!(!t.join("bin/aksnet-cni").exists());
    assert!(!t.join("net.d/10-aksnet.conflist").exists());
    let listed = ok(aksnet(
        &["node", "list", "--store", &store, "--format", "json"],
        &[],
    ));
    assert!(!listed.contains("aks-nodepool1-0"), "{listed}");
}

/// `aksnet install --mode <mode> --subnet 10.240.0.0/24 <extra>` into `t`, as node
/// aksov-node-0; returns the output.
fn install_model(t: &Path, mode: &str, extra: &[&str]) -> Output {
    fs::write(t.join("aksnet-cni.build"), b"plugin").unwrap();
    let mut args: Vec<String> = ["install", "--mode", mode, "--subnet", "10.240.0.0/24"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    args.extend(base_args(t));
    args.extend([
        "--store".to_string(),
        t.join("cluster").display().to_string(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    aksnet(&a, &[("NODE_NAME", "aksov-node-0")])
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn uninstall(t: &Path) {
    ok(aksnet(
        &[
            "uninstall",
            "--data-dir",
            &t.join("data").display().to_string(),
        ],
        &[],
    ));
    assert!(!t.join("data/node-pool.json").exists(), "the node left");
    assert!(!t.join("net.d/10-aksnet.conflist").exists());
}

#[test]
fn overlay_install_joins_with_a_24_of_the_pod_cidr() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The pod CIDR is required, and one overlapping the node subnet is refused with
    // AKS's reason; neither writes a conflist.
    let o = install_model(t, "overlay", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pod-cidr-from"));
    let o = install_model(t, "overlay", &["--pod-cidr-from", "10.240.0.0/16"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("overlaps the node subnet 10.240.0.0/24") && err.contains("must not overlap"),
        "{err}"
    );
    assert!(!t.join("net.d/10-aksnet.conflist").exists());
    assert!(!t.join("data/node-pool.json").exists());

    ok(install_model(
        t,
        "overlay",
        &["--pod-cidr-from", "192.168.0.0/16"],
    ));
    let pool = read_json(&t.join("data/node-pool.json"));
    assert_eq!(pool["version"], 3);
    assert_eq!(pool["maxPods"], 250, "AKS's Overlay default");
    assert_eq!(pool["overlay"]["podCidr"], "192.168.0.0/24");
    assert_eq!(pool["podIps"].as_array().map(Vec::len), Some(250));
    let list = read_json(&t.join("net.d/10-aksnet.conflist"));
    assert_eq!(list["plugins"][0]["mode"], "overlay");
    // The node costs one address of the node subnet.
    let listed = ok(aksnet(
        &[
            "node",
            "list",
            "--store",
            &t.join("cluster").display().to_string(),
            "--format",
            "json",
        ],
        &[],
    ));
    assert!(listed.contains("aksov-node-0"), "{listed}");
    uninstall(t);
    let routes = ok(aksnet(
        &[
            "node",
            "routes",
            "--store",
            &t.join("cluster").display().to_string(),
        ],
        &[],
    ));
    assert!(
        !routes.contains("192.168.0.0/24"),
        "the /24 was freed: {routes}"
    );
}

#[test]
fn podsubnet_install_joins_with_blocks_of_the_pod_subnet() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let o = install_model(t, "podsubnet", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pod-subnet"));
    ok(install_model(
        t,
        "podsubnet",
        &[
            "--pod-subnet",
            "10.241.0.0/24",
            "--pod-allocation",
            "static",
            "--max-pods",
            "31",
        ],
    ));
    let pool = read_json(&t.join("data/node-pool.json"));
    assert_eq!(pool["podSubnet"]["allocation"], "static");
    assert_eq!(
        pool["podSubnet"]["blocks"].as_array().map(Vec::len),
        Some(2)
    );
    let list = read_json(&t.join("net.d/10-aksnet.conflist"));
    assert_eq!(list["plugins"][0]["mode"], "podsubnet");
    uninstall(t);
}
