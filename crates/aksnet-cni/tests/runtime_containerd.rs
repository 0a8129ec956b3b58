//! A second real runtime: containerd 1.6's `ctr run --rm --cni` (go-cni on libcni 1.1),
//! docs/cni-clients.md#containerd-ctr. containerd runs by hand with its own root, state, socket and
//! config; the test stops it by its PID.
//!
//! `ctr` has no flag for the CNI directories: go-cni loads only the lexically first conflist
//! of `/etc/cni/net.d`, and Debian's build searches plugins in `[/opt/cni/bin /usr/lib/cni]`
//! (observed: `failed to find plugin "aksnet-cni" in path [/opt/cni/bin /usr/lib/cni]`); the
//! CRI plugin's `conf_dir`/`bin_dir` do not apply to ctr. So the test installs
//! `/etc/cni/net.d/00-aksnt….conflist` (it must sort before podman's
//! `87-podman-bridge.conflist`) and `/opt/cni/bin/aksnet-cni`, and a Drop guard removes both,
//! restoring a binary that was there. An exclusive flock on `/etc/cni/net.d` keeps two test
//! processes from installing at once.
//!
//! Run as root: `cargo test -p aksnet-cni --test runtime_containerd`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "support/runtime.rs"]
mod runtime;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aksnet_core::naming::kubenet_host_veth_name;
use runtime::*;

const IMAGE: &str = "localhost/aksnt-bb:latest";
const NET_D: &str = "/etc/cni/net.d";
const OPT_CNI_BIN: &str = "/opt/cni/bin";

/// Our conflist and binary where go-cni looks, removed (and what was there restored) on Drop.
struct GoCniInstall {
    _lock: File,
    conflist: PathBuf,
    binary: PathBuf,
    backup: Option<PathBuf>,
    _created: CreatedPaths,
}

impl GoCniInstall {
    fn new(conflist_text: &str, tag: &str) -> GoCniInstall {
        // /var/lib/cni: go-cni's libcni result cache, empty again after DEL.
        let created = CreatedPaths::new(&[
            ("/etc/cni", false),
            ("/opt/cni", false),
            ("/var/lib/cni", false),
        ]);
        std::fs::create_dir_all(NET_D).unwrap();
        std::fs::create_dir_all(OPT_CNI_BIN).unwrap();
        let lock = File::open(NET_D).unwrap();
        lock.lock().unwrap();

        let name = format!("00-{tag}.conflist");
        // go-cni takes the first of *.conf, *.conflist, *.json in sort order (libcni ConfFiles).
        let mut others: Vec<String> = std::fs::read_dir(NET_D)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                [".conf", ".conflist", ".json"]
                    .iter()
                    .any(|x| n.ends_with(x))
            })
            .collect();
        others.sort();
        if let Some(first) = others.first() {
            assert!(
                name.as_str() < first.as_str(),
                "{NET_D}/{first} sorts before our {name}: ctr would use it; not touching it"
            );
        }
        let conflist = Path::new(NET_D).join(&name);
        std::fs::write(&conflist, conflist_text).unwrap();

        // Copy (then rename, so go-cni never sees a half-written file); keep what was there.
        let binary = Path::new(OPT_CNI_BIN).join("aksnet-cni");
        let backup = binary.exists().then(|| {
            let b = Path::new(OPT_CNI_BIN).join(format!(".aksnet-cni.{tag}.orig"));
            std::fs::rename(&binary, &b).unwrap();
            b
        });
        let guard = GoCniInstall {
            _lock: lock,
            conflist,
            binary,
            backup,
            _created: created,
        };
        let tmp = Path::new(OPT_CNI_BIN).join(format!(".aksnet-cni.{tag}.new"));
        std::fs::copy(plugin_binary(), &tmp).unwrap();
        std::fs::rename(&tmp, &guard.binary).unwrap();
        guard
    }
}

impl Drop for GoCniInstall {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.conflist);
        let _ = std::fs::remove_file(&self.binary);
        if let Some(b) = &self.backup {
            if let Err(e) = std::fs::rename(b, &self.binary) {
                eprintln!(
                    "cleanup: restoring {} from {}: {e}",
                    self.binary.display(),
                    b.display()
                );
            }
        }
        // The flock goes with the File; empty /etc/cni, /opt/cni we created go with
        // CreatedPaths.
    }
}

/// containerd with everything private except the shim socket dir (/run/containerd/s is
/// hard-coded in 1.6), which goes if we created it.
struct Containerd {
    child: Child,
    namespace: String,
    dir: tempfile::TempDir,
    _host: CreatedPaths,
}

