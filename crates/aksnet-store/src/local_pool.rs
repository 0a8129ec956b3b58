//! The node's local pool file, `<dataDir>/node-pool.json` ([`NodePool`],
//! crates/aksnet-core/src/pool.rs): `aksnet node join` writes the node's
//! reservation there so that the plugin's ADD never calls the cluster store
//! (issue 3). Written atomically (temp, fdatasync, rename, directory fsync) with mode
//! 0600 in a 0700 data directory, never through a symlink (`aksnet-fs`); read with
//! every field checked, errors naming the file, field and value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aksnet_core::azure::{MaxPods, NodeSubnet, OVERLAY_NODE_PREFIX_LEN};
use std::net::Ipv4Addr;

use aksnet_core::podsubnet;
use aksnet_core::pool::{
    NodePool, OverlayPool, PodSubnetPool, NODE_POOL_FILE, NODE_POOL_VERSION,
    NODE_POOL_VERSION_OVERLAY, NODE_POOL_VERSION_POD_SUBNET,
};
use ipnet::IpNet;

use aksnet_fs::{ensure_private_dir, read_regular_capped, remove_durably, write_atomic, FsError};

/// `<dataDir>/node-pool.lease` (JSON): the lease the node's reservation lives on.
/// Not `*.json`: every `<name>.json` in the data directory is an IPAM network's
/// state (aksnet_ipam::networks_in).
pub const NODE_LEASE_FILE: &str = "node-pool.lease";
/// `<dataDir>/node-pool.fenced`: present when the node may no longer own its pool.
pub const FENCE_FILE: &str = "node-pool.fenced";

/// What `node join --lease-ttl` records for `aksnet node keepalive`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeLease {
    pub node: String,
    pub lease: i64,
    pub ttl_seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalPoolError {
    #[error("node pool: {0}")]
    Fs(#[from] FsError),
    #[error("node pool file {}: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// The node lost (or may have lost) its reservation: the plugin must not
    /// hand out its addresses until `aksnet node join` ran again.
    #[error(
        "node pool file {}: fenced by {}: {reason}; no address is handed out from this \
         pool until `aksnet node join` succeeds again",
        pool.display(), fence.display()
    )]
    Fenced {
        pool: PathBuf,
        fence: PathBuf,
        reason: String,
    },
    #[error("node pool file {}: field {field} = {value}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// The largest pool file read (maxPods 250 is about 5 KB).
pub const MAX_NODE_POOL_BYTES: u64 = 1 << 20;

/// `<data_dir>/node-pool.json`.
pub fn node_pool_path(data_dir: &Path) -> PathBuf {
    data_dir.join(NODE_POOL_FILE)
}

/// Writes the pool atomically, creating `data_dir` if needed.
pub fn write_node_pool(data_dir: &Path, pool: &NodePool) -> Result<PathBuf, LocalPoolError> {
    ensure_private_dir(data_dir)?;
    write_json(data_dir, NODE_POOL_FILE, pool)
}

/// Writes `value` as pretty JSON to `data_dir/name`, atomically and 0600.
fn write_json(
    data_dir: &Path,
    name: &str,
    value: &impl serde::Serialize,
) -> Result<PathBuf, LocalPoolError> {
    let path = data_dir.join(name);
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| LocalPoolError::Corrupt {
        path: path.clone(),
        detail: format!("cannot serialise: {e}"),
    })?;
    text.push(b'\n');
    write_atomic(data_dir, name, &text, aksnet_fs::PRIVATE_FILE_MODE)?;
    Ok(path)
}

/// Reads and checks the pool for handing out addresses (the plugin's ADD):
/// `Ok(None)` when the file does not exist, [`LocalPoolError::Fenced`] when the
/// node's lease was lost (issue 17, fencing).
pub fn read_node_pool(data_dir: &Path) -> Result<Option<NodePool>, LocalPoolError> {
    let pool = read_node_pool_ignoring_fence(data_dir)?;
    if pool.is_some() {
        if let Some(reason) = fence_reason(data_dir)? {
            return Err(LocalPoolError::Fenced {
                pool: node_pool_path(data_dir),
                fence: data_dir.join(FENCE_FILE),
                reason,
            });
        }
    }
    Ok(pool)
}

