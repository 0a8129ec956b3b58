//! `aksnet-cni`: the CNI plugin. `run` takes the environment and stdin a
//! runtime gives a plugin and returns what goes on stdout; the binary is a thin
//! wrapper around it. Modes: `kubenet` (bridge + veth, a drop-in for the
//! reference bridge + host-local chain) and `nodesubnet` (Azure CNI's routed
//! transparent datapath, addresses from the node's up-front reservation).
//!
//! Lock discipline (issue 2, item 3): the IPAM lock is held only inside
//! `IpamStore::transact`, never across netlink work.

pub mod config;
pub mod error;
pub mod ipmasq;
mod kubenet;
mod nodesubnet;
pub mod undo;

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use aksnet_cniproto::version::VersionResult;
use aksnet_cniproto::{CmdArgs, CniResult, CniVersion, Command, SUPPORTED_VERSIONS};
use aksnet_core::allocator::{AllocationMeta, AttachmentKey};
use aksnet_ipam::{IpamError, IpamStore};
use aksnet_netlink::{Handle, Netns};
use serde_json::Value;

use crate::config::{Mode, PluginConfig};
use crate::error::PluginError;

/// Runs one plugin invocation. `Ok(Some(v))` is printed on stdout; `Ok(None)`
/// prints nothing (DEL, CHECK, GC, STATUS).
pub fn run(
    env: impl Fn(&str) -> Option<String>,
    stdin: &[u8],
) -> Result<Option<Value>, PluginError> {
    let args = CmdArgs::from_env(env)?;
    if args.command == Command::Version {
        return Ok(Some(version_result(stdin)));
    }
    let cfg = PluginConfig::parse(stdin)?;
    for k in &cfg.ignored_keys {
        tracing::debug!(key = %k, "ignoring unknown configuration key");
    }
    match args.command {
        Command::Add => add(&args, &cfg).map(|r| Some(r.to_version(cfg.version))),
        Command::Del => del(&args, &cfg).map(|()| None),
        Command::Check => {
            need_version(&cfg, "CHECK", CniVersion::V0_4_0)?;
            check(&args, &cfg).map(|()| None)
        }
        Command::Gc => {
            need_version(&cfg, "GC", CniVersion::V1_1_0)?;
            gc(&cfg).map(|()| None)
        }
        Command::Status => {
            need_version(&cfg, "STATUS", CniVersion::V1_1_0)?;
            status(&cfg).map(|()| None)
        }
        Command::Version => Ok(Some(version_result(stdin))),
    }
}

/// VERSION answers whatever the stdin says (libcni probes with
/// `{"cniVersion":"1.0.0"}`; research/cni-clients.md §1.2).
fn version_result(stdin: &[u8]) -> Value {
    let asked =
        config::peek_version(stdin).unwrap_or_else(|| CniVersion::LATEST.as_str().to_string());
    serde_json::to_value(VersionResult {
        cni_version: &asked,
        supported_versions: &SUPPORTED_VERSIONS,
    })
    .unwrap_or(Value::Null)
}

fn need_version(
    cfg: &PluginConfig,
    verb: &'static str,
    needs: CniVersion,
) -> Result<(), PluginError> {
    if cfg.version < needs {
        return Err(PluginError::VerbNeedsVersion {
            verb,
            needs: needs.as_str(),
            given: cfg.version.as_str().to_string(),
        });
    }
    Ok(())
}

fn key(args: &CmdArgs) -> AttachmentKey {
    AttachmentKey::new(args.container_id.clone(), args.ifname.clone())
}

/// Addresses the runtime asked for: `args.cni.ips` > `runtimeConfig.ips` >
/// CNI_ARGS `IP=` (CONVENTIONS.md: `args` wins over CNI_ARGS).
fn requested_ips(args: &CmdArgs, cfg: &PluginConfig) -> Vec<IpAddr> {
    if cfg.requested_ips.is_empty() {
        args.args.ips.clone()
    } else {
        cfg.requested_ips.clone()
    }
}

