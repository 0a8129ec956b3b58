//! `aksnet install` / `aksnet uninstall`: the node bootstrap a DaemonSet's init container or
//! a systemd oneshot runs (docs/kubernetes.md).
//!
//! install, in order, each step idempotent:
//! 1. copies `aksnet-cni` into the runtime's CNI bin dir with `aksnet_fs::write_atomic`
//!    (temp file, fdatasync, rename): a runtime never executes a half-written binary;
//! 2. nodesubnet, overlay, podsubnet: `aksnet node join` with the node's name (`--node` or the downward API's
//!    `NODE_NAME`), and checks the reserved node address against `--node-ip`/`NODE_IP`;
//! 3. writes the conflist at the highest cniVersion the local runtime accepts
//!    (`--cni-version auto`: containerd 1.x and CRI-O get 1.0.0, containerd 2.x 1.1.0;
//!    docs/runtimes.md, "Which cniVersion each runtime accepts"), last: until it exists
//!    the runtime reports the node's network not ready;
//! 4. restarts the agent's systemd unit when `--restart-agent-unit` names one.
//!
//! What it created or replaced is recorded in `<dataDir>/.install-record.json`; `aksnet uninstall`
//! removes exactly that (restoring a file it had replaced), leaves the node when install
//! joined it, and removes the record.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use aksnet_core::azure::{MaxPods, NodeSubnet};
use aksnet_fs::{
    read_regular_capped, read_regular_capped_following, remove_durably, write_atomic, FsError,
};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::node::{JoinArgs, LeaveArgs, NodeCommand, DEFAULT_DATA_DIR, DEFAULT_STORE_DIR};

/// The record of what install did, in the data directory.
/// A dot file: the IPAM store takes every other `*.json` of the data directory for a
/// network's state (`aksnet_ipam::networks_in`).
pub const RECORD_FILE: &str = ".install-record.json";
const RECORD_VERSION: u32 = 1;
/// The plugin binary is at most this large (a release build is about 5 MB).
const MAX_PLUGIN_BYTES: u64 = 256 << 20;
const PLUGIN_NAME: &str = "aksnet-cni";
/// Binaries must be executable by the runtime (root); 0755 as every CNI plugin is shipped.
const BINARY_MODE: u32 = 0o755;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum InstallMode {
    Kubenet,
    Nodesubnet,
    /// Azure CNI Overlay: joins with --overlay --pod-cidr-from (docs/models.md#overlay).
    Overlay,
    /// Azure CNI Pod Subnet: joins with --pod-subnet (docs/models.md#pod-subnet).
    Podsubnet,
}

impl InstallMode {
    /// The plugin's `mode` for this model.
    fn plugin_mode(self) -> &'static str {
        match self {
            InstallMode::Kubenet => "kubenet",
            InstallMode::Nodesubnet => "nodesubnet",
            InstallMode::Overlay => "overlay",
            InstallMode::Podsubnet => "podsubnet",
        }
    }

    /// Whether install joins the node (every model whose plugin reads node-pool.json).
    fn joins(self) -> bool {
        self != InstallMode::Kubenet
    }
}

