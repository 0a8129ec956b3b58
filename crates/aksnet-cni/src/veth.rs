//! The pod's veth pair: entering the pod netns, creating the pair with the pod
//! end directly in the netns, preparing the pod end, and removing the pair
//! (synchronously or through the detached deleter of `asyncDelete`).

use aksnet_cniproto::CmdArgs;
use aksnet_netlink::{Handle, Netns};

use crate::config::PluginConfig;
use crate::error::PluginError;
use crate::undo::Undo;

pub(crate) fn open_netns(args: &CmdArgs) -> Result<Netns, PluginError> {
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

pub(crate) fn open_pod(args: &CmdArgs) -> Result<PodNs, PluginError> {
    open_pod_with(args, || Ok(()))
}

/// As [`open_pod`], running `prepare` inside the pod netns while the
/// netlink socket there is opened: one entry into the namespace, on this
/// thread and back (`Handle::in_netns_here_with`; a thread per entry cost
/// about a third of a millisecond, docs/benchmarks.md).
pub(crate) fn open_pod_with(
    args: &CmdArgs,
    prepare: impl FnOnce() -> aksnet_netlink::Result<()>,
) -> Result<PodNs, PluginError> {
    let netns = open_netns(args)?;
    if netns.is_current()? {
        return Err(PluginError::NetnsIsOwn {
            path: netns.path().to_path_buf(),
        });
    }
    let handle =
        Handle::in_netns_here_with(&netns, prepare).map_err(|source| PluginError::Netns {
            path: netns.path().to_path_buf(),
            source,
        })?;
    Ok(PodNs { netns, handle })
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
/// to the netns (docs/azure.md#node-wide-lock).
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

/// How the host end is created (it is always created up, in one request).
#[derive(Clone, Copy)]
pub(crate) enum HostEnd {
    /// nodesubnet: a fixed MAC (Azure's `aa:aa:aa:aa:aa:aa`).
    Mac([u8; 6]),
    /// kubenet: already a port of this bridge.
    BridgePort(u32),
}

fn create(
    host: &mut Handle,
    host_name: &str,
    ifname: &str,
    pod: &PodNs,
    mtu: u32,
    end: HostEnd,
) -> aksnet_netlink::Result<aksnet_netlink::Link> {
    match end {
        HostEnd::Mac(mac) => host.create_veth(host_name, ifname, &pod.netns, mtu, Some(mac)),
        HostEnd::BridgePort(bridge) => {
            host.create_veth_in_bridge(host_name, ifname, &pod.netns, mtu, bridge)
        }
    }
}

/// What ADD knows about the attachment whose pair it creates, to tell what an
/// existing name means (issue 10, items 2 and 3).
pub(crate) struct Claim<'a> {
    /// The reservation is this ADD's own: no earlier ADD of the attachment
    /// holds it. If the reservation existed, an existing pod interface is that
    /// earlier ADD's live attachment, and this is a duplicate ADD.
    pub fresh: bool,
    /// The live attachment (other than this one) whose host veth has this
    /// name, if any.
    pub owner_of_host: &'a dyn Fn(&str) -> Result<Option<String>, PluginError>,
}

/// What a mode's `setup` works from: the call, the configuration and the
/// claim on the attachment.
#[derive(Clone, Copy)]
pub(crate) struct AddCtx<'a> {
    pub args: &'a CmdArgs,
    pub cfg: &'a PluginConfig,
    pub claim: &'a Claim<'a>,
}

/// Creates the pod's veth pair: `host_name` in the host netns, the pod end
/// created directly in `netns` as the call's ifname, and pushes the host end's
/// deletion on `undo`. If a name is taken: the pod's ifname existing is the
/// spec's duplicate-ADD error (SPEC.md section 2, ADD); a leftover host end of
/// the same name (an ADD that died) is deleted and the pair created again, but
/// one that another live attachment uses is never touched (unlike Azure's
/// `AddEndpoints`, which deletes it).
pub(crate) fn create_pod_veth(
    ctx: &AddCtx<'_>,
    host: &mut Handle,
    host_name: &str,
    pod: &mut PodNs,
    mtu: u32,
    end: HostEnd,
    undo: &mut Undo<'_>,
) -> Result<aksnet_netlink::Link, PluginError> {
    let (ifname, claim) = (ctx.args.ifname.as_str(), ctx.claim);
    let link = match create(host, host_name, ifname, pod, mtu, end) {
        Ok(l) => l,
        Err(e) if e.is_exists() => {
            wait_for_pending_delete(ifname, pod, claim.fresh)?;
            // The pod's name is free, so the host name is taken. It may be
            // replaced only when it provably belongs to nothing live: no other
            // reservation maps to it (every live pair has one, made before
            // the pair and released after it).
            if let Some(owner) = (claim.owner_of_host)(host_name)? {
                return Err(PluginError::HostVethTaken {
                    name: host_name.to_string(),
                    owner,
                });
            }
            tracing::info!(link = host_name, "deleting a stale host veth");
            host.del_link_by_name(host_name)?;
            create(host, host_name, ifname, pod, mtu, end)?
        }
        Err(e) => return Err(e.into()),
    };
    let name_for_undo = host_name.to_string();
    undo.push("delete host veth", move || {
        Handle::new()?.del_link_by_name(&name_for_undo)?;
        Ok(())
    });
    Ok(link)
}

/// The pod's ifname exists. A fresh attachment may be looking at a pair an
/// asynchronous DEL of its previous incarnation is still deleting (DEL then
/// ADD into the same netns): give it a moment. Otherwise it is the live
/// interface of this attachment: a duplicate ADD (SPEC.md section 2, ADD).
fn wait_for_pending_delete(ifname: &str, pod: &mut PodNs, fresh: bool) -> Result<(), PluginError> {
    let exists = |pod: &mut PodNs| -> Result<bool, PluginError> {
        Ok(pod.handle.link_by_name(ifname)?.is_some())
    };
    let limit = if fresh { PENDING_DELETE_WAIT_MS } else { 0 };
    let mut waited = 0;
    while exists(pod)? {
        if waited >= limit {
            return Err(PluginError::IfnameExists {
                ifname: ifname.to_string(),
                netns: pod.netns.path().display().to_string(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 10;
    }
    Ok(())
}

/// The MAC the runtime asked for: `runtimeConfig.mac` > CNI_ARGS `MAC=`.
pub(crate) fn requested_mac(
    args: &CmdArgs,
    cfg: &PluginConfig,
) -> Result<Option<[u8; 6]>, PluginError> {
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
