//! The CNI protocol (spec 0.3.0 – 1.1.0) with no kernel work in it: the
//! environment and stdin a runtime hands a plugin, the result and error JSON it
//! expects back, and conversion of results between spec versions.
//!
//! Sources: containernetworking/cni `SPEC.md` at `spec-v1.1.0` (sections cited
//! inline) and docs/cni-clients.md.

pub mod args;
pub mod error;
pub mod result;
pub mod version;

pub use args::{CmdArgs, CniArgs, Command, EnvError};
pub use error::{CniError, ErrorCode};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::{CniVersion, SUPPORTED_VERSIONS};
