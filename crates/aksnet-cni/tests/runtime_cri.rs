//! Kubernetes' path to the plugin: containerd 1.6's CRI plugin driven over its gRPC socket
//! exactly as kubelet drives it (RunPodSandbox, PodSandboxStatus, StopPodSandbox,
//! RemovePodSandbox with pod metadata, namespace, uid, log directory and the Linux
//! namespace options), issue 14 item 1.
//!
//! Everything is private to the test: containerd runs with its own config, root, state and
//! socket under a temp dir, inside a node network namespace `aksh1n<pid>` (entered with
//! `nsenter --net` only, so its mounts stay visible to the test), with
//! `restrict_oom_score_adj = true` (a negative oom_score_adj is refused on machines like
//! this one), `netns_mounts_under_state_dir = true` (pod netns files under the temp dir,
//! not /var/run/netns), and the CRI's CNI `bin_dir`/`conf_dir` pointing at temp dirs that
//! hold the built `aksnet-cni` and a conflist. The sandbox ("pause") image is built at test
//! time from Debian's busybox-static and imported with `ctr images import`. The conflist
//! says cniVersion 1.0.0: containerd 1.6's CNI library refuses a 1.1.0 result
//! (docs/runtimes.md, "Which cniVersion each runtime accepts").
//!
//! Run as root: `cargo test -p aksnet-cni --test runtime_cri -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "support/runtime.rs"]
mod runtime;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, ListPodSandboxRequest, NamespaceMode,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StopPodSandboxRequest,
};
use runtime::*;
use tonic::transport::Channel;

const PAUSE: &str = "localhost/aksh1-pause:latest";
/// The containerd namespace the CRI plugin uses.
const K8S_NS: &str = "k8s.io";
const NETWORK: &str = "aksh1net";
/// The reference loopback plugin (Debian containernetworking-plugins).
const LOOPBACK: &str = "/usr/lib/cni/loopback";

/// A named network namespace for the node, deleted on drop.
struct NodeNetns(aksnet_testkit::Netns);

impl NodeNetns {
    fn new() -> NodeNetns {
        let ns = aksnet_testkit::Netns::create(&format!("aksh1n{}", std::process::id()));
        ns.ip(&["link", "set", "lo", "up"]);
        NodeNetns(ns)
    }
    fn path(&self) -> String {
        self.0.path().display().to_string()
    }
}

/// containerd with its CRI plugin, in the node netns; restartable (SIGKILL + start).
struct Cri {
    dir: tempfile::TempDir,
    node: String,
    cgroup: String,
    child: Option<Child>,
    rt: tokio::runtime::Runtime,
    _host: CreatedPaths,
}