/// Why the pool is fenced, or `None`.
pub fn fence_reason(data_dir: &Path) -> Result<Option<String>, LocalPoolError> {
    let path = data_dir.join(FENCE_FILE);
    match read_regular_capped(&path, MAX_NODE_POOL_BYTES) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Fences the pool: the plugin refuses to allocate from it until the next join.
pub fn fence(data_dir: &Path, reason: &str) -> Result<PathBuf, LocalPoolError> {
    let path = data_dir.join(FENCE_FILE);
    write_atomic(
        data_dir,
        FENCE_FILE,
        format!("{reason}\n").as_bytes(),
        aksnet_fs::PRIVATE_FILE_MODE,
    )?;
    Ok(path)
}

/// Lifts the fence (a join made the pool the node's again). `Ok(false)` if none.
pub fn unfence(data_dir: &Path) -> Result<bool, LocalPoolError> {
    remove_file(data_dir, FENCE_FILE)
}

/// Records the node's lease.
pub fn write_node_lease(data_dir: &Path, lease: &NodeLease) -> Result<PathBuf, LocalPoolError> {
    write_json(data_dir, NODE_LEASE_FILE, lease)
}

/// The node's recorded lease, or `None`.
pub fn read_node_lease(data_dir: &Path) -> Result<Option<NodeLease>, LocalPoolError> {
    let path = data_dir.join(NODE_LEASE_FILE);
    let bytes = match read_regular_capped(&path, MAX_NODE_POOL_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LocalPoolError::Corrupt {
            path,
            detail: e.to_string(),
        })
}

/// Removes the lease record. `Ok(false)` if it was absent.
pub fn remove_node_lease(data_dir: &Path) -> Result<bool, LocalPoolError> {
    remove_file(data_dir, NODE_LEASE_FILE)
}

fn remove_file(data_dir: &Path, name: &str) -> Result<bool, LocalPoolError> {
    Ok(remove_durably(data_dir, name)?)
}

/// Reads and checks the pool whatever its fence (the node commands, which
/// decide about fences themselves).
pub fn read_node_pool_ignoring_fence(data_dir: &Path) -> Result<Option<NodePool>, LocalPoolError> {
    let path = node_pool_path(data_dir);
    let bytes = match read_regular_capped(&path, MAX_NODE_POOL_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let pool: NodePool = serde_json::from_slice(&bytes).map_err(|e| LocalPoolError::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    check_pool(&path, &pool)?;
    Ok(Some(pool))
}

fn check_pool(path: &Path, pool: &NodePool) -> Result<(), LocalPoolError> {
    let invalid = |field, value: String, reason: String| LocalPoolError::Invalid {
        path: path.to_path_buf(),
        field,
        value,
        reason,
    };
    if pool.version != pool.expected_version() {
        return Err(invalid(
            "version",
            pool.version.to_string(),
            format!(
                "this aksnet understands version {NODE_POOL_VERSION} (Node Subnet), \
                 {NODE_POOL_VERSION_POD_SUBNET} (with podSubnet) and \
                 {NODE_POOL_VERSION_OVERLAY} (with overlay); this file's content is \
                 version {}",
                pool.expected_version()
            ),
        ));
    }
    let subnet = NodeSubnet::new(pool.subnet)
        .map_err(|e| invalid("subnet", pool.subnet.to_string(), e.to_string()))?;
    let max_pods = MaxPods::new(pool.max_pods)
        .map_err(|e| invalid("maxPods", pool.max_pods.to_string(), e.to_string()))?;
    if !subnet.is_usable(pool.node_ip) {
        return Err(invalid(
            "nodeIp",
            pool.node_ip.to_string(),
            format!("not a usable address of {}", pool.subnet),
        ));
    }
    let usable: Box<dyn Fn(&Ipv4Addr) -> bool> = match (&pool.pod_subnet, &pool.overlay) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "overlay",
                "set".to_string(),
                "a pool has podSubnet or overlay, not both".to_string(),
            ))
        }
        (None, Some(o)) => {
            let ok = check_overlay(pool, o)
                .map_err(|(field, value, reason)| invalid(field, value, reason))?;
            Box::new(move |ip| ok.contains(ip))
        }
        (None, None) => {
            if pool.pod_ips.len() != pool.max_pods as usize {
                return Err(invalid(
                    "podIps",
                    format!("{} addresses", pool.pod_ips.len()),
                    format!("maxPods is {}", pool.max_pods),
                ));
            }
            Box::new(move |ip| subnet.is_usable(*ip))
        }
        (Some(ps), None) => {
            let ok = check_pod_subnet(pool, ps, max_pods)
                .map_err(|(field, value, reason)| invalid(field, value, reason))?;
            Box::new(move |ip| ok.contains(ip))
        }
    };
    let mut seen = BTreeSet::from([pool.node_ip]);
    for ip in &pool.pod_ips {
        if !usable(ip) {
            return Err(invalid(
                "podIps",
                ip.to_string(),
                format!("not a pod address of this node in {}", pool.pod_prefix()),
            ));
        }
        if !seen.insert(*ip) {
            return Err(invalid(
                "podIps",
                ip.to_string(),
                "listed twice".to_string(),
            ));
        }
    }
    Ok(())
}

