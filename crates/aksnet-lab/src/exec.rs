//! Running the real binaries the way a runtime and a node do: `aksnet-cni`
//! with the CNI protocol inside the node's netns, `aksnet node join` against
//! the lab's store, `aksnet agent --once` inside the node's netns.
//!
//! A child is spawned from a thread that has entered the node's netns
//! (`aksnet_netlink::run_in_netns`): fork copies the calling thread's
//! namespaces, so the plugin creates the host veth in the node, as the
//! aksnet-cni docs require. No `ip netns exec`, no `unsafe` pre_exec.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aksnet_netlink::{named_netns_path, Netns};
use serde::Deserialize;

use crate::error::{LabError, Result};

/// Env var naming the directory holding `aksnet` and `aksnet-cni`.
pub const BIN_DIR_ENV: &str = "AKSNET_BIN_DIR";

/// The binaries the lab drives.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub aksnet: PathBuf,
    pub aksnet_cni: PathBuf,
}

impl Binaries {
    /// `dir` if given, else `$AKSNET_BIN_DIR`, else the directory of the
    /// running executable (`target/debug/aksnet` finds `target/debug/aksnet-cni`).
    pub fn locate(dir: Option<&Path>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => match std::env::var_os(BIN_DIR_ENV) {
                Some(d) => PathBuf::from(d),
                None => {
                    let exe = std::env::current_exe().map_err(|e| {
                        LabError::io("find current executable", "/proc/self/exe", e)
                    })?;
                    exe.parent().map(Path::to_path_buf).unwrap_or_default()
                }
            },
        };
        let found = Self {
            aksnet: dir.join("aksnet"),
            aksnet_cni: dir.join("aksnet-cni"),
        };
        for (name, path) in [("aksnet", &found.aksnet), ("aksnet-cni", &found.aksnet_cni)] {
            if !path.is_file() {
                return Err(LabError::MissingBinary {
                    name,
                    path: path.clone(),
                    hint: format!("build it (cargo build -p {name}) or point --bin-dir / ${BIN_DIR_ENV} at its directory"),
                });
            }
        }
        Ok(found)
    }

    fn cni_path(&self) -> String {
        self.aksnet_cni
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

fn status_text(out: &Output) -> String {
    match out.status.code() {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".to_string(),
    }
}

/// Runs `cmd` with `stdin` in the named netns (or the current one).
fn run(what: &str, netns: Option<&str>, mut cmd: Command, stdin: &[u8]) -> Result<Output> {
    let mut spawn = move || -> std::io::Result<Output> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin)?;
        }
        child.wait_with_output()
    };
    let result = match netns {
        Some(name) => Netns::open(named_netns_path(name))?.run(spawn)?,
        None => spawn(),
    };
    result.map_err(|e| LabError::Command {
        what: what.to_string(),
        status: "could not run".to_string(),
        message: e.to_string(),
    })
}

/// `run` with no stdin, where anything but success is a `Command` error.
fn run_ok(what: &str, netns: Option<&str>, cmd: Command) -> Result<Output> {
    let out = run(what, netns, cmd, b"")?;
    if !out.status.success() {
        return Err(failed(what.to_string(), &out));
    }
    Ok(out)
}

fn failed(what: String, out: &Output) -> LabError {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    LabError::Command {
        what,
        status: status_text(out),
        message: if stderr.is_empty() { stdout } else { stderr },
    }
}

/// The part of `<data-dir>/node-pool.json` the lab needs (docs/node.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    pub node_ip: Ipv4Addr,
    pub pod_ips: Vec<Ipv4Addr>,
    /// An Overlay node's /24 (version 3, docs/models.md#overlay).
    #[serde(default)]
    pub overlay: Option<OverlayPool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayPool {
    pub pod_cidr: ipnet::Ipv4Net,
}

/// CNI error code 11, "try again later": a Pod Subnet node with no free
/// address waits for a batch (docs/models.md, "Who tops up").
pub const CNI_TRY_AGAIN: u64 = 11;