impl Cri {
    fn new(node: &NodeNetns, conflist: &str) -> Cri {
        let host = CreatedPaths::new(&[("/run/containerd", false)]);
        let dir = tempfile::Builder::new()
            .prefix("aksh1-cri")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["cni-bin", "cni-conf", "pods"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::copy(plugin_binary(), d.join("cni-bin/aksnet-cni")).unwrap();
        // containerd's CRI brings up each pod's `lo` with the reference `loopback` plugin.
        std::fs::copy(LOOPBACK, d.join("cni-bin/loopback")).unwrap_or_else(|e| {
            panic!("{LOOPBACK}: {e} (Debian containernetworking-plugins, scripts/install-deps.sh)")
        });
        std::fs::write(d.join("cni-conf/10-aksnet.conflist"), conflist).unwrap();
        std::fs::write(d.join("config.toml"), containerd_config(d)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut cri = Cri {
            dir,
            node: node.path(),
            cgroup: format!("/aksh1-cri-{}", std::process::id()),
            child: None,
            rt,
            _host: host,
        };
        cri.start();
        let archive = busybox_docker_archive(cri.dir.path(), PAUSE, &["/bin/sleep", "2147483647"]);
        run_ok(cri.ctr().args(["images", "import"]).arg(&archive));
        cri
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.socket())
            .args(["--namespace", K8S_NS]);
        c
    }

    fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("containerd.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.node))
            .arg("containerd")
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd (nsenter from util-linux)");
        self.child = Some(child);
        wait_until(30, "containerd to serve its socket", || {
            self.ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        // The CRI plugin answers once its own start-up (and recovery) is done.
        wait_until(30, "the CRI plugin to answer", || {
            self.rt
                .block_on(async {
                    let mut c = self.client().await.ok()?;
                    c.list_pod_sandbox(ListPodSandboxRequest::default())
                        .await
                        .ok()
                })
                .is_some()
        });
    }

    /// SIGKILL, as a crash or an OOM kill would: the shims and pods keep running.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    async fn client(&self) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
        let path = self.socket();
        let channel = tonic::transport::Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await?;
        Ok(RuntimeServiceClient::new(channel))
    }

    /// RunPodSandbox as kubelet sends it (pkg/kubelet/kuberuntime/kuberuntime_sandbox.go):
    /// metadata, hostname, log directory `/var/log/pods/<ns>_<name>_<uid>` (here under the
    /// temp dir), labels, and the pod's Linux namespace options.
    fn run_pod(&self, namespace: &str, name: &str) -> Result<String, tonic::Status> {
        let uid = format!("{name}-uid-{}", std::process::id());
        let log_dir = self
            .dir
            .path()
            .join("pods")
            .join(format!("{namespace}_{name}_{uid}"));
        std::fs::create_dir_all(&log_dir).unwrap();
        let labels = HashMap::from([
            ("io.kubernetes.pod.name".to_string(), name.to_string()),
            (
                "io.kubernetes.pod.namespace".to_string(),
                namespace.to_string(),
            ),
            ("io.kubernetes.pod.uid".to_string(), uid.clone()),
        ]);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid,
                namespace: namespace.to_string(),
                attempt: 0,
            }),
            hostname: name.to_string(),
            log_directory: log_dir.display().to_string(),
            labels,
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Pod as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.rt.block_on(async {
            let mut c = self.client().await.unwrap();
            let r = c
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: String::new(),
                })
                .await?;
            Ok(r.into_inner().pod_sandbox_id)
        })
    }

    /// (pod IP, netns path, state) from PodSandboxStatus (verbose, as crictl inspectp).
    fn status(&self, id: &str) -> (String, String, i32) {
        let r = self.rt.block_on(async {
            let mut c = self.client().await.unwrap();
            c.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: true,
            })
            .await
            .unwrap()
            .into_inner()
        });
        let status = r.status.unwrap();
        let ip = status.network.map(|n| n.ip).unwrap_or_default();
        let info: serde_json::Value = serde_json::from_str(&r.info["info"]).unwrap();
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .and_then(|n| n["path"].as_str())
            .unwrap_or_default()
            .to_string();
        (ip, netns, status.state)
    }

    fn stop(&self, id: &str) -> Result<(), tonic::Status> {
        self.rt.block_on(async {
            let mut c = self.client().await.unwrap();
            c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .map(drop)
        })
    }

    fn remove(&self, id: &str) -> Result<(), tonic::Status> {
        self.rt.block_on(async {
            let mut c = self.client().await.unwrap();
            c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .map(drop)
        })
    }

    /// IDs of every sandbox the CRI knows, ready or not.
    fn sandboxes(&self) -> Vec<String> {
        self.rt.block_on(async {
            let mut c = self.client().await.unwrap();
            let r = c
                .list_pod_sandbox(ListPodSandboxRequest::default())
                .await
                .unwrap()
                .into_inner();
            let mut ids: Vec<String> = r.items.into_iter().map(|s| s.id).collect();
            ids.sort();
            ids
        })
    }

    fn ping(&self, from_netns: &str, to: &str) -> bool {
        Command::new("nsenter")
            .arg(format!("--net={from_netns}"))
            .args(["ping", "-c", "1", "-W", "2", to])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        if self.child.is_some() {
            for id in self.sandboxes() {
                if let Err(e) = self.stop(&id).and_then(|()| self.remove(&id)) {
                    eprintln!("cleanup: sandbox {id}: {e}");
                }
            }
            run_quiet(self.ctr().args(["images", "rm", PAUSE]));
            if let Some(mut c) = self.child.take() {
                run_quiet(Command::new("kill").args(["-TERM", &c.id().to_string()]));
                let deadline = Instant::now() + Duration::from_secs(10);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Mounts containerd left under our dir (snapshots, netns files), deepest first.
        let root = self.dir.path().display().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            run_quiet(Command::new("umount").args(["-l", &m]));
        }
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup{}", self.cgroup));
    }
}

fn containerd_config(d: &Path) -> String {
    let d = d.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni-conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc"
"#
    )
}

fn kubenet_conflist(data: &Path, bridge: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [{
            "type": "aksnet-cni",
            "mode": "kubenet",
            "bridge": bridge,
            "isGateway": true,
            "dataDir": data,
            "logFile": data.join("aksnet-cni.log"),
            "ipam": {"ranges": [[{"subnet": "10.246.0.0/24"}]]}
        }]
    })
    .to_string()
}

/// A routed mode's conflist (`mode`: nodesubnet, overlay).
fn routed_conflist(data: &Path, mode: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [{"type": "aksnet-cni", "mode": mode, "dataDir": data,
                     "logFile": data.join("aksnet-cni.log")}]
    })
    .to_string()
}

