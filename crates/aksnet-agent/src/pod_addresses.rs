//! The node's pod addresses for the metrics (`aksnet_node_pod_addresses`): what the plugin
//! can hand out on this node and what its IPAM state holds of it, read from the same files
//! the plugin reads, never from the cluster store (a scrape must not depend on it).
//!
//! - nodesubnet: `<dataDir>/node-pool.json`'s `podIps` (the node's `maxPods` addresses of the
//!   node subnet, reserved by `aksnet node join`);
//! - podsubnet: the same file's `podIps`, addresses of the node's /28 blocks of the pod subnet
//!   (`podSubnet.blocks`; a dynamic node's `returning` blocks are on their way back and no
//!   longer handed out), docs/models.md;
//! - kubenet: the range sets of the conflist's `ipam.ranges` (the node's pod CIDR, Node
//!   `spec.podCIDR`), as `aksnet_core::allocator::Range`s validated by `Pool::validate`, the
//!   same type and rules the plugin's IPAM uses, so the agent counts exactly the addresses the
//!   plugin hands out (host-local's rules: not the network, gateway or broadcast address).
//!
//! `used` counts held addresses inside the pool only, so `used + free == reserved` always; an
//! address still held after the pool changed (a config edit) is held outside it and counted
//! in no state.

use std::path::{Path, PathBuf};

use aksnet_core::allocator::{Pool, PoolError, Range, ValidPool};
use aksnet_ipam::{IpamError, IpamStore};
use aksnet_store::local_pool::{read_node_pool, LocalPoolError};
use serde_json::Value;

/// The conflist `aksnet install` writes (its default `--cni-conf-dir`/`--conflist-name`).
pub const DEFAULT_CNI_CONF: &str = "/etc/cni/net.d/10-aksnet.conflist";
/// The largest conflist read (a real one is well under 4 KB).
const MAX_CONF_BYTES: u64 = 1 << 20;

/// The node's pod addresses in one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub node: String,
    /// `nodesubnet`, `podsubnet` or `kubenet`.
    pub mode: &'static str,
    /// Addresses the plugin can hand out on this node.
    pub reserved: u64,
    /// Of those, held by an attachment in the IPAM state.
    pub used: u64,
    /// podsubnet: the node's /28 blocks.
    pub blocks: Option<BlockUsage>,
}

impl PoolUsage {
    pub fn free(&self) -> u64 {
        self.reserved.saturating_sub(self.used)
    }
}

/// A Pod Subnet node's /28 blocks (`node-pool.json`'s `podSubnet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUsage {
    pub subnet: String,
    /// Blocks the node holds in the cluster store (`blocks`).
    pub held: u64,
    /// Of those, a dynamic node's blocks on their way back to the store (`returning`):
    /// their addresses are no longer handed out.
    pub returning: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PodAddressError {
    #[error(transparent)]
    Pool(#[from] LocalPoolError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("CNI config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: aksnet_fs::FsError,
    },
    #[error("CNI config {}: {field}: {source}", path.display())]
    Ranges {
        path: PathBuf,
        field: String,
        #[source]
        source: Box<PoolError>,
    },
    #[error("CNI config {}: field {field} = {value}: {why}", path.display())]
    Conf {
        path: PathBuf,
        field: String,
        value: String,
        why: String,
    },
}

/// nodesubnet, podsubnet or overlay: the node's pool file and the IPAM state next to it; `None`
/// when the node has not joined (no `node-pool.json`).
pub fn from_node_pool(data_dir: &Path) -> Result<Option<PoolUsage>, PodAddressError> {
    let Some(pool) = read_node_pool(data_dir)? else {
        return Ok(None);
    };
    let reserved: std::collections::BTreeSet<_> = pool.pod_ips.iter().copied().collect();
    let used = aksnet_node::held::held_addresses(data_dir)
        .map_err(|e| e.source)?
        .intersection(&reserved)
        .count() as u64;
    let blocks = pool.pod_subnet.as_ref().map(|p| BlockUsage {
        subnet: p.name.clone(),
        held: p.blocks.len() as u64,
        returning: p.returning.len() as u64,
    });
    Ok(Some(PoolUsage {
        mode: pool.model(),
        node: pool.node,
        reserved: reserved.len() as u64,
        used,
        blocks,
    }))
}