/// `aksnet node join`: reserves the node's addresses in the lab's store and
/// writes its pool. `Err(Command)` carries the refusal text (e.g.
/// `InsufficientSubnetSize: ...`).
#[allow(clippy::too_many_arguments)]
pub fn node_join(
    bins: &Binaries,
    node: &str,
    subnet: ipnet::Ipv4Net,
    subnet_name: &str,
    max_pods: u32,
    store: &Path,
    data_dir: &Path,
    model_args: &[String],
) -> Result<NodePool> {
    let mut cmd = Command::new(&bins.aksnet);
    cmd.args([
        "node",
        "join",
        "--node",
        node,
        "--subnet",
        &subnet.to_string(),
    ])
    .args([
        "--subnet-name",
        subnet_name,
        "--max-pods",
        &max_pods.to_string(),
    ])
    .arg("--store")
    .arg(store)
    .arg("--data-dir")
    .arg(data_dir)
    .args(model_args);
    let what = format!("aksnet node join --node {node}");
    run_ok(&what, None, cmd)?;
    let path = data_dir.join("node-pool.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| LabError::io("read node pool", &path, e))?;
    serde_json::from_str(&text).map_err(|e| LabError::State {
        path,
        why: e.to_string(),
    })
}

/// `aksnet node leave`: releases the node's reservation in the lab's store.
pub fn node_leave(bins: &Binaries, node: &str, store: &Path, data_dir: &Path) -> Result<()> {
    let mut cmd = Command::new(&bins.aksnet);
    cmd.args(["node", "leave", "--force", "--node", node, "--store"])
        .arg(store)
        .arg("--data-dir")
        .arg(data_dir);
    let what = format!("aksnet node leave --node {node}");
    run_ok(&what, None, cmd)?;
    Ok(())
}

/// `aksnet node pod-sync` (one round): a dynamic Pod Subnet node takes a
/// batch when it runs low, or returns a wholly free one.
pub fn pod_sync(bins: &Binaries, store: &Path, data_dir: &Path) -> Result<()> {
    let mut cmd = Command::new(&bins.aksnet);
    cmd.args(["node", "pod-sync", "--store"])
        .arg(store)
        .arg("--data-dir")
        .arg(data_dir);
    let what = format!("aksnet node pod-sync --data-dir {}", data_dir.display());
    run_ok(&what, None, cmd)?;
    Ok(())
}

/// `aksnet subnet reserve`: `ip` is held by `owner` (a VM of the node subnet),
/// so no node is ever given it.
pub fn subnet_reserve(
    bins: &Binaries,
    ip: Ipv4Addr,
    owner: &str,
    subnet: ipnet::Ipv4Net,
    subnet_name: &str,
    store: &Path,
) -> Result<()> {
    let mut cmd = Command::new(&bins.aksnet);
    cmd.args([
        "subnet",
        "reserve",
        "--address",
        &ip.to_string(),
        "--owner",
        owner,
    ])
    .args([
        "--subnet",
        &subnet.to_string(),
        "--subnet-name",
        subnet_name,
    ])
    .arg("--store")
    .arg(store);
    let what = format!("aksnet subnet reserve --address {ip}");
    run_ok(&what, None, cmd)?;
    Ok(())
}

/// `aksnet node join --pod-cidr-from` (kubenet on a LAN): the node's block of the
/// cluster pod CIDR, from the cluster store.
pub fn node_join_pod_cidr(
    bins: &Binaries,
    node: &str,
    pod_cidr: ipnet::Ipv4Net,
    node_ip: Ipv4Addr,
    store: &Path,
    data_dir: &Path,
) -> Result<ipnet::Ipv4Net> {
    let mut cmd = Command::new(&bins.aksnet);
    cmd.args(["node", "join", "--node", node])
        .args(["--pod-cidr-from", &pod_cidr.to_string()])
        .args(["--node-ip", &node_ip.to_string()])
        .arg("--store")
        .arg(store)
        .arg("--data-dir")
        .arg(data_dir);
    let what = format!("aksnet node join --node {node} --pod-cidr-from {pod_cidr}");
    let out = run_ok(&what, None, cmd)?;
    // "node <name> pod CIDR <cidr> (allocated), next hop <ip>"
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.split(" pod CIDR ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .ok_or_else(|| LabError::Command {
            what,
            status: "exit 0".into(),
            message: format!("no pod CIDR in its output: {text}"),
        })
}

/// `aksnet agent --once` inside the node: ip-masq-agent–compatible SNAT.
pub fn agent_once(
    bins: &Binaries,
    node_netns: &str,
    mode_args: &[String],
    config_dir: &Path,
    table: &str,
) -> Result<()> {
    let mut cmd = Command::new(&bins.aksnet);
    cmd.args(["agent", "--once"])
        .args(mode_args)
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--table", table]);
    let what = format!("aksnet agent --once in {node_netns}");
    run_ok(&what, Some(node_netns), cmd)?;
    Ok(())
}

/// A CNI error result (`{"code":…,"msg":…,"details":…}` on stdout, exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniFailure {
    pub code: u64,
    pub msg: String,
    pub details: String,
}

/// One `aksnet-cni` invocation as a runtime makes it: CNI_* env, config on
/// stdin, inside the node's netns.
pub fn cni(
    bins: &Binaries,
    command: &str,
    node_netns: &str,
    pod: &str,
    pod_netns: &str,
    config: &str,
) -> Result<std::result::Result<serde_json::Value, CniFailure>> {
    let mut cmd = Command::new(&bins.aksnet_cni);
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        )
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", pod)
        .env("CNI_NETNS", named_netns_path(pod_netns))
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
        )
        .env("CNI_PATH", bins.cni_path());
    let what = format!("aksnet-cni {command} {pod} in {node_netns}");
    let out = run(&what, Some(node_netns), cmd, config.as_bytes())?;
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    if out.status.success() {
        return Ok(Ok(parsed.unwrap_or(serde_json::Value::Null)));
    }
    match parsed {
        Some(v) if v.get("code").is_some() => Ok(Err(CniFailure {
            code: v.get("code").and_then(|c| c.as_u64()).unwrap_or(0),
            msg: v
                .get("msg")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_string(),
            details: v
                .get("details")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_string(),
        })),
        _ => Err(failed(what, &out)),
    }
}

/// The first IPv4 address of a CNI ADD result.
pub fn result_ipv4(result: &serde_json::Value) -> Option<Ipv4Addr> {
    result
        .get("ips")?
        .as_array()?
        .iter()
        .filter_map(|ip| ip.get("address")?.as_str())
        .filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
        .next()
}

/// `ip -n <netns> <args>`: only for what aksnet-netlink has no call for
/// (policy routing rules).
pub fn ip(netns: &str, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.arg("-n").arg(netns).args(args);
    let what = format!("ip -n {netns} {}", args.join(" "));
    run_ok(&what, None, cmd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_an_add_result() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"cniVersion":"1.1.0","interfaces":[],"ips":[{"address":"10.224.0.5/24","gateway":"169.254.1.1","interface":1}]}"#,
        )
        .unwrap();
        assert_eq!(result_ipv4(&v), Some(Ipv4Addr::new(10, 224, 0, 5)));
        assert_eq!(result_ipv4(&serde_json::json!({"ips": []})), None);
    }
}