#[derive(clap::Args, Clone)]
pub struct InstallArgs {
    /// The network model.
    #[arg(long, value_enum)]
    pub mode: InstallMode,
    /// Where the runtime looks for CNI plugins.
    #[arg(long, value_name = "DIR", default_value = "/opt/cni/bin")]
    pub cni_bin_dir: PathBuf,
    /// Where the runtime reads conflists (the lexically first one wins in containerd).
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    #[arg(long, value_name = "FILE", default_value = "10-aksnet.conflist")]
    pub conflist_name: String,
    /// The network's name (kubenet: also its IPAM state file name).
    #[arg(long, value_name = "NAME", default_value = "aksnet")]
    pub network: String,
    /// The plugin binary to install; default: `aksnet-cni` next to this `aksnet`.
    #[arg(long, value_name = "FILE")]
    pub plugin: Option<PathBuf>,
    /// `auto` (detect the runtime) or one of 0.4.0, 1.0.0, 1.1.0.
    #[arg(long, value_name = "VERSION", default_value = "auto")]
    pub cni_version: String,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// kubenet: the node's pod CIDR (Node `spec.podCIDR`).
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<Ipv4Net>,
    /// kubenet: the bridge.
    #[arg(long, value_name = "NAME", default_value = "cbr0")]
    pub bridge: String,
    /// nodesubnet, overlay, podsubnet: the node's name; default: the environment's NODE_NAME (downward API).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// nodesubnet, overlay, podsubnet: the node's address; default: NODE_IP. Checked against the reservation.
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<Ipv4Addr>,
    /// nodesubnet, overlay, podsubnet: the node subnet.
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    #[arg(long, value_name = "NAME", default_value = super::node::DEFAULT_SUBNET_NAME)]
    pub subnet_name: String,
    /// maxPods; default: the model's (30, Overlay 250).
    #[arg(long, value_name = "N")]
    pub max_pods: Option<u32>,
    /// overlay: the cluster pod CIDR the node takes its /24 of (e.g. 192.168.0.0/16).
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr_from: Option<Ipv4Net>,
    /// podsubnet: the pod subnet and its allocation (as `aksnet node join`).
    #[command(flatten)]
    pub pods: super::node::PodSubnetArgs,
    /// The cluster store (a directory or an etcd:// / etcds:// URL, as for
    /// `aksnet node join`); etcd TLS files and credentials come from etcdctl's
    /// ETCDCTL_* environment names.
    #[arg(long, value_name = "DIR|URL", default_value = DEFAULT_STORE_DIR)]
    pub store: String,
    /// nodesubnet, overlay, podsubnet: the pods' MTU written into the conflist; default: the
    /// MTU of the device through which the node reaches its subnet's gateway, looked up
    /// now, so that no ADD has to (docs/benchmarks.md). Run install again after changing
    /// the node interface's MTU.
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u32>,
    /// Restart this systemd unit (the agent) after installing.
    #[arg(long, value_name = "UNIT")]
    pub restart_agent_unit: Option<String>,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// One file install wrote; `backup` holds what was there before, if anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstalledFile {
    pub path: PathBuf,
    pub backup: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinedNode {
    pub node: String,
    /// The --store value install joined with.
    pub store: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallRecord {
    pub version: u32,
    pub files: Vec<InstalledFile>,
    pub joined: Option<JoinedNode>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    File(#[from] FsError),
    #[error("--{flag} {value:?}: {why}")]
    Flag {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("install record {}: {detail}", path.display())]
    Record { path: PathBuf, detail: String },
    #[error("`aksnet node {verb}` failed (see above)")]
    Node { verb: &'static str },
    #[error("the store reserved {reserved} for node {node}, but the node's address (--node-ip/NODE_IP) is {given}")]
    NodeIpMismatch {
        node: String,
        reserved: Ipv4Addr,
        given: Ipv4Addr,
    },
    #[error("{command}: {why}")]
    Command { command: String, why: String },
}

impl InstallError {
    fn exit_code(&self) -> u8 {
        match self {
            InstallError::Flag { .. } => 2,
            _ => 1,
        }
    }
}

/// The cniVersion a runtime accepts, from its `--version` output (docs/runtimes.md).
/// containerd 1.x (go-cni on libcni 1.1) knows up to 1.0.0; 2.x up to 1.1.0; anything else
/// (CRI-O, unknown) gets 1.0.0, which every libcni since 2021 reads.
pub fn cni_version_for(containerd_version_output: Option<&str>) -> &'static str {
    let major = containerd_version_output
        .and_then(|out| out.split_whitespace().nth(2))
        .map(|v| v.trim_start_matches('v'))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 2 => "1.1.0",
        _ => "1.0.0",
    }
}

fn detect_cni_version(flag: &str) -> Result<String, InstallError> {
    match flag {
        "auto" => {
            let out = Command::new("containerd")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            Ok(cni_version_for(out.as_deref()).to_string())
        }
        "0.4.0" | "1.0.0" | "1.1.0" => Ok(flag.to_string()),
        other => Err(InstallError::Flag {
            flag: "cni-version",
            value: other.to_string(),
            why: "expected auto, 0.4.0, 1.0.0 or 1.1.0".into(),
        }),
    }
}

/// The conflist install writes (docs/runtimes.md, "Conflists").
pub fn conflist(a: &InstallArgs, version: &str) -> Result<serde_json::Value, InstallError> {
    let plugin = match a.mode {
        InstallMode::Kubenet => {
            let cidr = a.pod_cidr.ok_or_else(|| InstallError::Flag {
                flag: "pod-cidr",
                value: String::new(),
                why: "required in kubenet mode (the Node's spec.podCIDR)".into(),
            })?;
            serde_json::json!({
                "type": PLUGIN_NAME, "mode": "kubenet", "bridge": a.bridge,
                "isGateway": true, "ipMasq": false, "dataDir": a.data_dir,
                "ipam": {"ranges": [[{"subnet": cidr.to_string()}]]}
            })
        }
        mode => {
            let mut p = serde_json::json!({
                "type": PLUGIN_NAME, "mode": mode.plugin_mode(), "dataDir": a.data_dir
            });
            if let Some(mtu) = a.mtu {
                p["mtu"] = mtu.into();
            }
            p
        }
    };
    Ok(serde_json::json!({"cniVersion": version, "name": a.network, "plugins": [plugin]}))
}

/// Writes `dir/name` unless it already holds `bytes`; records it (with a backup of a
/// different file that was there and is not already ours).
fn install_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
    record: &mut InstallRecord,
) -> Result<&'static str, InstallError> {
    // 0755: the runtime's directories are traversable by all, as their packages make them.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
        .create(dir)
        .map_err(|e| FsError::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source: e,
        })?;
    let path = dir.join(name);
    let ours = record.files.iter().any(|f| f.path == path);
    let current = match read_regular_capped(&path, MAX_PLUGIN_BYTES) {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    if current.as_deref() == Some(bytes) {
        if !ours {
            record.files.push(InstalledFile { path, backup: None });
        }
        return Ok("unchanged");
    }
    let mut backup = None;
    if let (Some(old), false) = (&current, ours) {
        let b = format!(".{name}.aksnet-backup");
        write_atomic(dir, &b, old, mode)?;
        backup = Some(dir.join(b));
    }
    write_atomic(dir, name, bytes, mode)?;
    if !ours {
        record.files.push(InstalledFile { path, backup });
    }
    Ok(if current.is_some() {
        "replaced"
    } else {
        "created"
    })
}

