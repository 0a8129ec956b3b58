//! Glue between a CNI attachment and the IPAM store: the attachment key, the
//! addresses the runtime asked for, and the two short transactions (reserve,
//! release). The lock is held only inside them, never across netlink work.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use aksnet_cniproto::CmdArgs;
use aksnet_core::allocator::{AllocationMeta, AttachmentKey};
use aksnet_ipam::{IpamError, IpamStore};

use crate::config::PluginConfig;
use crate::error::PluginError;

pub(crate) fn key(args: &CmdArgs) -> AttachmentKey {
    AttachmentKey::new(args.container_id.clone(), args.ifname.clone())
}

/// Addresses the runtime asked for: `args.cni.ips` > `runtimeConfig.ips` >
/// CNI_ARGS `IP=` (CONVENTIONS.md: `args` wins over CNI_ARGS).
pub(crate) fn requested_ips(args: &CmdArgs, cfg: &PluginConfig) -> Vec<IpAddr> {
    if cfg.requested_ips.is_empty() {
        args.args.ips.clone()
    } else {
        cfg.requested_ips.clone()
    }
}

pub(crate) fn meta(args: &CmdArgs) -> AllocationMeta {
    AllocationMeta {
        pod_namespace: args.args.k8s_pod_namespace.clone(),
        pod_name: args.args.k8s_pod_name.clone(),
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

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

/// Releases the attachment's addresses (the inverse of `reserve`).
pub(crate) fn release(store: &IpamStore, key: &AttachmentKey) -> Result<(), PluginError> {
    store.transact(|a| Ok::<_, PluginError>(a.release(key)))?;
    Ok(())
}