/// kubenet: the pool of the `aksnet-cni` kubenet entry of `conf` (a `.conflist`, or a single
/// plugin `.conf`) and its network's IPAM state in the entry's `dataDir`; `None` when `conf`
/// does not exist.
pub fn from_kubenet_conf(conf: &Path, node: &str) -> Result<Option<PoolUsage>, PodAddressError> {
    let bytes = match aksnet_fs::read_regular_capped_following(conf, MAX_CONF_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(source) => {
            return Err(PodAddressError::Read {
                path: conf.to_path_buf(),
                source,
            })
        }
    };
    let entry = kubenet_entry(conf, &bytes)?;
    let used = held_in(&entry.data_dir, &entry.network, &entry.pool)?;
    let pool = entry.pool;
    Ok(Some(PoolUsage {
        node: node.to_string(),
        mode: "kubenet",
        reserved: u64::try_from(pool.capacity()).unwrap_or(u64::MAX),
        used,
        blocks: None,
    }))
}

/// The addresses of `pool` held in `network`'s IPAM state (0 when it has none yet: the
/// state file is not created by looking).
fn held_in(data_dir: &Path, network: &str, pool: &ValidPool) -> Result<u64, PodAddressError> {
    if !aksnet_ipam::networks_in(data_dir)?
        .iter()
        .any(|n| n == network)
    {
        return Ok(0);
    }
    let state = IpamStore::open(data_dir, network)?.snapshot()?;
    Ok(u64::try_from(state.in_use(pool)).unwrap_or(u64::MAX))
}

/// What the address count needs of a kubenet entry.
struct KubenetEntry {
    /// The network's name: its IPAM state is `<dataDir>/<name>.json`.
    network: String,
    data_dir: PathBuf,
    pool: ValidPool,
}

/// The conflist's `aksnet-cni` entry in kubenet mode, read as the plugin reads it (crates/
/// aksnet-cni/README.md): the list's `name` (the entry's in a single `.conf`), `dataDir` or
/// `ipam.dataDir` (default `/var/lib/aksnet`), `ipam.ranges` or host-local's single-range
/// shorthand (`ipam.subnet`, `rangeStart`, `rangeEnd`, `gateway`).
fn kubenet_entry(path: &Path, bytes: &[u8]) -> Result<KubenetEntry, PodAddressError> {
    let bad = |field: &str, value: &dyn std::fmt::Display, why: &str| PodAddressError::Conf {
        path: path.to_path_buf(),
        field: field.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    };
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| bad("(file)", &"", &format!("not JSON: {e}")))?;
    let (i, entry) = match root.get("plugins") {
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .find(|(_, e)| e.get("type").and_then(Value::as_str) == Some("aksnet-cni"))
            .map(|(i, e)| (Some(i), e))
            .ok_or_else(|| bad("plugins[].type", &"(none)", "no aksnet-cni entry"))?,
        Some(v) => return Err(bad("plugins", v, "must be a list")),
        None => (None, &root),
    };
    let field = |k: &str| match i {
        Some(i) => format!("plugins[{i}].{k}"),
        None => k.to_string(),
    };
    let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mode = str_at(entry, "mode").unwrap_or_default();
    if !matches!(mode.as_str(), "kubenet" | "bridge") {
        let why = "the agent runs with --mode kubenet: expected a kubenet entry";
        return Err(bad(&field("mode"), &mode, why));
    }
    let network = str_at(&root, "name").unwrap_or_default();
    aksnet_ipam::validate_network_name(&network)
        .map_err(|e| bad("name", &network, &e.to_string()))?;
    let ipam = entry.get("ipam").cloned().unwrap_or(Value::Null);
    let data_dir = str_at(entry, "dataDir")
        .or_else(|| str_at(&ipam, "dataDir"))
        .unwrap_or_else(|| aksnet_ipam::DEFAULT_DATA_DIR.to_string());
    let sets: Vec<Vec<Range>> = match (ipam.get("ranges"), ipam.get("subnet")) {
        (Some(r), _) => serde_json::from_value(r.clone())
            .map_err(|e| bad(&field("ipam.ranges"), r, &e.to_string()))?,
        (None, Some(_)) => vec![vec![serde_json::from_value(ipam.clone())
            .map_err(|e| bad(&field("ipam"), &ipam, &e.to_string()))?]],
        (None, None) => return Err(bad(&field("ipam.ranges"), &"(missing)", "is required")),
    };
    let pool = Pool::Ranges(sets)
        .validate()
        .map_err(|source| PodAddressError::Ranges {
            path: path.to_path_buf(),
            field: field("ipam"),
            source: Box::new(source),
        })?;
    Ok(KubenetEntry {
        network,
        data_dir: PathBuf::from(data_dir),
        pool,
    })
}
