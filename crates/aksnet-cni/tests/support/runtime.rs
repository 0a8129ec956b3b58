//! Shared helpers of the real-runtime tests (`runtime_podman.rs`, `runtime_containerd.rs`):
//! prerequisites that fail loudly, commands that fail with their stderr, a busybox image built
//! from the host's busybox-static (no registry), the plugin's IPAM state, host links, and Drop
//! guards that put the machine back the way it was (working rules: clean up even on failure).
//!
//! Included with `#[path = "support/runtime.rs"] mod runtime;` so it does not depend on any
//! other file in `tests/support/`.

#![allow(dead_code)] // each test binary uses a subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)] // each test binary uses a subset
pub use aksnet_testkit::{link_exists, require_root, run_ok, run_quiet, LinkGuard};

/// The plugin binary cargo built for this test run.
pub fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aksnet-cni"))
}

/// The statically linked busybox of Debian's `busybox-static` (the image's only binary).
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets the test containers use, linked to busybox in the image.
const APPLETS: &[&str] = &[
    "sh", "ip", "ping", "sleep", "cat", "touch", "ls", "true", "usleep",
];

/// Fails the test, naming every missing program, when one is not on PATH.
/// Nothing is installed at test time: `scripts/install-deps.sh` does that.
pub fn require_tools(what: &str, tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_in_path(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: missing on PATH: {} (install with scripts/install-deps.sh, as root)",
        missing.join(", ")
    );
    let busybox = Path::new(BUSYBOX);
    assert!(
        busybox.exists(),
        "{what}: {BUSYBOX} is missing (Debian package busybox-static; scripts/install-deps.sh)"
    );
    require_root();
}

pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `aksnt` + tag + something unique per process and call; at most 15 bytes for short tags
/// so it is usable as a link name (IFNAMSIZ).
pub fn unique(tag: &str) -> String {
    let s = aksnet_testkit::tag(&format!("aksnt{tag}"));
    assert!(s.len() <= 15, "name {s} too long for a link");
    s
}

/// A /24 third octet unique to this process for test `slot` (0..4), so two runs of the
/// suite at once do not put the same prefix on two host bridges.
pub fn subnet_octet(slot: u8) -> u8 {
    let pid = u8::try_from(std::process::id() % 50).unwrap_or(0);
    slot * 50 + pid + 1
}

pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The address `ip -4 -o addr show eth0` prints, e.g. `("10.248.3.2", 24)`.
pub fn parse_ip_addr_show(text: &str) -> (Ipv4Addr, u8) {
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no inet address in {text:?}"));
    let (a, p) = cidr
        .split_once('/')
        .unwrap_or_else(|| panic!("no prefix in {cidr:?}"));
    (a.parse().unwrap(), p.parse().unwrap())
}

/// A usable host of `10.248.<octet>.0/24`: not the network, the gateway (.1) or broadcast.
pub fn assert_pod_address(ip: Ipv4Addr, octet: u8) {
    let o = ip.octets();
    assert_eq!(
        (o[0], o[1], o[2]),
        (10, 248, octet),
        "{ip} is not in 10.248.{octet}.0/24"
    );
    assert!(
        !matches!(o[3], 0 | 1 | 255),
        "{ip}: network, gateway or broadcast handed out"
    );
}

/// kubenet-mode conflist in the shape podman writes (0.4.0) or a current one (1.0.0).
pub fn kubenet_conflist(
    version: &str,
    name: &str,
    bridge: &str,
    octet: u8,
    data_dir: &Path,
) -> String {
    serde_json::json!({
        "cniVersion": version,
        "name": name,
        "plugins": [{
            "type": "aksnet-cni",
            "mode": "kubenet",
            "bridge": bridge,
            "isGateway": true,
            "hairpinMode": true,
            "dataDir": data_dir,
            "logFile": data_dir.join("aksnet-cni.log"),
            // podman's own conflists declare it; podman still sends IP= in CNI_ARGS
            // (docs/cni-clients.md#podman).
            "capabilities": {"ips": true},
            "ipam": {"ranges": [[{"subnet": format!("10.248.{octet}.0/24")}]]}
        }]
    })
    .to_string()
}