impl Containerd {
    fn start() -> Containerd {
        let host = CreatedPaths::new(&[("/run/containerd", false)]);
        let dir = tempfile::Builder::new()
            .prefix("aksnt-containerd")
            .tempdir()
            .unwrap();
        let d = dir.path().display().to_string();
        // Only what ctr needs: no CRI plugin (it would read /etc/cni itself), no tracing.
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            child,
            namespace: unique("ns"),
            dir,
            _host: host,
        };
        wait_until(20, "containerd to serve its socket", || {
            c.ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        c
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(&self.namespace);
        c
    }

    fn import_busybox(&self) {
        let archive = busybox_docker_archive(self.dir.path(), IMAGE, &["/bin/sh"]);
        run_ok(self.ctr().args(["images", "import"]).arg(&archive));
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Anything a failed run left (ctr does not clean up a container whose CNI ADD failed).
        if let Ok(o) = self.ctr().args(["containers", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                run_quiet(self.ctr().args(["tasks", "kill", "-s", "KILL", id]));
                std::thread::sleep(Duration::from_millis(200));
                run_quiet(self.ctr().args(["tasks", "rm", "-f", id]));
                run_quiet(self.ctr().args(["containers", "rm", id]));
            }
        }
        run_quiet(self.ctr().args(["images", "rm", IMAGE]));
        // SIGTERM by PID for a clean shutdown; SIGKILL if it does not stop.
        let pid = self.child.id().to_string();
        run_quiet(Command::new("kill").args(["-TERM", &pid]));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    eprintln!("cleanup: containerd {pid} ignored SIGTERM, killing");
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
    }
}

/// The foreground `ctr run` client; killed on Drop if the test fails while it runs (the
/// container itself is then killed by `Containerd`'s Drop).
struct CtrRun(Option<Child>);

impl CtrRun {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("ctr run still owned")
    }
}

impl Drop for CtrRun {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn ctr_run_rm_cni_gets_an_address_and_releases_it() {
    require_tools(
        "containerd test",
        &[
            "containerd",
            "ctr",
            "containerd-shim-runc-v2",
            "runc",
            "tar",
            "sha256sum",
            "ip",
            "ping",
        ],
    );
    let t0 = Instant::now();
    let net = unique("cn");
    let bridge = unique("cb");
    let octet = subnet_octet(2);
    let data = tempfile::Builder::new()
        .prefix("aksnt-ctr-data")
        .tempdir()
        .unwrap();
    let _bridge = LinkGuard(bridge.clone());
    let _install = GoCniInstall::new(
        &kubenet_conflist("1.0.0", &net, &bridge, octet, data.path()),
        &net,
    );
    let ctd = Containerd::start();
    ctd.import_busybox();

    // The container reports its address into a bind-mounted dir, then waits for "go", so
    // the test sees the attachment while it exists.
    let share = ctd.dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let id = unique("k");
    let t_run = Instant::now();
    let mut run = CtrRun(Some(
        ctd.ctr()
            .args(["run", "--rm", "--cni"])
            .arg("--fifo-dir")
            .arg(ctd.dir.path().join("fifo"))
            .arg("--runc-root")
            .arg(ctd.dir.path().join("runc"))
            .arg("--mount")
            .arg(format!(
                "type=bind,src={},dst=/share,options=rbind:rw",
                share.display()
            ))
            .args([IMAGE, &id, "sh", "-c"])
            .arg(
                "ip -4 -o addr show eth0 > /share/addr.tmp && mv /share/addr.tmp /share/addr; \
             while [ ! -e /share/go ]; do usleep 50000; done",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr run"),
    ));
    let addr_file = share.join("addr");
    let started = Instant::now();
    while !addr_file.exists() {
        if let Ok(Some(status)) = run.child().try_wait() {
            let out = run.0.take().unwrap().wait_with_output().unwrap();
            panic!(
                "ctr run exited {status} before reporting an address: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!("container did not report its address within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let up_ms = t_run.elapsed().as_millis();
    let (ip, len) = parse_ip_addr_show(&std::fs::read_to_string(&addr_file).unwrap());
    assert_pod_address(ip, octet);
    assert_eq!(len, 24);

    // ctr's CNI container ID is "<namespace>-<id>" (docs/cni-clients.md#containerd-ctr).
    let cni_id = format!("{}-{id}", ctd.namespace);
    let allocs = allocations(data.path(), &net);
    assert_eq!(allocs.len(), 1, "{allocs:?}");
    assert_eq!(allocs[0]["containerId"], cni_id.as_str());
    assert_eq!(allocs[0]["ifname"], "eth0");
    assert_eq!(allocs[0]["ips"][0]["ip"], ip.to_string());
    let host_veth = kubenet_host_veth_name(&cni_id, "eth0");
    assert_eq!(bridge_ports(&bridge), vec![host_veth.clone()]);
    // The host reaches the container through the bridge's gateway address.
    let ping = run_ok(Command::new("ping").args(["-c", "1", "-W", "2", &ip.to_string()]));
    assert!(ping.contains(" 0% packet loss"), "{ping}");

    std::fs::write(share.join("go"), b"").unwrap();
    let t_rm = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = run.child().try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            panic!("ctr run --rm did not finish within 30 s of the go signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let down_ms = t_rm.elapsed().as_millis();
    let out = run.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        status.success(),
        "ctr run --rm --cni failed ({status}): {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --rm ran CNI DEL: reservation released, host veth gone, container gone.
    let left = allocations(data.path(), &net);
    assert!(left.is_empty(), "address not released: {left:?}");
    assert!(
        !link_exists(&host_veth),
        "host veth {host_veth} left behind"
    );
    assert!(bridge_ports(&bridge).is_empty());
    let ctrs = run_ok(ctd.ctr().args(["containers", "ls", "-q"]));
    assert!(!ctrs.contains(&id), "container {id} not removed: {ctrs}");

    drop(ctd);
    eprintln!(
        "containerd: `ctr run --rm --cni` start to address {up_ms} ms, exit+DEL {down_ms} ms, test {} ms",
        t0.elapsed().as_millis()
    );
}
