//! Reading the node's local pool, `<dataDir>/node-pool.json` (the format and its one
//! validator: `aksnet_core::pool`). `aksnet node join` writes it (`aksnet-store`'s
//! `local_pool`) so that the plugin's ADD never calls the cluster store; the plugin,
//! the agent and the node commands read it here. The file is read capped and never
//! through a symlink (`aksnet_fs::read_regular_capped`), then parsed and checked
//! once; errors name the file, the field and the value.

use std::path::{Path, PathBuf};

use aksnet_core::allocator::ValidPool;
use aksnet_core::pool::{parse_node_pool, NodePool, NodePoolParseError, NODE_POOL_FILE};
use aksnet_fs::{read_regular_capped, FsError};

/// `<dataDir>/node-pool.fenced`: present when the node may no longer own its pool.
pub const FENCE_FILE: &str = "node-pool.fenced";

/// The largest pool file read (maxPods 250 is about 5 KB).
pub const MAX_NODE_POOL_BYTES: u64 = 1 << 20;

/// Why the node's pool (or a file beside it) could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum NodePoolFileError {
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

/// `<data_dir>/node-pool.json`.
pub fn node_pool_path(data_dir: &Path) -> PathBuf {
    data_dir.join(NODE_POOL_FILE)
}

/// Reads and checks the pool for handing out addresses: `Ok(None)` when the file
/// does not exist, [`NodePoolFileError::Fenced`] when the node's lease was lost.
pub fn read_node_pool(data_dir: &Path) -> Result<Option<NodePool>, NodePoolFileError> {
    let pool = read_node_pool_ignoring_fence(data_dir)?;
    if pool.is_some() {
        refuse_fenced(data_dir)?;
    }
    Ok(pool)
}

/// [`read_node_pool`] for the plugin's ADD: the pool and the allocator's pool of its
/// pod addresses, from one read, one parse and one check.
pub fn read_node_pool_addresses(
    data_dir: &Path,
) -> Result<Option<(NodePool, ValidPool)>, NodePoolFileError> {
    let path = node_pool_path(data_dir);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let pool: NodePool =
        serde_json::from_slice(&bytes).map_err(|e| NodePoolFileError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    let valid = pool
        .address_pool()
        .map_err(|e| from_parse(&path, e.into()))?;
    refuse_fenced(data_dir)?;
    Ok(Some((pool, valid)))
}

/// Reads and checks the pool whatever its fence (the node commands, which
/// decide about fences themselves).
pub fn read_node_pool_ignoring_fence(
    data_dir: &Path,
) -> Result<Option<NodePool>, NodePoolFileError> {
    let path = node_pool_path(data_dir);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    parse_node_pool(&bytes)
        .map(Some)
        .map_err(|e| from_parse(&path, e))
}

/// Why the pool is fenced, or `None`.
pub fn fence_reason(data_dir: &Path) -> Result<Option<String>, NodePoolFileError> {
    Ok(read_optional(&data_dir.join(FENCE_FILE))?
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string()))
}

fn refuse_fenced(data_dir: &Path) -> Result<(), NodePoolFileError> {
    match fence_reason(data_dir)? {
        Some(reason) => Err(NodePoolFileError::Fenced {
            pool: node_pool_path(data_dir),
            fence: data_dir.join(FENCE_FILE),
            reason,
        }),
        None => Ok(()),
    }
}

/// The file's bytes (capped, never through a symlink), or `None` if it is absent.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    match read_regular_capped(path, MAX_NODE_POOL_BYTES) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn from_parse(path: &Path, e: NodePoolParseError) -> NodePoolFileError {
    match e {
        NodePoolParseError::Json(detail) => NodePoolFileError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
        NodePoolParseError::Invalid(i) => NodePoolFileError::Invalid {
            path: path.to_path_buf(),
            field: i.field,
            value: i.value,
            reason: i.reason,
        },
    }
}
