//! `aksnet-cni`: the CNI plugin. `run` takes the environment and stdin a
//! runtime gives a plugin and returns what goes on stdout; the binary is a thin
//! wrapper around it. Modes: `kubenet` (bridge + veth, a drop-in for the
//! reference bridge + host-local chain) and `nodesubnet` (Azure CNI's routed
//! transparent datapath, addresses from the node's up-front reservation).
//!
//! Lock discipline (issue 2, item 3): the IPAM lock is held only inside
//! `IpamStore::transact`, never across netlink work.

pub mod arena;
pub mod config;
pub mod error;
mod ipam;
pub mod ipmasq;
mod kubenet;
mod mode;
mod nodesubnet;
mod overlay;
mod podsubnet;
pub mod undo;
pub mod verblog;
mod veth;

use std::collections::HashSet;
use std::net::IpAddr;

use aksnet_cniproto::version::VersionResult;
use aksnet_cniproto::{CmdArgs, CniResult, CniVersion, Command, SUPPORTED_VERSIONS};
use aksnet_core::allocator::AttachmentKey;
use aksnet_ipam::{AttachmentLock, IpamStore, DEFAULT_LOCK_TIMEOUT};
use aksnet_netlink::Handle;
use serde_json::Value;

use crate::config::PluginConfig;
use crate::error::PluginError;
use crate::ipam::{key, release, reserve};
use crate::mode::{Exhausted, HostCheck, Setup};
use crate::undo::Undo;
pub use crate::veth::{delete_link_if_named, DELETE_LINK_ARG};
use crate::veth::{open_pod, open_pod_with, remove_host_veth, requested_mac, AddCtx, Claim, PodNs};
use aksnet_core::allocator::LeaseInfo;

/// The largest network configuration read from stdin (issue 10, item 7: an
/// unbounded read let 100 MB of input take 208 MB of memory). A GC listing
/// 20,000 valid attachments is about 2 MB.
pub const MAX_STDIN_BYTES: usize = 4 << 20;

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
/// `{"cniVersion":"1.0.0"}`; docs/cni-clients.md#libcni).
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

/// The attachment's own lock, held for the whole verb (see
/// `aksnet_ipam::attachment_lock`: only calls on the same container and
/// ifname wait for each other).
fn lock_attachment(cfg: &PluginConfig, args: &CmdArgs) -> Result<AttachmentLock, PluginError> {
    Ok(AttachmentLock::acquire(
        &cfg.data_dir,
        &cfg.name,
        &key(args),
        DEFAULT_LOCK_TIMEOUT,
    )?)
}

