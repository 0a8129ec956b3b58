//! The node's local pool file, `<dataDir>/node-pool.json` ([`NodePool`],
//! crates/aksnet-core/src/pool.rs): `aksnet node join` writes the node's
//! reservation there so that the plugin's ADD never calls the cluster store
//! (issue 3). Written atomically (temp, fdatasync, rename, directory fsync) with mode
//! 0600 in a 0700 data directory, never through a symlink (`aksnet-fs`); read with
//! every field checked, errors naming the file, field and value.

use std::path::{Path, PathBuf};

use aksnet_core::pool::{NodePool, NODE_POOL_FILE};
use aksnet_ipam::node_pool::read_optional;
pub use aksnet_ipam::node_pool::{
    fence_reason, node_pool_path, read_node_pool, read_node_pool_ignoring_fence, FENCE_FILE,
    MAX_NODE_POOL_BYTES,
};

use aksnet_fs::{ensure_private_dir, remove_durably, write_atomic};

/// Why the node's pool files could not be read or written (one error type with
/// their readers, `aksnet_ipam::node_pool`).
pub type LocalPoolError = aksnet_ipam::node_pool::NodePoolFileError;

/// `<dataDir>/node-pool.lease` (JSON): the lease the node's reservation lives on.
/// Not `*.json`: every `<name>.json` in the data directory is an IPAM network's
/// state (aksnet_ipam::networks_in).
pub const NODE_LEASE_FILE: &str = "node-pool.lease";

/// What `node join --lease-ttl` records for `aksnet node keepalive`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeLease {
    pub node: String,
    pub lease: i64,
    pub ttl_seconds: u64,
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
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
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

/// Removes the pool file (and fsyncs the directory). `Ok(false)` if it was absent.
pub fn remove_node_pool(data_dir: &Path) -> Result<bool, LocalPoolError> {
    Ok(remove_durably(data_dir, NODE_POOL_FILE)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aksnet_core::podsubnet;
    use aksnet_core::pool::{
        OverlayPool, PodSubnetPool, NODE_POOL_VERSION, NODE_POOL_VERSION_OVERLAY,
        NODE_POOL_VERSION_POD_SUBNET,
    };
    use std::net::Ipv4Addr;

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