/// An Overlay pool's own rules; the pod addresses its block allows.
fn check_overlay(
    pool: &NodePool,
    o: &OverlayPool,
) -> Result<BTreeSet<Ipv4Addr>, (&'static str, String, String)> {
    if o.pod_cidr.prefix_len() != OVERLAY_NODE_PREFIX_LEN
        || o.pod_cidr.trunc() != o.pod_cidr
        || !o.cluster_pod_cidr.contains(&o.pod_cidr)
    {
        return Err((
            "overlay.podCidr",
            o.pod_cidr.to_string(),
            format!(
                "not an aligned /{OVERLAY_NODE_PREFIX_LEN} of the cluster pod CIDR {}",
                o.cluster_pod_cidr
            ),
        ));
    }
    if aksnet_core::azure::overlaps(&IpNet::V4(o.cluster_pod_cidr), &IpNet::V4(pool.subnet)) {
        return Err((
            "overlay.clusterPodCidr",
            o.cluster_pod_cidr.to_string(),
            format!("overlaps the node subnet {}", pool.subnet),
        ));
    }
    if pool.pod_ips.len() != pool.max_pods as usize {
        return Err((
            "podIps",
            format!("{} addresses", pool.pod_ips.len()),
            format!("maxPods is {}", pool.max_pods),
        ));
    }
    Ok(o.pod_ips(aksnet_core::azure::OVERLAY_MAX_PODS_PER_NODE)
        .into_iter()
        .collect())
}

/// A Pod Subnet pool's own rules; the pod addresses its blocks allow.
fn check_pod_subnet(
    pool: &NodePool,
    ps: &PodSubnetPool,
    max_pods: MaxPods,
) -> Result<BTreeSet<Ipv4Addr>, (&'static str, String, String)> {
    let sub = NodeSubnet::new(ps.cidr)
        .map_err(|e| ("podSubnet.cidr", ps.cidr.to_string(), e.to_string()))?;
    let most = podsubnet::blocks_for(max_pods) as usize;
    if ps.blocks.is_empty() || ps.blocks.len() > most {
        return Err((
            "podSubnet.blocks",
            format!("{} blocks", ps.blocks.len()),
            format!("maxPods {} takes 1 to {most}", pool.max_pods),
        ));
    }
    if let Some(b) = ps
        .blocks
        .iter()
        .find(|b| !podsubnet::is_eligible_block(&sub, **b))
    {
        return Err((
            "podSubnet.blocks",
            b.to_string(),
            format!(
                "not an aligned /28 of {} without Azure's reserved addresses",
                ps.cidr
            ),
        ));
    }
    let first = ps.blocks.iter().min();
    if let Some(b) = ps
        .returning
        .iter()
        .find(|b| !ps.blocks.contains(b) || Some(*b) == first)
    {
        return Err((
            "podSubnet.returning",
            b.to_string(),
            "not one of the node's blocks other than its first".to_string(),
        ));
    }
    let allowed: BTreeSet<Ipv4Addr> = podsubnet::pod_addresses(&ps.blocks, None)
        .into_iter()
        .collect();
    let want_static = pool.max_pods as usize;
    if ps.allocation == podsubnet::Allocation::Static && pool.pod_ips.len() != want_static {
        return Err((
            "podIps",
            format!("{} addresses", pool.pod_ips.len()),
            format!("a static-block node holds maxPods = {want_static}"),
        ));
    }
    Ok(allowed)
}

