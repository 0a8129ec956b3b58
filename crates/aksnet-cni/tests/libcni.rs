//! Through real libcni (Debian's 1.1.2, the library podman, containerd and
//! kubelet are built on): VERSION negotiation (`validate`), ADD with result
//! parsing and caching, CHECK, DEL twice — and chained with the reference
//! `tuning` plugin, which consumes our result as prevResult and configures the
//! interface we created (docs/cni-clients.md#libcni, #conformance). The driver, ~100 lines of Go in
//! tests/libcni-driver, built here with Debian's Go.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn driver(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libcni-driver/main.go");
    let out = dir.join("cnidrv");
    for (what, p) in [
        ("golang-go", "/usr/bin/go"),
        (
            "golang-github-appc-cni-dev",
            "/usr/share/gocode/src/github.com/containernetworking/cni/libcni",
        ),
    ] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: install {what} (scripts/install-deps.sh)"
        );
    }
    let o = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.join("gocache"))
        .output()
        .expect("go build");
    assert!(
        o.status.success(),
        "building the libcni driver: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Runs the driver inside the test's node netns, so the plugins it execs (ours
/// and the reference ones) work there, not in the machine's own namespace.
fn run(
    node: &NetnsGuard,
    drv: &Path,
    plugins: &str,
    cache: &Path,
    args: &[&str],
) -> (bool, String) {
    let o = Command::new("ip")
        .args(["netns", "exec", &node.name])
        .arg(drv)
        .arg("-cni-path")
        .arg(plugins)
        .arg("-cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("cnidrv");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn libcni_drives_aksnet_cni_alone_and_chained_with_reference_plugins() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let drv = driver(tmp.path());
    let t = tag("lc");
    let bridge = format!("aksntb{t}");
    let node = NetnsGuard::new(&format!("aksnt-{t}-node"));
    let data = tmp.path().join("data");
    // Our plugin first, then the reference plugins (spec <= 1.0.0 for them).
    let plugin_dir = Path::new(PLUGIN).parent().unwrap().display().to_string();
    let plugins = format!("{plugin_dir}:/usr/lib/cni");
    for (version, chain) in [("0.4.0", false), ("1.0.0", false), ("1.0.0", true)] {
        let mut list = json!({
            "cniVersion": version,
            "name": format!("aksnt-{t}"),
            "plugins": [{
                "type": "aksnet-cni", "mode": "kubenet", "bridge": bridge, "dataDir": data,
                "logFile": data.join("aksnet-cni.log"),
                "ipam": {"ranges": [[{"subnet": "10.249.0.0/24"}]]}
            }]
        });
        if chain {
            assert!(
                Path::new("/usr/lib/cni/tuning").exists(),
                "install containernetworking-plugins"
            );
            list["plugins"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}}));
        }
        let file = tmp.path().join(format!("net-{version}-{chain}.conflist"));
        std::fs::write(&file, list.to_string()).unwrap();
        let f = file.display().to_string();
        let cache = tmp.path().join("cache");

        let (ok, out) = run(&node, &drv, &plugins, &cache, &["validate", &f]);
        assert!(ok, "{version}: validate: {out}");
        let ns = NetnsGuard::new(&format!("aksnt-{}", tag("lc")));
        let id = format!("lc{version}{chain}").replace('.', "");
        let (ok, out) = run(&node, &drv, &plugins, &cache, &["add", &f, &ns.path(), &id]);
        assert!(ok, "{version}: add: {out}");
        let res: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        let ip = res["ips"][0]["address"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.249.0."), "{version}: {res}");
        if chain {
            let (_, rp) = ns.exec(&["cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter"]);
            assert_eq!(rp.trim(), "2", "tuning ran after us on our result");
        }
        let (ok, out) = run(
            &node,
            &drv,
            &plugins,
            &cache,
            &["check", &f, &ns.path(), &id],
        );
        assert!(ok, "{version}: check: {out}");
        for _ in 0..2 {
            let (ok, out) = run(&node, &drv, &plugins, &cache, &["del", &f, &ns.path(), &id]);
            assert!(ok, "{version}: del: {out}");
        }
        assert!(
            allocations(&data, &format!("aksnt-{t}")).is_empty(),
            "{version}: address leaked"
        );
    }
}