fn meta(args: &CmdArgs) -> AllocationMeta {
    AllocationMeta {
        pod_namespace: args.args.k8s_pod_namespace.clone(),
        pod_name: args.args.k8s_pod_name.clone(),
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

fn open_netns(args: &CmdArgs) -> Result<Netns, PluginError> {
    let path = args.netns.clone().unwrap_or_default();
    Netns::open(&path).map_err(|source| PluginError::Netns { path, source })
}

/// The pod's netns and a netlink handle inside it. Opening the handle enters
/// the namespace (setns with CLONE_NEWNET), so a `CNI_NETNS` that is not a
/// network namespace — a plain file, another namespace type — is refused here,
/// before anything changes.
pub(crate) struct PodNs {
    pub netns: Netns,
    pub handle: Handle,
}

fn open_pod(args: &CmdArgs) -> Result<PodNs, PluginError> {
    let netns = open_netns(args)?;
    let handle = Handle::in_netns(&netns).map_err(|source| PluginError::Netns {
        path: netns.path().to_path_buf(),
        source,
    })?;
    Ok(PodNs { netns, handle })
}

fn add(args: &CmdArgs, cfg: &PluginConfig) -> Result<CniResult, PluginError> {
    // Bad input is refused before anything changes.
    requested_mac(args, cfg)?;
    let mut pod = open_pod(args)?;
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let mut host = Handle::new()?;
    let mut result = match &cfg.mode {
        Mode::Kubenet(k) => kubenet::add(args, cfg, k, &store, &mut host, &mut pod)?,
        Mode::NodeSubnet(n) => nodesubnet::add(args, cfg, n, &store, &mut host, &mut pod)?,
    };
    if !cfg.dns.is_empty() {
        result.dns = cfg.dns.clone();
    }
    // A plugin given prevResult outputs it with its own additions (SPEC.md
    // section 3, "Chained plugins"); interface indexes shift by what came before.
    if let Some(prev) = &cfg.prev_result {
        let offset = prev.interfaces.len();
        let mut merged = prev.clone();
        merged.interfaces.extend(result.interfaces);
        merged.ips.extend(result.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        merged.routes.extend(result.routes);
        if !result.dns.is_empty() {
            merged.dns = result.dns;
        }
        result = merged;
    }
    Ok(result)
}

fn del(args: &CmdArgs, cfg: &PluginConfig) -> Result<(), PluginError> {
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let mut host = Handle::new()?;
    let key = key(args);
    // The link first, then the address: an address is free only once nothing
    // routes it any more (otherwise the next ADD's host route could collide).
    let veth = match &cfg.mode {
        Mode::Kubenet(_) => kubenet::host_veth_to_remove(args),
        Mode::NodeSubnet(_) => nodesubnet::host_veth_to_remove(args, &store)?,
    };
    if let Some(name) = veth {
        remove_host_veth(&mut host, &name, cfg.async_delete)?;
    }
    let released = store.transact(|a| Ok::<_, PluginError>(a.release(&key)))?;
    if cfg.ip_masq && !released.is_empty() {
        ipmasq::apply(&ipmasq::script_del(&cfg.name, &released))?;
    }
    Ok(())
}

fn check(args: &CmdArgs, cfg: &PluginConfig) -> Result<(), PluginError> {
    let prev = cfg
        .prev_result
        .as_ref()
        .ok_or_else(|| PluginError::Config {
            field: "prevResult".into(),
            value: "(missing)".into(),
            why: "CHECK needs the cached ADD result (SPEC.md section 3)".into(),
        })?;
    let PodNs {
        netns,
        handle: mut pod,
    } = open_pod(args)?;
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let mut host = Handle::new()?;
    let mut problems = Vec::new();

    // The reservation must still be there and hold exactly the addresses of prevResult.
    let state = store.snapshot()?;
    let key = key(args);
    let ours: Vec<IpNet> = prev
        .ips
        .iter()
        .filter(|ip| {
            ip.interface
                .and_then(|i| prev.interfaces.get(i))
                .is_none_or(|i| i.name == args.ifname && i.sandbox.is_some())
        })
        .map(|ip| ip.address)
        .collect();
    match state.get(&key) {
        None => problems.push(format!("no IPAM reservation for {key}")),
        Some(leases) => {
            for net in &ours {
                if !leases.iter().any(|l| l.ip == net.addr()) {
                    problems.push(format!("address {} is not reserved for {key}", net.addr()));
                }
            }
        }
    }
    match pod.link_by_name(&args.ifname)? {
        None => problems.push(format!(
            "interface {} is missing in {}",
            args.ifname,
            netns.path().display()
        )),
        Some(link) => {
            let have = pod.list_addrs(link.index)?;
            for net in &ours {
                if !have.contains(net) {
                    problems.push(format!("address {net} is missing on {}", args.ifname));
                }
            }
            let routes = pod.list_routes()?;
            for r in &prev.routes {
                let found = routes
                    .iter()
                    .any(|k| k.dst == r.dst && (r.gw.is_none() || k.gateway == r.gw));
                if !found {
                    let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
                    problems.push(format!("route {}{via} is missing in the pod", r.dst));
                }
            }
        }
    }
    match &cfg.mode {
        Mode::Kubenet(k) => kubenet::check_host(args, k, &mut host, &mut problems)?,
        Mode::NodeSubnet(_) => {
            nodesubnet::check_host(args, &state, &ours, &mut host, &mut problems)?
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PluginError::Check(problems))
    }
}

/// GC (SPEC.md section 2, CNI 1.1): release every reservation whose
/// attachment is not in `cni.dev/valid-attachments`. A missing key means none
/// is valid: libcni has already DEL'd every cached attachment not in the list
/// before it sends GC, and `cnitool gc` sends no key at all
/// (research/cni-clients.md §1.8).
fn gc(cfg: &PluginConfig) -> Result<(), PluginError> {
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let valid: HashSet<AttachmentKey> = cfg
        .valid_attachments
        .iter()
        .flatten()
        .map(|a| AttachmentKey::new(a.container_id.clone(), a.ifname.clone()))
        .collect();
    // Links first (see del), derived from the reservations about to go.
    let snapshot = store.snapshot()?;
    let stale: Vec<AttachmentKey> = snapshot
        .keys()
        .filter(|k| !valid.contains(*k))
        .cloned()
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let mut host = Handle::new()?;
    let mut errors = Vec::new();
    for k in &stale {
        let name = match &cfg.mode {
            Mode::Kubenet(_) => {
                aksnet_core::naming::kubenet_host_veth_name(&k.container_id, &k.ifname)
            }
            Mode::NodeSubnet(_) => nodesubnet::host_veth_for(k, snapshot.meta(k)),
        };
        if let Err(e) = host.del_link_by_name(&name) {
            errors.push(e);
        }
    }
    let held = store.transact(|a| {
        a.gc(&valid);
        Ok::<_, PluginError>(
            a.records()
                .into_iter()
                .flat_map(|r| r.ips)
                .map(|l| l.ip)
                .collect::<Vec<_>>(),
        )
    })?;
    let mut errors: Vec<PluginError> = errors.into_iter().map(PluginError::from).collect();
    if cfg.ip_masq {
        if let Err(e) = ipmasq::apply(&ipmasq::script_sync(&cfg.name, &held)) {
            errors.push(e);
        }
    }
    // GC continues past errors and reports them (SPEC.md, GC).
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// STATUS (CNI 1.1): code 50 when ADD cannot succeed: no free address, or
/// (nodesubnet) no node pool yet.
fn status(cfg: &PluginConfig) -> Result<(), PluginError> {
    let pool = match &cfg.mode {
        Mode::Kubenet(k) => k.pool.clone(),
        Mode::NodeSubnet(_) => nodesubnet::load_pool(cfg)?.1,
    };
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let state = store.snapshot()?;
    if state.can_allocate(&pool) {
        Ok(())
    } else {
        Err(PluginError::NotReady(format!(
            "no free address: {} of {} in use",
            state.in_use(&pool),
            state.capacity(&pool)
        )))
    }
}

pub(crate) use ipnet::IpNet;

/// Reserves addresses for the attachment in one short transaction. Returns the
/// leases and whether they are new (a retried ADD gets its own back; only new
/// ones are released on rollback).
pub(crate) fn reserve(
    store: &IpamStore,
    pool: &aksnet_core::allocator::ValidPool,
    args: &CmdArgs,
    cfg: &PluginConfig,
) -> Result<(Vec<aksnet_core::allocator::Lease>, bool), PluginError> {
    let key = key(args);
    let requested = requested_ips(args, cfg);
    let meta = meta(args);
    store.transact(|a| {
        let existed = a.get(&key).is_some();
        let leases = a
            .allocate(pool, &key, &requested, meta)
            .map_err(IpamError::from)?;
        Ok::<_, PluginError>((leases, !existed))
    })
}

/// Last step of every mode's ADD: `ipMasq` rules for the pod's addresses,
/// with its inverse on the undo list.
pub(crate) fn finish_add(
    cfg: &PluginConfig,
    result: &CniResult,
    undo: &mut undo::Undo<'_>,
) -> Result<(), PluginError> {
    if !cfg.ip_masq {
        return Ok(());
    }
    let ips: Vec<IpAddr> = result.ips.iter().map(|i| i.address.addr()).collect();
    let subnets: Vec<IpNet> = result.ips.iter().map(|i| i.address.trunc()).collect();
    ipmasq::apply(&ipmasq::script_add(&cfg.name, &subnets, &ips))?;
    let name = cfg.name.clone();
    undo.push("remove ipMasq elements", move || {
        ipmasq::apply(&ipmasq::script_del(&name, &ips))
    });
    Ok(())
}

/// Releases the attachment's addresses (the inverse of `reserve`).
pub(crate) fn release(store: &IpamStore, key: &AttachmentKey) -> Result<(), PluginError> {
    store.transact(|a| Ok::<_, PluginError>(a.release(key)))?;
    Ok(())
}

/// Argument of the detached helper that finishes an asynchronous DEL:
/// `aksnet-cni --delete-link <ifindex> <ifname>` (runtimes never pass argv).
/// How long ADD waits for a pending asynchronous DEL of the same ifname (the
/// kernel needs 12–28 ms; a duplicate ADD waits this long, then fails).
const PENDING_DELETE_WAIT_MS: u64 = 300;

pub const DELETE_LINK_ARG: &str = "--delete-link";

/// Removes a pod's veth pair by its host end.
///
/// Deleting a device makes the caller wait for the kernel's RCU barrier in
/// `netdev_run_todo`: 12–28 ms here, nine tenths of a DEL, for the reference
/// plugins too (docs/benchmarks.md, "Why DEL …"). With `asyncDelete` (the
/// default) DEL does the part that matters to the runtime synchronously — the
/// host end goes down, which stops all pod traffic and flushes the routes
/// through it (the nodesubnet /32) — and hands the deletion itself, by
/// ifindex, to a detached `aksnet-cni --delete-link` process. Should that
/// process never run, the pair still goes when the runtime deletes the pod's
/// netns. Azure's transparent mode does not delete the veth at all and leaves it
/// to the netns (research/azure-cni.md §1.5).
pub(crate) fn remove_host_veth(
    host: &mut Handle,
    name: &str,
    async_delete: bool,
) -> Result<(), PluginError> {
    let Some(link) = host.link_by_name(name)? else {
        return Ok(());
    };
    if async_delete {
        match host.set_link_down(link.index) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if spawn_link_deleter(link.index, name) {
            return Ok(());
        }
    }
    host.del_link(link.index)?;
    Ok(())
}

/// Starts the detached deleter; false if it could not be started. Its stdio is
/// /dev/null so that no runtime waits on it (libcni waits for stdout to close).
fn spawn_link_deleter(index: u32, name: &str) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    std::process::Command::new(exe)
        .arg(DELETE_LINK_ARG)
        .arg(index.to_string())
        .arg(name)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// The deleter's work: delete link `index` if it still has the name DEL saw
/// (an ifindex is never reused while the link exists, and the name check
/// guards against a reused index after it is gone).
pub fn delete_link_if_named(index: u32, name: &str) -> Result<bool, PluginError> {
    let mut host = Handle::new()?;
    match host.link_by_index(index)? {
        Some(l) if l.name == name => Ok(host.del_link(index)?),
        _ => Ok(false),
    }
}

/// Creates the pod's veth pair: `host_name` in the host netns, the pod end
/// created directly in `netns` as `ifname`. If a name is taken: the pod's
/// ifname existing is the spec's duplicate-ADD error (SPEC.md section 2, ADD);
/// a leftover host end of the same name (an ADD that died, or — nodesubnet — an
/// earlier incarnation of the same pod, as Azure's `AddEndpoints` handles it)
/// is deleted and the pair created again.
pub(crate) fn create_pod_veth(
    host: &mut Handle,
    host_name: &str,
    ifname: &str,
    pod: &mut PodNs,
    mtu: u32,
    host_mac: Option<[u8; 6]>,
) -> Result<aksnet_netlink::Link, PluginError> {
    match host.create_veth(host_name, ifname, &pod.netns, mtu, host_mac) {
        Ok(l) => Ok(l),
        Err(e) if e.is_exists() => {
            // The pod's ifname may belong to a pair an asynchronous DEL is still
            // deleting (DEL then ADD into the same netns): give it a moment.
            let mut waited = 0;
            while pod.handle.link_by_name(ifname)?.is_some() {
                if waited >= PENDING_DELETE_WAIT_MS {
                    return Err(PluginError::IfnameExists {
                        ifname: ifname.to_string(),
                        netns: pod.netns.path().display().to_string(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                waited += 10;
            }
            tracing::info!(link = host_name, "deleting a stale host veth");
            host.del_link_by_name(host_name)?;
            Ok(host.create_veth(host_name, ifname, &pod.netns, mtu, host_mac)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The MAC the runtime asked for: `runtimeConfig.mac` > CNI_ARGS `MAC=`.
fn requested_mac(args: &CmdArgs, cfg: &PluginConfig) -> Result<Option<[u8; 6]>, PluginError> {
    let (field, text) = match (&cfg.requested_mac, &args.args.mac) {
        (Some(m), _) => ("runtimeConfig.mac", m),
        (None, Some(m)) => ("CNI_ARGS MAC", m),
        (None, None) => return Ok(None),
    };
    aksnet_netlink::parse_mac(text)
        .map(Some)
        .ok_or_else(|| PluginError::Config {
            field: field.into(),
            value: text.clone(),
            why: "is not a MAC address (aa:bb:cc:dd:ee:ff)".into(),
        })
}

/// Finds the pod end in the pod netns and applies a requested MAC.
/// Returns its index and MAC.
pub(crate) fn prepare_pod_link(
    pod: &mut Handle,
    args: &CmdArgs,
    cfg: &PluginConfig,
    netns: &Netns,
) -> Result<(u32, String), PluginError> {
    let link = pod
        .link_by_name(&args.ifname)?
        .ok_or_else(|| PluginError::IfnameMissing {
            ifname: args.ifname.clone(),
            netns: netns.path().display().to_string(),
        })?;
    match requested_mac(args, cfg)? {
        Some(mac) => {
            pod.set_mac(link.index, mac)?;
            Ok((link.index, aksnet_netlink::format_mac(&mac)))
        }
        None => Ok((link.index, link.mac_string())),
    }
}
