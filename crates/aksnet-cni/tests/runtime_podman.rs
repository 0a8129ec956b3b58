//! A real runtime (issue 2, "Tests that must exist"): podman 4.3 with its CNI backend runs
//! containers on an `aksnet-cni` network (kubenet mode). Recipe and the three sandbox
//! workarounds and podman's quirks (0.4.0 conflists, `IP=` in CNI_ARGS, `K8S_POD_NAME`):
//! docs/cni-clients.md#podman.
//!
//! Nothing global is configured: podman reads a test-private `containers.conf`
//! (`CONTAINERS_CONF`) and `storage.conf` (`CONTAINERS_STORAGE_CONF`) whose storage, tmp dir,
//! file locks and network config dir all live in a temp dir, so the image is imported per
//! test and removed with it (no cached image). The side effects podman has on the host anyway
//! (libcni's cache under /var/lib/cni, containers/image's blob-info cache under
//! /var/lib/containers/cache) are removed when they were not there before.
//!
//! Run as root: `cargo test -p aksnet-cni --test runtime_podman`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "support/runtime.rs"]
mod runtime;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use aksnet_core::naming::kubenet_host_veth_name;
use runtime::*;

const IMAGE: &str = "localhost/aksnt-bb:latest";

/// The tests share host side effects (CreatedPaths of /var/lib/cni and podman's blob-info
/// cache): one at a time within this binary.
static SERIAL: Mutex<()> = Mutex::new(());

/// A private podman: every path it writes to is under `dir`.
struct Podman {
    // Drop order: the explicit Drop below first, then the fields top to bottom.
    bridges: Vec<LinkGuard>,
    dir: tempfile::TempDir,
    _host: CreatedPaths,
}

