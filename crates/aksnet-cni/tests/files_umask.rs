//! The real plugin under `umask 000` (issue 10, item 5): a kubenet ADD run inside a node
//! network namespace of this test creates its data directory 0700 and its IPAM state and
//! lock files 0600. Named `aksh1…`; the namespaces (and so the bridge and veths in them)
//! are deleted on drop, also when the test fails.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use aksnet_testkit::Netns;

const PLUGIN: &str = env!("CARGO_BIN_EXE_aksnet-cni");

/// Runs the plugin in `node` with umask 0, the way a runtime calls it.
fn plugin_umask_000(node: &Netns, command: &str, pod: &Netns, conf: &str) -> (bool, String) {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            node.name(),
            "sh",
            "-c",
            "umask 000; exec \"$0\"",
        ])
        .arg(PLUGIN)
        .env_clear()
        .env("AKSNET_CNI_LOG_FILE", "")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_PATH", Path::new(PLUGIN).parent().unwrap())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "aksh1-umask")
        .env("CNI_NETNS", format!("/run/netns/{}", pod.name()))
        .env("CNI_IFNAME", "eth0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

#[test]
fn kubenet_add_under_umask_000_creates_0700_dir_and_0600_files() {
    aksnet_testkit::require_root();
    let id = std::process::id();
    let node = Netns::create(&format!("aksh1n{id}"));
    let pod = Netns::create(&format!("aksh1p{id}"));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("var").join("aksnet");
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "kubenet",
        "type": "aksnet-cni",
        "mode": "kubenet",
        "bridge": format!("aksh1b{}", id % 100_000),
        "isGateway": true,
        "dataDir": data,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]]}
    })
    .to_string();
    let (ok, out) = plugin_umask_000(&node, "ADD", &pod, &conf);
    assert!(ok, "ADD failed: {out}");
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("kubenet.json")), 0o600, "IPAM state");
    assert_eq!(mode(&data.join("kubenet.lock")), 0o600, "IPAM lock");
    assert_eq!(
        mode(&tmp.path().join("var")),
        0o755,
        "parent created on the way"
    );
    let (ok, out) = plugin_umask_000(&node, "DEL", &pod, &conf);
    assert!(ok, "DEL failed: {out}");
}
