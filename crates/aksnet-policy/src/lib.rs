//! aksnet-policy: Kubernetes `networking.k8s.io/v1` NetworkPolicy, exactly as the API defines
//! it, with no I/O.
//!
//! - [`k8s`]: the API objects (NetworkPolicy, Namespace, Pod) with Kubernetes' field names.
//! - [`validate`]: defaulting and validation → [`model`], errors naming object, field, value.
//! - [`eval`]: the reference evaluator: a verdict and its reason for one connection.
//! - [`compile`]: one node's nftables table; [`incremental`]: kept up to date pod by pod.
//! - [`probe`]: the probe file format read by `aksnet policy eval` and `aksnet lab netpol`.
//!
//! Semantics, sources and design: docs/policy.md.

pub mod compile;
pub mod error;
pub mod eval;
pub mod incremental;
pub mod k8s;
pub mod model;
pub mod probe;
pub mod validate;

pub use error::{FieldError, PolicyError};
pub use eval::{Connection, Endpoint, Side, Verdict};
pub use model::{Cluster, Direction, Policy, Protocol};