fn add(args: &CmdArgs, cfg: &PluginConfig) -> Result<CniResult, PluginError> {
    // Bad input is refused before anything changes.
    requested_mac(args, cfg)?;
    let mode = cfg.mode.datapath();
    let mut pod = open_pod_with(args, || mode.prepare_pod_netns())?;
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let lock = lock_attachment(cfg, args)?;
    let mut result = match add_attachment(args, cfg, &store, &mut pod) {
        Ok(r) => r,
        Err(e) => {
            // An ADD that undid itself leaves no attachment: its lock file goes
            // too. One that failed beside a live attachment leaves both.
            if matches!(store.snapshot(), Ok(s) if s.get(&key(args)).is_none()) {
                let _ = lock.remove();
            }
            return Err(e);
        }
    };
    drop(lock);
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

/// The ADD skeleton every mode shares: reserve (one short IPAM transaction),
/// then the mode's datapath and ipMasq under an undo list, then commit. The
/// reservation is released on failure only if this ADD created it: an
/// existing one belongs to an earlier ADD of the same attachment.
fn add_attachment(
    args: &CmdArgs,
    cfg: &PluginConfig,
    store: &IpamStore,
    pod: &mut PodNs,
) -> Result<CniResult, PluginError> {
    let mode = cfg.mode.datapath();
    let addresses = mode.addresses(cfg)?;
    let (leases, fresh) = reserve(store, &addresses.pool, args, cfg).map_err(|e| match e {
        PluginError::Ipam(ref i) => match i.exhausted_in_use() {
            Some(in_use) => mode
                .no_free_address(Exhausted {
                    cfg,
                    addresses: &addresses,
                    in_use: in_use as usize,
                })
                .unwrap_or(e),
            None => e,
        },
        other => other,
    })?;
    let mut undo = Undo::new();
    if fresh {
        let key = key(args);
        undo.push("release addresses", move || release(store, &key));
    }
    let infos: Vec<LeaseInfo> = leases
        .iter()
        .filter_map(|l| addresses.pool.lease_info(l.ip))
        .collect();
    let owner_of_host = |name: &str| owner_of_host_veth(cfg, store, args, name);
    let claim = Claim {
        fresh,
        owner_of_host: &owner_of_host,
    };
    let ctx = AddCtx {
        args,
        cfg,
        claim: &claim,
    };
    let mut host = Handle::new()?;
    let built = mode
        .setup(Setup {
            ctx,
            addresses: &infos,
            host: &mut host,
            pod,
            undo: &mut undo,
        })
        .and_then(|r| finish_add(cfg, &r, &mut undo).map(|()| r));
    match built {
        Ok(r) => {
            undo.commit();
            Ok(r)
        }
        Err(e) => Err(undo.rollback(e)),
    }
}

fn del(args: &CmdArgs, cfg: &PluginConfig) -> Result<(), PluginError> {
    let store = IpamStore::open(&cfg.data_dir, &cfg.name)?;
    let lock = lock_attachment(cfg, args)?;
    let mut host = Handle::new()?;
    let key = key(args);
    // The link first, then the address: an address is free only once nothing
    // routes it any more (otherwise the next ADD's host route could collide).
    if let Some(name) = host_veth_to_remove(cfg, args, &store)? {
        remove_host_veth(&mut host, &name, cfg.async_delete)?;
    }
    let released = store.transact(|a| Ok::<_, PluginError>(a.release(&key)))?;
    if cfg.ip_masq && !released.is_empty() {
        ipmasq::apply(ipmasq::script_del(&cfg.name, &released))?;
    }
    lock.remove()?;
    Ok(())
}

/// DEL: the host veth to remove (its routes go with it). The name comes from
/// the reservation's metadata when there is one, else from the call. If
/// another live reservation maps to the same name, the link is theirs and is
/// left alone.
fn host_veth_to_remove(
    cfg: &PluginConfig,
    args: &CmdArgs,
    store: &IpamStore,
) -> Result<Option<String>, PluginError> {
    let mode = cfg.mode.datapath();
    let state = store.snapshot()?;
    let key = key(args);
    let name = match state.get(&key) {
        Some(_) => mode.host_veth(&key, state.meta(&key)),
        None => mode.host_veth(&key, Some(&ipam::meta(args))),
    };
    let taken_by_other = state
        .keys()
        .filter(|k| **k != key)
        .any(|k| mode.host_veth(k, state.meta(k)) == name);
    Ok((!taken_by_other).then_some(name))
}

/// Which live attachment other than `args`' own has the host veth `name`, if
/// any (issue 10, item 3): an ADD never deletes a link that one uses.
pub(crate) fn owner_of_host_veth(
    cfg: &PluginConfig,
    store: &IpamStore,
    args: &CmdArgs,
    name: &str,
) -> Result<Option<String>, PluginError> {
    let state = store.snapshot()?;
    let ours = key(args);
    let owner = state
        .keys()
        .filter(|k| **k != ours)
        .find(|k| cfg.mode.datapath().host_veth(k, state.meta(k)) == name)
        .map(|k| {
            let pod = state
                .meta(k)
                .and_then(|m| {
                    Some(format!(
                        " of pod {}/{}",
                        m.pod_namespace.as_deref()?,
                        m.pod_name.as_deref()?
                    ))
                })
                .unwrap_or_default();
            format!("{k}{pod}")
        });
    Ok(owner)
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
    cfg.mode.datapath().check_host(HostCheck {
        args,
        state: &state,
        ours: &ours,
        host: &mut host,
        problems: &mut problems,
    })?;
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
/// (docs/cni-clients.md#gc). An attachment whose own lock is held (an
/// ADD or DEL of it is running) is left for the next GC.
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
    // An attachment an ADD or DEL is working on right now is left to it.
    let mut locks = Vec::new();
    for k in &stale {
        let Some(lock) = AttachmentLock::try_acquire(&cfg.data_dir, &cfg.name, k)? else {
            continue;
        };
        let name = cfg.mode.datapath().host_veth(k, snapshot.meta(k));
        if let Err(e) = host.del_link_by_name(&name) {
            errors.push(e);
        }
        locks.push((k.clone(), lock));
    }
    let collected: HashSet<AttachmentKey> = locks.iter().map(|(k, _)| k.clone()).collect();
    let held = store.transact(|a| {
        for k in &collected {
            a.release(k);
        }
        Ok::<_, PluginError>(
            a.record_views()
                .flat_map(|r| r.ips.iter().map(|l| l.ip))
                .collect::<Vec<_>>(),
        )
    })?;
    let mut errors: Vec<PluginError> = errors.into_iter().map(PluginError::from).collect();
    for (_, lock) in locks {
        if let Err(e) = lock.remove() {
            errors.push(e.into());
        }
    }
    if cfg.ip_masq {
        if let Err(e) = ipmasq::apply(ipmasq::script_sync(&cfg.name, &held)) {
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
    let pool = cfg.mode.datapath().addresses(cfg)?.pool;
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

/// Last step of every mode's ADD: `ipMasq` rules for the pod's addresses,
/// with its inverse on the undo list.
fn finish_add(
    cfg: &PluginConfig,
    result: &CniResult,
    undo: &mut undo::Undo<'_>,
) -> Result<(), PluginError> {
    if !cfg.ip_masq {
        return Ok(());
    }
    let ips: Vec<IpAddr> = result.ips.iter().map(|i| i.address.addr()).collect();
    let subnets: Vec<IpNet> = result.ips.iter().map(|i| i.address.trunc()).collect();
    ipmasq::apply(ipmasq::script_add(&cfg.name, &subnets, &ips))?;
    let name = cfg.name.clone();
    undo.push("remove ipMasq elements", move || {
        ipmasq::apply(ipmasq::script_del(&name, &ips))
    });
    Ok(())
}