impl Podman {
    fn new() -> Podman {
        require_tools("podman test", &["podman", "conmon", "runc", "tar", "ip"]);
        // Before podman runs: remember which of its host-wide side effects are new.
        let host = CreatedPaths::new(&[
            ("/var/lib/cni", false),
            ("/var/lib/containers/cache", true),
            ("/var/lib/containers", false),
        ]);
        let dir = tempfile::Builder::new()
            .prefix("aksnt-podman")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["bin", "net", "data", "graph", "run", "tmp"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // The plugin directory podman searches first: just our binary.
        std::os::unix::fs::symlink(plugin_binary(), d.join("bin/aksnet-cni")).unwrap();
        let p = |s: &str| d.join(s).display().to_string();
        // docs/cni-clients.md#podman workarounds: 1. default_ulimits at or below the
        // current limits (no CAP_SYS_RESOURCE), 2. runc instead of crun (cgroup hybrid
        // mode), 3. (NET_RAW for ping) is a run flag. lock_type "file" keeps podman's locks
        // in tmp_dir instead of /dev/shm/libpod_lock.
        let containers_conf = format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}", "/usr/lib/cni"]
network_config_dir = "{net}"

[engine]
runtime = "runc"
tmp_dir = "{tmp}"
lock_type = "file"
events_logger = "file"
"#,
            bin = p("bin"),
            net = p("net"),
            tmp = p("tmp"),
        );
        std::fs::write(d.join("containers.conf"), containers_conf).unwrap();
        let storage_conf = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            p("graph"),
            p("run")
        );
        std::fs::write(d.join("storage.conf"), storage_conf).unwrap();
        Podman {
            bridges: Vec::new(),
            dir,
            _host: host,
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        run_ok(self.cmd().args(args)).trim().to_string()
    }

    /// `podman import` of a busybox-static rootfs tarball (no registry needed).
    fn import_busybox(&self) {
        let tar = busybox_rootfs_tar(self.dir.path());
        run_ok(
            self.cmd()
                .args(["import", "--quiet", "--change", r#"CMD ["/bin/sh"]"#])
                .arg(&tar)
                .arg(IMAGE),
        );
    }

    /// Writes a kubenet conflist for network `name` and owns its bridge from now on.
    fn add_network(&mut self, version: &str, name: &str, bridge: &str, octet: u8) {
        self.bridges.push(LinkGuard(bridge.to_string()));
        let text = kubenet_conflist(version, name, bridge, octet, &self.data_dir());
        std::fs::write(self.path("net").join(format!("{name}.conflist")), text).unwrap();
    }

    fn container_ip(&self, ctr: &str) -> (Ipv4Addr, u8) {
        parse_ip_addr_show(&self.run(&["exec", ctr, "ip", "-4", "-o", "addr", "show", "eth0"]))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers first (podman runs CNI DEL), then the private storage: `system reset`
        // unmounts and deletes graphroot, runroot and tmp_dir, all inside our temp dir.
        run_quiet(self.cmd().args(["rm", "--all", "--force", "--time", "0"]));
        run_quiet(self.cmd().args(["system", "reset", "--force"]));
        // Bridges are deleted by their guards, the temp dir by TempDir, the host paths last.
    }
}

fn assert_released(p: &Podman, net: &str, bridge: &str, host_veths: &[String]) {
    let left = allocations(&p.data_dir(), net);
    assert!(left.is_empty(), "addresses not released: {left:?}");
    for v in host_veths {
        assert!(!link_exists(v), "host veth {v} left behind");
    }
    let ports = bridge_ports(bridge);
    assert!(ports.is_empty(), "links left on {bridge}: {ports:?}");
}

/// Two containers on one aksnet-cni network: addresses from the range (one by `--ip`, i.e.
/// CNI_ARGS `IP=`), ping each other, `podman rm -f` releases everything.
fn two_containers_reach_each_other(version: &str, slot: u8) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let mut p = Podman::new();
    let net = unique("pn");
    let bridge = unique("pb");
    let octet = subnet_octet(slot);
    p.add_network(version, &net, &bridge, octet);
    p.import_busybox();

    // podman lists our network with the first plugin's type as driver.
    let nets = p.run(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(
        nets.lines().any(|l| l == format!("{net} aksnet-cni")),
        "podman does not list network {net}: {nets}"
    );

    let c1 = unique("c");
    let c2 = unique("c");
    let wanted = Ipv4Addr::new(10, 248, octet, 77);
    let t_run = Instant::now();
    let id1 = p.run(&[
        "run",
        "-d",
        "--name",
        &c1,
        "--cap-add",
        "NET_RAW",
        "--network",
        &net,
        IMAGE,
        "sleep",
        "300",
    ]);
    let id2 = p.run(&[
        "run",
        "-d",
        "--name",
        &c2,
        "--cap-add",
        "NET_RAW",
        "--network",
        &net,
        "--ip",
        &wanted.to_string(),
        IMAGE,
        "sleep",
        "300",
    ]);
    let run_ms = t_run.elapsed().as_millis();

    let (ip1, len1) = p.container_ip(&c1);
    let (ip2, len2) = p.container_ip(&c2);
    assert_pod_address(ip1, octet);
    assert_eq!(ip2, wanted, "--ip (CNI_ARGS IP=) not honoured");
    assert_eq!((len1, len2), (24, 24));
    assert_ne!(ip1, ip2);
    // podman reports what the plugin returned.
    let inspected = p.run(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &c1,
    ]);
    assert_eq!(inspected, ip1.to_string(), "podman inspect disagrees");
    let routes = p.run(&["exec", &c1, "ip", "-4", "route"]);
    assert!(
        routes.contains(&format!("default via 10.248.{octet}.1 dev eth0")),
        "no default route via the bridge gateway: {routes}"
    );

    // The plugin's view: one reservation per container, keyed by podman's container ID,
    // named after the container (K8S_POD_NAME from podman's CNI_ARGS).
    let allocs = allocations(&p.data_dir(), &net);
    assert_eq!(allocs.len(), 2, "{allocs:?}");
    for (id, name, ip) in [(&id1, &c1, ip1), (&id2, &c2, ip2)] {
        let a = allocs
            .iter()
            .find(|a| a["containerId"] == id.as_str())
            .unwrap_or_else(|| panic!("no allocation for {name} ({id}): {allocs:?}"));
        assert_eq!(a["ifname"], "eth0");
        assert_eq!(a["podName"], name.as_str());
        assert_eq!(a["ips"][0]["ip"], ip.to_string());
    }
    let host_veths: Vec<String> = [&id1, &id2]
        .iter()
        .map(|id| kubenet_host_veth_name(id, "eth0"))
        .collect();
    let mut ports = bridge_ports(&bridge);
    ports.sort();
    let mut expected = host_veths.clone();
    expected.sort();
    assert_eq!(ports, expected, "host veths on {bridge}");

    // Reachability both ways, through the bridge.
    for (from, to) in [(&c1, ip2), (&c2, ip1)] {
        let out = p.run(&["exec", from, "ping", "-c", "1", "-W", "2", &to.to_string()]);
        assert!(out.contains(" 0% packet loss"), "{from} -> {to}: {out}");
    }

    let t_rm = Instant::now();
    p.run(&["rm", "--force", "--time", "0", &c1, &c2]);
    let rm_ms = t_rm.elapsed().as_millis();
    assert_released(&p, &net, &bridge, &host_veths);

    // A short-lived `run --rm`: podman's own cleanup path (not `podman rm`) calls DEL too.
    let out = p.run(&[
        "run",
        "--rm",
        "--network",
        &net,
        IMAGE,
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let (ip3, _) = parse_ip_addr_show(&out);
    assert_pod_address(ip3, octet);
    assert_released(&p, &net, &bridge, &[]);

    eprintln!(
        "podman {version}: two `run -d` {run_ms} ms, `rm -f` of both {rm_ms} ms, test {} ms",
        t0.elapsed().as_millis()
    );
    drop(p);
    assert!(!link_exists(&bridge), "bridge {bridge} left behind");
    assert!(!Path::new(&format!("/sys/class/net/{bridge}")).exists());
}

/// `podman network create` writes 0.4.0 conflists (docs/cni-clients.md#podman): our
/// result must carry `ips[].version` for podman's libcni to accept it.
#[test]
fn podman_0_4_0_network_two_containers() {
    two_containers_reach_each_other("0.4.0", 0);
}

#[test]
fn podman_1_0_0_network_two_containers() {
    two_containers_reach_each_other("1.0.0", 1);
}