fn read_record(data_dir: &Path) -> Result<Option<InstallRecord>, InstallError> {
    let path = data_dir.join(RECORD_FILE);
    let bytes = match read_regular_capped(&path, 1 << 20) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let r: InstallRecord = serde_json::from_slice(&bytes).map_err(|e| InstallError::Record {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if r.version != RECORD_VERSION {
        return Err(InstallError::Record {
            path,
            detail: format!("version {} (this aksnet reads {RECORD_VERSION})", r.version),
        });
    }
    Ok(Some(r))
}

fn write_record(data_dir: &Path, r: &InstallRecord) -> Result<(), InstallError> {
    aksnet_fs::ensure_private_dir(data_dir)?;
    let mut text = serde_json::to_vec_pretty(r).map_err(|e| InstallError::Record {
        path: data_dir.join(RECORD_FILE),
        detail: e.to_string(),
    })?;
    text.push(b'\n');
    write_atomic(data_dir, RECORD_FILE, &text, aksnet_fs::PRIVATE_FILE_MODE)?;
    Ok(())
}

fn plugin_source(a: &InstallArgs) -> Result<PathBuf, InstallError> {
    if let Some(p) = &a.plugin {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().map_err(|e| InstallError::Command {
        command: "locate this executable".into(),
        why: e.to_string(),
    })?;
    Ok(exe.with_file_name(PLUGIN_NAME))
}

/// The join flags of the model: overlay's pod CIDR, podsubnet's pod subnet.
fn model_join_args(
    a: &InstallArgs,
) -> Result<
    (
        super::node::podcidr::PodCidrArgs,
        super::node::PodSubnetArgs,
    ),
    InstallError,
> {
    let mut pod_cidr = super::node::podcidr::PodCidrArgs::default();
    let mut pods = super::node::PodSubnetArgs::none();
    match a.mode {
        InstallMode::Overlay => {
            pod_cidr.pod_cidr_from = Some(a.pod_cidr_from.ok_or_else(|| InstallError::Flag {
                flag: "pod-cidr-from",
                value: String::new(),
                why: "required in overlay mode (the cluster pod CIDR, e.g. 192.168.0.0/16)".into(),
            })?);
            pod_cidr.pod_cidr_mask_size = aksnet_core::azure::OVERLAY_NODE_PREFIX_LEN;
        }
        InstallMode::Podsubnet if a.pods.pod_subnet.is_none() => {
            return Err(InstallError::Flag {
                flag: "pod-subnet",
                value: String::new(),
                why: "required in podsubnet mode (the pod subnet, e.g. 10.241.0.0/16)".into(),
            })
        }
        InstallMode::Podsubnet => pods = a.pods.clone(),
        InstallMode::Kubenet | InstallMode::Nodesubnet => {}
    }
    Ok((pod_cidr, pods))
}

/// nodesubnet, overlay, podsubnet: `aksnet node join` as its own command does it,
/// then the NODE_IP check.
fn join_node(a: &InstallArgs, record: &mut InstallRecord) -> Result<(), InstallError> {
    let node = a
        .node
        .clone()
        .or_else(|| std::env::var("NODE_NAME").ok())
        .ok_or_else(|| InstallError::Flag {
            flag: "node",
            value: String::new(),
            why: "required in nodesubnet, overlay and podsubnet modes (or the environment's NODE_NAME)".into(),
        })?;
    let subnet_text = a.subnet.clone().unwrap_or_default();
    let bad_subnet = |why: String| InstallError::Flag {
        flag: "subnet",
        value: subnet_text.clone(),
        why,
    };
    let subnet = subnet_text
        .parse()
        .map_err(|e: ipnet::AddrParseError| bad_subnet(e.to_string()))
        .and_then(|n| NodeSubnet::new(n).map_err(|e| bad_subnet(e.to_string())))?;
    let max_pods = a
        .max_pods
        .map(|n| {
            MaxPods::new(n).map_err(|e| InstallError::Flag {
                flag: "max-pods",
                value: n.to_string(),
                why: e.to_string(),
            })
        })
        .transpose()?;
    let (pod_cidr, pods) = model_join_args(a)?;
    let join = JoinArgs {
        node: node.clone(),
        subnet: Some(subnet),
        subnet_name: a.subnet_name.clone(),
        max_pods_flag: max_pods,
        store: store_args(&a.store)?,
        data_dir: a.data_dir.clone(),
        lease_ttl: None,
        pod_cidr,
        pods,
        overlay: a.mode == InstallMode::Overlay,
    };
    if super::node::run(NodeCommand::Join(join)) != ExitCode::SUCCESS {
        return Err(InstallError::Node { verb: "join" });
    }
    record.joined = Some(JoinedNode {
        node: node.clone(),
        store: a.store.clone(),
    });
    let given = a
        .node_ip
        .or_else(|| std::env::var("NODE_IP").ok().and_then(|s| s.parse().ok()));
    if let Some(given) = given {
        let pool = aksnet_store::local_pool::read_node_pool(&a.data_dir)
            .ok()
            .flatten();
        if let Some(pool) = pool {
            if pool.node_ip != given {
                return Err(InstallError::NodeIpMismatch {
                    node,
                    reserved: pool.node_ip,
                    given,
                });
            }
        }
    }
    Ok(())
}

/// The uplink's MTU for the routed modes' conflist: `--mtu`, else the MTU of the device
/// that routes to the node subnet's gateway (its first address), as the plugin would
/// find it at every ADD without it; `None` for kubenet (AKS's template fixes 1500) or
/// when nothing routes there yet (the plugin then looks at ADD).
fn uplink_mtu(a: &InstallArgs) -> Result<Option<u32>, InstallError> {
    if a.mode == InstallMode::Kubenet {
        return Ok(None);
    }
    if let Some(m) = a.mtu {
        let range = aksnet_core::naming::POD_MTU;
        if !range.contains(&m) {
            return Err(InstallError::Flag {
                flag: "mtu",
                value: m.to_string(),
                why: format!("must be from {} to {}", range.start(), range.end()),
            });
        }
        return Ok(Some(m));
    }
    let Some(gw) = a
        .subnet
        .as_deref()
        .and_then(|s| s.parse::<Ipv4Net>().ok())
        .and_then(|n| u32::from(n.network()).checked_add(1))
    else {
        return Ok(None);
    };
    let lookup = aksnet_netlink::Handle::new()
        .and_then(|mut h| h.mtu_towards(Ipv4Addr::from(gw).into()))
        .map_err(|e| InstallError::Command {
            command: "look up the uplink's MTU".into(),
            why: e.to_string(),
        })?;
    Ok(lookup)
}

fn install(a: &InstallArgs) -> Result<(), InstallError> {
    let version = detect_cni_version(&a.cni_version)?;
    let a = &InstallArgs {
        mtu: uplink_mtu(a)?,
        ..a.clone()
    };
    let list = conflist(a, &version)?;
    let mut record = read_record(&a.data_dir)?.unwrap_or(InstallRecord {
        version: RECORD_VERSION,
        files: Vec::new(),
        joined: None,
    });
    let src = plugin_source(a)?;
    let binary = read_regular_capped_following(&src, MAX_PLUGIN_BYTES)?;
    let what = install_file(
        &a.cni_bin_dir,
        PLUGIN_NAME,
        &binary,
        BINARY_MODE,
        &mut record,
    );
    write_record(&a.data_dir, &record)?;
    println!("{}: {}", a.cni_bin_dir.join(PLUGIN_NAME).display(), what?);
    // The conflist goes last: a CRI runtime reports the node's network ready as
    // soon as a conflist is in its directory (containerd 1.6 never asks the
    // plugin's STATUS), so a nodesubnet node without a pool must not have one.
    if a.mode.joins() {
        let joined = join_node(a, &mut record);
        write_record(&a.data_dir, &record)?;
        joined?;
    }
    let mut text = serde_json::to_vec_pretty(&list).map_err(|e| InstallError::Record {
        path: a.cni_conf_dir.join(&a.conflist_name),
        detail: e.to_string(),
    })?;
    text.push(b'\n');
    let what = install_file(
        &a.cni_conf_dir,
        &a.conflist_name,
        &text,
        aksnet_fs::PUBLIC_FILE_MODE,
        &mut record,
    );
    write_record(&a.data_dir, &record)?;
    println!(
        "{}: {} (cniVersion {version})",
        a.cni_conf_dir.join(&a.conflist_name).display(),
        what?
    );
    if let Some(unit) = &a.restart_agent_unit {
        restart_unit(unit)?;
    }
    Ok(())
}

fn restart_unit(unit: &str) -> Result<(), InstallError> {
    let out = Command::new("systemctl")
        .args(["restart", unit])
        .output()
        .map_err(|e| InstallError::Command {
            command: format!("systemctl restart {unit}"),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(InstallError::Command {
            command: format!("systemctl restart {unit}"),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    println!("restarted {unit}");
    Ok(())
}

fn uninstall(a: &UninstallArgs) -> Result<(), InstallError> {
    let Some(mut record) = read_record(&a.data_dir)? else {
        println!(
            "nothing to uninstall: no {}",
            a.data_dir.join(RECORD_FILE).display()
        );
        return Ok(());
    };
    if let Some(j) = record.joined.clone() {
        let leave = LeaveArgs {
            node: j.node.clone(),
            force: false,
            store: store_args(&j.store)?,
            data_dir: a.data_dir.clone(),
        };
        if super::node::run(NodeCommand::Leave(leave)) != ExitCode::SUCCESS {
            return Err(InstallError::Node { verb: "leave" });
        }
        record.joined = None;
        write_record(&a.data_dir, &record)?;
    }
    while let Some(f) = record.files.pop() {
        let dir = f.path.parent().unwrap_or(Path::new("/"));
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &f.backup {
            Some(b) => {
                std::fs::rename(b, &f.path).map_err(|e| FsError::Io {
                    op: "restore",
                    path: b.clone(),
                    source: e,
                })?;
                println!("{}: restored", f.path.display());
            }
            None => {
                remove_durably(dir, &name)?;
                println!("{}: removed", f.path.display());
            }
        }
        write_record(&a.data_dir, &record)?;
    }
    remove_durably(&a.data_dir, RECORD_FILE)?;
    Ok(())
}

pub fn run_install(a: InstallArgs) -> ExitCode {
    report(install(&a))
}

pub fn run_uninstall(a: UninstallArgs) -> ExitCode {
    report(uninstall(&a))
}

fn report(r: Result<(), InstallError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aksnet: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The node commands' store flags for a --store value (TLS files and
/// credentials from the ETCDCTL_* environment, the default deadline).
fn store_args(value: &str) -> Result<super::node::StoreArgs, InstallError> {
    let store = aksnet_store::parse_store(value).map_err(|e| InstallError::Flag {
        flag: "store",
        value: value.to_string(),
        why: e.to_string(),
    })?;
    Ok(super::node::StoreArgs {
        store,
        etcd_cacert: None,
        etcd_cert: None,
        etcd_key: None,
        etcd_user: None,
        etcd_password_file: None,
        store_timeout: std::time::Duration::from_secs(10),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_version_follows_the_runtime() {
        let c16 = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3";
        assert_eq!(cni_version_for(Some(c16)), "1.0.0");
        let c20 = "containerd containerd.io v2.0.4 1a43cb6a1035441f9aca8f5666a9b3ef9e70ab20";
        assert_eq!(cni_version_for(Some(c20)), "1.1.0");
        assert_eq!(cni_version_for(None), "1.0.0");
        assert_eq!(cni_version_for(Some("garbage")), "1.0.0");
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        a: InstallArgs,
    }

    fn args(extra: &[&str]) -> InstallArgs {
        let base = [
            "install",
            "--mode",
            "nodesubnet",
            "--subnet",
            "10.240.0.0/24",
        ];
        <Cli as clap::Parser>::try_parse_from(base.iter().chain(extra))
            .map(|c| c.a)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The routed modes' conflist carries the uplink's MTU, so that ADD looks nothing up.
    #[test]
    fn the_routed_conflist_carries_the_mtu() {
        let a = args(&["--mtu", "9000"]);
        assert_eq!(uplink_mtu(&a).ok().flatten(), Some(9000));
        let list = conflist(&a, "1.1.0").unwrap_or_default();
        assert_eq!(list["plugins"][0]["mtu"], 9000);
        let bad = args(&["--mtu", "40"]);
        assert!(matches!(
            uplink_mtu(&bad),
            Err(InstallError::Flag { flag: "mtu", .. })
        ));
    }
}
