//! One module per subcommand, each with its clap types and a `run` that returns the exit code.

pub mod agent;
pub mod agent_l2;
pub mod agent_policy;
pub mod agent_routes;
pub mod install;
pub mod lab;
pub mod lab_migrate;
pub mod lab_netpol;
pub mod node;
pub mod plan;
pub mod policy;
pub mod subnet;
