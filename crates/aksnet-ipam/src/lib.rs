//! aksnet-ipam: the node IPAM store (issue 2, item 3). The allocator is pure and lives in
//! `aksnet_core::allocator`; this crate persists it, one state file per network, changed
//! under a short exclusive flock and replaced atomically. See `store.rs` for the on-disk
//! layout and README.md for the crash-safety argument.
//!
//! ```no_run
//! # use std::path::Path;
//! # use aksnet_core::allocator::{AllocationMeta, AttachmentKey, Pool, Range};
//! # use aksnet_ipam::{IpamError, IpamStore};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::Ranges(vec![vec![Range::subnet("10.244.1.0/24".parse()?)]]).validate()?;
//! let store = IpamStore::open(Path::new("/var/lib/aksnet"), "kubenet")?;
//! let key = AttachmentKey::new("3f2a", "eth0");
//! let leases = store.transact(|s| -> Result<_, IpamError> {
//!     Ok(s.allocate(&pool, &key, &[], AllocationMeta::default())?)
//! })?;
//! // ... netlink work happens here, after the lock is released ...
//! # let _ = leases;
//! # Ok(()) }
//! ```

pub mod attachment_lock;
mod boot;
pub mod error;
pub mod node_pool;
pub mod store;

use std::net::IpAddr;
use std::path::Path;

pub use attachment_lock::AttachmentLock;
pub use error::IpamError;
pub use store::{
    networks_in, networks_in_at, state_dir, validate_network_name, IpamStore, DEFAULT_DATA_DIR,
    DEFAULT_LOCK_TIMEOUT, DEFAULT_RUN_DIR, STATE_KIND, STATE_VERSION,
};

/// One address held in a node's IPAM state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAddress {
    pub network: String,
    pub ip: IpAddr,
    pub container_id: String,
    pub ifname: String,
}

/// Every address allocated in any network of the node whose data directory is `data_dir`
/// (its state is in [`state_dir`]`(data_dir)`; used by
/// `aksnet node leave` to refuse while pods still hold addresses). Lock files, temp
/// files and the node pool file are ignored; a missing directory holds nothing; a
/// corrupt state file is an error (it may hold addresses). Each network is read under
/// its shared lock. Ordered by network, then address.
pub fn allocated_addresses(data_dir: &Path) -> Result<Vec<HeldAddress>, IpamError> {
    let mut out = Vec::new();
    for network in networks_in(data_dir)? {
        let state = IpamStore::open(data_dir, &network)?.snapshot()?;
        let network = &network;
        let mut held: Vec<HeldAddress> = state
            .record_views()
            .flat_map(|r| {
                r.ips.iter().map(move |l| HeldAddress {
                    network: network.clone(),
                    ip: l.ip,
                    container_id: r.container_id.to_string(),
                    ifname: r.ifname.to_string(),
                })
            })
            .collect();
        held.sort_by_key(|h| h.ip);
        out.extend(held);
    }
    Ok(out)
}
