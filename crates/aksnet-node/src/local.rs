//! The node's own pool in its data directory, checked against the node it is
//! asked about and against the cluster store.

use std::path::Path;

use aksnet_core::pool::NodePool;
use aksnet_store::local_pool::{node_pool_path, read_node_pool_ignoring_fence};
use aksnet_store::reservation::ReservationError;
use aksnet_store::Store;

use crate::NodeError;

/// The node's local pool if `data_dir` holds one for `node` (whatever its fence);
/// an error if it holds another node's.
pub fn own_pool(data_dir: &Path, node: &str) -> Result<Option<NodePool>, NodeError> {
    match read_node_pool_ignoring_fence(data_dir)? {
        Some(p) if p.node != node => Err(NodeError::DataDirOfAnotherNode {
            data_dir: data_dir.to_path_buf(),
            pool_path: node_pool_path(data_dir),
            pool_node: p.node,
            node: node.to_string(),
        }),
        other => Ok(other),
    }
}

/// An empty store on a node that holds a pool is a lost store, not an empty
/// cluster: treating it as empty would hand this node's addresses to another.
pub fn check_store_not_lost(store: &dyn Store, data_dir: &Path) -> Result<(), NodeError> {
    let Ok(Some(pool)) = read_node_pool_ignoring_fence(data_dir) else {
        // No pool (or an unreadable one, reported by the operation's own read).
        return Ok(());
    };
    if store.is_empty().map_err(ReservationError::from)? {
        return Err(NodeError::StoreLost {
            store: store.describe(),
            pool_path: node_pool_path(data_dir),
            node: pool.node,
        });
    }
    Ok(())
}
