//! The pure core of aksnet: address math, Azure's subnet arithmetic, the IPAM
//! allocator and the shared on-disk contracts. Nothing in this crate performs
//! I/O; everything here is tested exhaustively without privileges.

pub mod allocator;
pub mod azure;
pub mod naming;
pub mod podsubnet;
pub mod pool;
