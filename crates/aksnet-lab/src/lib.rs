//! `aksnet lab`: a whole AKS-style cluster in network namespaces on one
//! machine (issue 6). A fabric namespace plays the VNet and routes as Azure's
//! SDN does; node namespaces join through the real `aksnet node join`, get
//! SNAT from the real `aksnet agent --once`, and pods are attached by the
//! real `aksnet-cni` binary, called with the CNI protocol as a runtime calls
//! it. A VM in the VNet, a peered-VNet host and an on-premises host let
//! `check` prove which source address each destination sees.
//!
//! - [`spec`]: parameters, validation, names and addresses (pure);
//! - [`routetable`]: the Azure route table a kubenet cluster uses (pure);
//! - [`state`]: the state directory and its journal;
//! - [`up`], [`check`], [`down`], [`demo`]: the commands.
//! - [`netpol`]: a probe file's cluster built for real and every NetworkPolicy verdict
//!   observed with a real connection (docs/policy.md).

pub mod check;
pub mod demo;
pub mod demo_podsubnet;
pub mod demo_policy;
pub mod down;
pub mod error;
pub mod exec;
pub mod fabric_l2;
pub mod fabric_podsubnet;
pub mod migrate;
pub mod netpol;
pub mod netpol_down;
pub mod netpol_plan;
pub mod netpol_world;
pub mod routetable;
pub mod spec;
pub mod state;
pub mod up;

pub use check::{check, expectation, CheckReport, Expect, Lab, Row, Seen, Who, PATHS};
pub use demo::{demo, DemoOptions};
pub use down::{down, DownReport};
pub use error::{LabError, Result};
pub use exec::{Binaries, BIN_DIR_ENV};
pub use routetable::{RouteTable, RouteTableError, AZURE_ROUTE_TABLE_LIMIT};
pub use spec::{default_state_dir, LabSpec, Model, Topology, DEFAULT_PREFIX};
pub use up::{up, UpReport};