/// Removes the pool file (and fsyncs the directory). `Ok(false)` if it was absent.
pub fn remove_node_pool(data_dir: &Path) -> Result<bool, LocalPoolError> {
    Ok(remove_durably(data_dir, NODE_POOL_FILE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> NodePool {
        NodePool {
            version: NODE_POOL_VERSION,
            node: "n1".into(),
            subnet_name: "aks-subnet".into(),
            subnet: "10.240.0.0/24".parse().expect("cidr"),
            node_ip: Ipv4Addr::new(10, 240, 0, 4),
            max_pods: 10,
            pod_ips: (5..15).map(|d| Ipv4Addr::new(10, 240, 0, d)).collect(),
            pod_subnet: None,
            overlay: None,
        }
    }

    fn overlay_pool() -> NodePool {
        let o = OverlayPool {
            cluster_pod_cidr: "192.168.0.0/16".parse().expect("cidr"),
            pod_cidr: "192.168.7.0/24".parse().expect("cidr"),
        };
        NodePool {
            version: NODE_POOL_VERSION_OVERLAY,
            pod_ips: o.pod_ips(10),
            overlay: Some(o),
            ..pool()
        }
    }

    /// Writes `p` raw (as another writer might) and returns the read's error text.
    fn refusal(p: &NodePool) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = serde_json::to_vec(p).expect("json");
        std::fs::write(node_pool_path(dir.path()), text).expect("write");
        read_node_pool(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn overlay_pools_round_trip_and_bad_ones_name_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_node_pool(dir.path(), &overlay_pool()).expect("write");
        assert_eq!(
            read_node_pool(dir.path()).expect("read"),
            Some(overlay_pool())
        );
        let mut p = overlay_pool();
        p.version = NODE_POOL_VERSION;
        assert!(refusal(&p).contains("version"), "{}", refusal(&p));
        let mut p = overlay_pool();
        p.overlay = Some(OverlayPool {
            pod_cidr: "10.9.0.0/24".parse().expect("cidr"),
            ..overlay_pool().overlay.expect("o")
        });
        assert!(refusal(&p).contains("overlay.podCidr"), "{}", refusal(&p));
        let mut p = overlay_pool();
        p.overlay = Some(OverlayPool {
            cluster_pod_cidr: "10.240.0.0/12".parse().expect("cidr"),
            pod_cidr: "10.240.7.0/24".parse().expect("cidr"),
        });
        assert!(
            refusal(&p).contains("overlay.clusterPodCidr"),
            "{}",
            refusal(&p)
        );
        let mut p = overlay_pool();
        p.pod_ips[2] = Ipv4Addr::new(192, 168, 7, 255);
        assert!(refusal(&p).contains("192.168.7.255"), "{}", refusal(&p));
        let mut p = overlay_pool();
        p.pod_subnet = Some(PodSubnetPool {
            name: "p".into(),
            cidr: "10.241.0.0/24".parse().expect("cidr"),
            allocation: podsubnet::Allocation::Static,
            blocks: vec![],
            returning: vec![],
        });
        p.version = NODE_POOL_VERSION_POD_SUBNET;
        assert!(refusal(&p).contains("not both"), "{}", refusal(&p));
    }

    #[test]
    fn round_trip_and_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        assert_eq!(read_node_pool(&data).expect("read"), None);
        let path = write_node_pool(&data, &pool()).expect("write");
        assert_eq!(path, data.join("node-pool.json"));
        assert_eq!(read_node_pool(&data).expect("read"), Some(pool()));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"subnetName\": \"aks-subnet\""), "{text}");
        assert!(remove_node_pool(&data).expect("remove"));
        assert!(!remove_node_pool(&data).expect("remove again"));
    }

    #[test]
    fn a_fenced_pool_is_refused_until_unfenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_node_pool(dir.path(), &pool()).expect("write");
        fence(dir.path(), "lease 7 expired").expect("fence");
        let e = read_node_pool(dir.path()).unwrap_err().to_string();
        assert!(e.contains("fenced") && e.contains("lease 7 expired"), "{e}");
        assert_eq!(
            read_node_pool_ignoring_fence(dir.path()).expect("read"),
            Some(pool())
        );
        assert!(unfence(dir.path()).expect("unfence"));
        assert_eq!(read_node_pool(dir.path()).expect("read"), Some(pool()));
    }

    #[test]
    fn bad_files_name_the_file_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = node_pool_path(dir.path());
        std::fs::write(&path, "{").expect("write");
        let e = read_node_pool(dir.path()).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        let mut p = pool();
        p.pod_ips[3] = Ipv4Addr::new(10, 240, 0, 255);
        std::fs::write(&path, serde_json::to_vec(&p).expect("json")).expect("write");
        let e = read_node_pool(dir.path()).unwrap_err().to_string();
        assert!(e.contains("field podIps = 10.240.0.255"), "{e}");
        let mut p = pool();
        p.pod_ips.pop();
        std::fs::write(&path, serde_json::to_vec(&p).expect("json")).expect("write");
        let e = read_node_pool(dir.path()).unwrap_err().to_string();
        assert!(e.contains("field podIps = 9 addresses"), "{e}");
        let mut p = pool();
        p.version = 7;
        std::fs::write(&path, serde_json::to_vec(&p).expect("json")).expect("write");
        let e = read_node_pool(dir.path()).unwrap_err().to_string();
        assert!(e.contains("field version = 7"), "{e}");
    }
}
