//! aksnet-store: the cluster store (issue 3). Cluster-wide state (subnets and node
//! reservations now; kubenet pod CIDRs and routes later, as more key prefixes)
//! kept as keys with revisions, where every change is one compare-and-swap
//! transaction ([`Store::txn`]), so an etcd backend implements each change with one
//! etcd `Txn`.
//!
//! - [`kv`]: the trait and its data model.
//! - [`embedded`]: the default backend, a state directory on one machine.
//! - [`mem`]: an in-memory fake with the same semantics, for unit tests.
//! - [`reservation`]: node join/leave/list on any backend (key layout documented there
//!   and in docs/node.md).
//! - [`tenants`]: addresses of a node subnet held by VMs and others (`aksnet subnet`).
//! - [`podcidr`]: the cluster pod CIDR and each node's block of it (kubenet, Overlay).
//! - [`local_pool`]: the node's `node-pool.json`, which the plugin reads.
//! - [`spec`]: what a `--store` value names (a directory or an etcd URL).

pub mod blocks;
pub mod embedded;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod kv;
pub mod local_pool;
pub mod mem;
pub mod pod_pool;
pub mod podcidr;
pub mod podsubnet;
mod record;
pub mod reservation;
pub mod spec;
pub mod tenants;

pub use embedded::EmbeddedStore;
#[cfg(feature = "etcd")]
pub use etcd::{EtcdError, EtcdStore};
pub use kv::{Compare, KeyValue, LeaseId, Op, Revision, Store, StoreError, WriteOutcome};
pub use mem::MemStore;
pub use reservation::{
    join, leave, list_nodes, list_subnets, JoinOutcome, JoinRequest, NodeReservation,
    ReservationError,
};
pub use spec::{parse_store, EtcdConfig, StoreSpec, StoreUrlError};
