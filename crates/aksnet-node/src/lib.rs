//! aksnet-node: what a node does with the cluster store and its own data
//! directory, as functions named for intent with typed requests and results
//! (docs/node.md). The `aksnet node` commands parse flags and print what these
//! return; the agent reads the node's held addresses through [`held`].
//!
//! - [`backend`]: which store a `--store` value opens (the embedded directory or
//!   etcd), with etcd's TLS files and credentials.
//! - [`held`]: the addresses the node's IPAM state hands to pods — what join,
//!   leave, keepalive and pod-sync must not take away.
//! - [`list`]: the cluster's nodes, their pod addresses and use, and each
//!   subnet's reserved addresses.
//! - [`local`]: the node's own pool in its data directory, and a lost store.
//! - [`join`]: a node's join: its share of the node subnet, its pod addresses,
//!   its local pool file.
//! - [`keepalive`]: one round of a node's lease keepalive.
//! - [`leave`]: a node's leave, in the order that never lets two nodes answer for
//!   one address.
//! - [`pods`]: the node's pod addresses outside the node subnet: Pod Subnet blocks
//!   (join, top-up round) and the pod CIDR block (kubenet, Overlay).
//!
//! Layering: above `aksnet-store`, `aksnet-ipam` and `aksnet-core`, below
//! `aksnet-agent` and the `aksnet` binary. Kernel work (withdrawing a node's ARP
//! answers) stays with the caller: [`leave::leave`] tells it when.

pub mod backend;
pub mod error;
pub mod held;
pub mod join;
pub mod keepalive;
pub mod leave;
pub mod list;
pub mod local;
pub mod pods;

pub use backend::{open_store, StoreOptions};
pub use error::NodeError;
pub use held::{held_v4, pods_in_use};
pub use leave::{leave, LeaveEvent, LeaveRequest};
pub use local::{check_store_not_lost, own_pool};