/// The container IDs holding an address in the plugin's IPAM state, sorted.
fn ipam_holders(data: &Path) -> Vec<String> {
    if !data.join(format!("{NETWORK}.json")).exists() {
        return Vec::new();
    }
    let mut ids: Vec<String> = allocations(data, NETWORK)
        .iter()
        .map(|a| a["containerId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// The two tests share containerd's hard-coded shim socket dir (/run/containerd/s), which
/// each removes if it created it: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn require() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools(
        "CRI test",
        &[
            "containerd",
            "ctr",
            "containerd-shim-runc-v2",
            "runc",
            "tar",
            "sha256sum",
            "ip",
            "ping",
            "nsenter",
            "umount",
        ],
    );
    guard
}

/// Two pods reach each other; containerd SIGKILLed and restarted with them running (nothing
/// leaked or doubled); a pod's netns deleted under it, then stop/remove succeed; every
/// address released after remove.
fn two_pods_restart_and_lost_netns(cri: &mut Cri, data: &Path) {
    let a = cri
        .run_pod("default", "web-a")
        .expect("RunPodSandbox web-a");
    let b = cri
        .run_pod("default", "web-b")
        .expect("RunPodSandbox web-b");
    let (ip_a, ns_a, _) = cri.status(&a);
    let (ip_b, ns_b, _) = cri.status(&b);
    assert!(
        !ip_a.is_empty() && !ip_b.is_empty() && ip_a != ip_b,
        "{ip_a} {ip_b}"
    );
    assert!(cri.ping(&ns_a, &ip_b), "web-a cannot reach web-b at {ip_b}");
    assert!(cri.ping(&ns_b, &ip_a), "web-b cannot reach web-a at {ip_a}");
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(
        ipam_holders(data),
        both,
        "IPAM holds exactly the two sandboxes"
    );

    cri.kill9();
    cri.start();
    assert_eq!(cri.sandboxes(), both, "sandboxes after the restart");
    assert_eq!(ipam_holders(data), both, "IPAM after the restart");
    assert_eq!(cri.status(&a).0, ip_a, "web-a kept its address");
    assert!(
        cri.ping(&ns_a, &ip_b),
        "web-a cannot reach web-b after the restart"
    );

    // The netns of web-b disappears (an operator, a crash of the shim's mount).
    run_ok(Command::new("umount").arg(&ns_b));
    std::fs::remove_file(&ns_b).unwrap();
    cri.stop(&b).expect("StopPodSandbox with its netns gone");
    cri.remove(&b)
        .expect("RemovePodSandbox with its netns gone");
    assert_eq!(
        ipam_holders(data),
        vec![a.clone()],
        "web-b's address released"
    );

    cri.stop(&a).expect("StopPodSandbox web-a");
    assert!(
        ipam_holders(data).is_empty(),
        "released by the stop's CNI DEL"
    );
    cri.remove(&a).expect("RemovePodSandbox web-a");
    assert!(cri.sandboxes().is_empty());
}

#[test]
fn kubenet_pods_through_the_cri() {
    let _serial = require();
    let node = NodeNetns::new();
    let data = tempfile::Builder::new()
        .prefix("aksh1-cri-data")
        .tempdir()
        .unwrap();
    let bridge = format!("aksh1cb{}", std::process::id() % 100_000);
    let mut cri = Cri::new(&node, &kubenet_conflist(data.path(), &bridge));
    let t0 = Instant::now();
    two_pods_restart_and_lost_netns(&mut cri, data.path());
    eprintln!("kubenet through the CRI: {} ms", t0.elapsed().as_millis());
}

#[test]
fn nodesubnet_pods_through_the_cri_and_the_31st_is_refused() {
    let _serial = require();
    let node = NodeNetns::new();
    let tmp = tempfile::Builder::new()
        .prefix("aksh1-cri-ns")
        .tempdir()
        .unwrap();
    let data = tmp.path().join("data");
    // What `aksnet node join --node aksh1-node --subnet 10.245.0.0/24 --max-pods 30` does
    // (crates/aksnet/src/commands/node.rs): reserve in the cluster store, write the pool.
    let store = aksnet_store::EmbeddedStore::new(tmp.path().join("cluster"));
    let joined = aksnet_store::join(
        &store,
        &aksnet_store::JoinRequest {
            node: "aksh1-node".into(),
            subnet_name: "aks-subnet".into(),
            subnet: aksnet_core::azure::NodeSubnet::new("10.245.0.0/24".parse().unwrap()).unwrap(),
            max_pods: aksnet_core::azure::MaxPods::new(30).unwrap(),
            in_use: Default::default(),
            lease: None,
        },
    )
    .unwrap();
    aksnet_store::local_pool::write_node_pool(&data, &joined.reservation().to_node_pool()).unwrap();
    let mut cri = Cri::new(&node, &routed_conflist(&data, "nodesubnet"));
    let t0 = Instant::now();
    two_pods_restart_and_lost_netns(&mut cri, &data);

    let mut pods = Vec::new();
    for i in 0..30 {
        pods.push(
            cri.run_pod("fill", &format!("p{i}"))
                .expect("one of 30 pods"),
        );
    }
    let e = cri
        .run_pod("fill", "p30")
        .expect_err("the 31st pod of a maxPods-30 node must be refused");
    assert!(
        e.message().contains("has no free pod address"),
        "our error is not surfaced through the CRI: {}",
        e.message()
    );
    // containerd removes a sandbox whose network setup failed; nothing of it stays.
    pods.sort();
    assert_eq!(ipam_holders(&data), pods);
    for id in &pods {
        cri.stop(id).unwrap();
        cri.remove(id).unwrap();
    }
    assert!(ipam_holders(&data).is_empty(), "addresses released");
    eprintln!(
        "nodesubnet through the CRI: {} ms",
        t0.elapsed().as_millis()
    );
}

/// Two pods, a containerd restart and a lost netns through the CRI in the routed `mode`
/// over `pool`, the node pool `aksnet node join` writes.
fn routed_pods_through_the_cri(mode: &str, pool: aksnet_core::pool::NodePool) {
    let _serial = require();
    let node = NodeNetns::new();
    let tmp = tempfile::Builder::new()
        .prefix("aksh1-cri-routed")
        .tempdir()
        .unwrap();
    let data = tmp.path().join("data");
    aksnet_store::local_pool::write_node_pool(&data, &pool).unwrap();
    let mut cri = Cri::new(&node, &routed_conflist(&data, mode));
    let t0 = Instant::now();
    two_pods_restart_and_lost_netns(&mut cri, &data);
    eprintln!("{mode} through the CRI: {} ms", t0.elapsed().as_millis());
}

/// A node of node subnet 10.245.0.0/24 whose pods are `pod_ips` (no pod subnet, no overlay).
fn pool_with(pod_ips: Vec<std::net::Ipv4Addr>, version: u32) -> aksnet_core::pool::NodePool {
    aksnet_core::pool::NodePool {
        version,
        node: "aksh1-node".into(),
        subnet_name: "aks-subnet".into(),
        subnet: "10.245.0.0/24".parse().unwrap(),
        node_ip: "10.245.0.4".parse().unwrap(),
        max_pods: u32::try_from(pod_ips.len()).unwrap(),
        pod_ips,
        pod_subnet: None,
        overlay: None,
    }
}

/// Overlay through the CRI: the pool `aksnet node join --overlay --pod-cidr-from
/// 10.246.0.0/16` writes for a node holding 10.246.3.0/24 (docs/models.md#overlay).
#[test]
fn overlay_pods_through_the_cri() {
    let overlay = aksnet_core::pool::OverlayPool {
        cluster_pod_cidr: "10.246.0.0/16".parse().unwrap(),
        pod_cidr: "10.246.3.0/24".parse().unwrap(),
    };
    let pool = aksnet_core::pool::NodePool {
        overlay: Some(overlay),
        ..pool_with(
            overlay.pod_ips(250),
            aksnet_core::pool::NODE_POOL_VERSION_OVERLAY,
        )
    };
    routed_pods_through_the_cri("overlay", pool);
}

/// Pod Subnet through the CRI: a static node of pod subnet 10.247.0.0/24 holding the block
/// 10.247.0.16/28, whose first address is the node's (docs/models.md#pod-subnet).
#[test]
fn podsubnet_pods_through_the_cri() {
    let blocks = vec!["10.247.0.16".parse().unwrap()];
    let pool = aksnet_core::pool::NodePool {
        pod_subnet: Some(aksnet_core::pool::PodSubnetPool {
            name: "aksh1-pods".into(),
            cidr: "10.247.0.0/24".parse().unwrap(),
            allocation: aksnet_core::podsubnet::Allocation::Static,
            blocks: blocks.clone(),
            returning: Vec::new(),
        }),
        ..pool_with(
            aksnet_core::podsubnet::pod_addresses(&blocks, Some(15)),
            aksnet_core::pool::NODE_POOL_VERSION_POD_SUBNET,
        )
    };
    routed_pods_through_the_cri("podsubnet", pool);
}