/// The plugin's IPAM state of network `name` in `data_dir`: its `allocations` list.
pub fn allocations(data_dir: &Path, name: &str) -> Vec<serde_json::Value> {
    let path = data_dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("IPAM state {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("IPAM state {}: {e}: {text}", path.display()));
    v["allocations"]
        .as_array()
        .unwrap_or_else(|| panic!("IPAM state {}: no allocations list: {text}", path.display()))
        .clone()
}

/// Names of the links enslaved to `bridge` in the host namespace.
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let out = run_ok(Command::new("ip").args(["-j", "link", "show", "master", bridge]));
    let v: serde_json::Value =
        serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out }).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

/// A busybox root filesystem tarball: /bin/busybox plus applet symlinks (recipe of
/// docs/cni-clients.md#podman). Returns the tar's path inside `dir`.
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let root = dir.join("bbroot");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    // Mount points the runtimes expect to exist.
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let tar = dir.join("bbroot.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    tar
}

/// Host paths a runtime creates as a side effect (libcni's cache `/var/lib/cni`, podman's
/// blob-info cache, containerd's shim socket dir, `/opt/cni/bin`). Those absent when the guard
/// was made are removed on Drop: whole trees when `whole` is set (our caches), otherwise only
/// if nothing but empty directories is left, so nobody else's file is ever deleted.
pub struct CreatedPaths {
    absent: Vec<(PathBuf, bool)>,
}

impl CreatedPaths {
    pub fn new(paths: &[(&str, bool)]) -> Self {
        CreatedPaths {
            absent: paths
                .iter()
                .filter(|(p, _)| !Path::new(p).exists())
                .map(|(p, whole)| (PathBuf::from(p), *whole))
                .collect(),
        }
    }
}

impl Drop for CreatedPaths {
    fn drop(&mut self) {
        for (p, whole) in &self.absent {
            if !p.exists() {
                continue;
            }
            if *whole {
                if let Err(e) = std::fs::remove_dir_all(p) {
                    eprintln!("cleanup: remove {}: {e}", p.display());
                }
            } else {
                remove_empty_tree(p);
            }
        }
    }
}

/// Removes `dir` and its subdirectories bottom-up while they are empty; keeps any file.
pub fn remove_empty_tree(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for e in entries.flatten() {
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !(is_dir && remove_empty_tree(&p)) {
            empty = false;
        }
    }
    empty && std::fs::remove_dir(dir).is_ok()
}

/// Polls `pred` for up to `secs` seconds.
pub fn wait_until(secs: u64, what: &str, pred: impl FnMut() -> bool) {
    aksnet_testkit::eventually_within(secs, what, pred);
}

/// A docker-archive image (`ctr images import` reads it) of the busybox rootfs, tagged
/// `name`, running `cmd`: containerd computes the blob digests itself, only the config's
/// diff_id needs the layer's sha256. Built in `dir`; returns the archive's path. Used by
/// the containerd tests as their container image and as the CRI sandbox ("pause") image.
pub fn busybox_docker_archive(dir: &Path, name: &str, cmd: &[&str]) -> PathBuf {
    let img = dir.join("image");
    std::fs::create_dir(&img).unwrap();
    let layer = busybox_rootfs_tar(&img);
    std::fs::rename(&layer, img.join("layer.tar")).unwrap();
    let sum = run_ok(Command::new("sha256sum").arg(img.join("layer.tar")));
    let digest = sum.split_whitespace().next().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{digest}")]}
    });
    std::fs::write(img.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([
        {"Config": "config.json", "RepoTags": [name], "Layers": ["layer.tar"]}
    ]);
    std::fs::write(img.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.join("image.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&img)
            .arg("-cf")
            .arg(&archive)
            .args(["manifest.json", "config.json", "layer.tar"]),
    );
    archive
}
