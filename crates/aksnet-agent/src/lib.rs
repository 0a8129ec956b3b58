//! aksnet-agent: the node daemon's SNAT, compatible with ip-masq-agent(-v2), on nftables.
//!
//! - [`masq_config`]: the ip-masq-agent config files (pure parsing and merging, plus a thin
//!   directory reader), docs/azure.md#ip-masq-agent.
//! - [`settings`]: the agent's own settings (mode, VNet prefixes, pod CIDRs…) and the per-mode
//!   defaults, docs/azure.md#snat-defaults-per-mode.
//! - [`ruleset`]: settings + merged config → the desired nftables table (pure, golden-tested).
//! - [`reconcile`]: read our table, compare, replace atomically only when it differs; the
//!   daemon loop and the status file. A bad config never removes working rules (issue 4).
//! - [`metrics`]: Prometheus text metrics and `/healthz` on `--metrics-addr`;
//!   [`pod_addresses`]: the node's reserved/used/free pod addresses in each model.
//! - [`policy_source`], [`policy_controller`]: NetworkPolicy from a manifest directory (or
//!   any [`policy_source::PolicySource`]) onto the node's own policy table (docs/policy.md).
//! - [`l2`], [`routes`]: on a plain LAN, the ARP answers for the node's pods and one
//!   kubenet route per other node (what Azure's fabric does, docs/agent.md).
//! - `kube_source` (feature `kube`): the Kubernetes API as that source, and the nodes.
//! - [`cni_log`]: counts the plugin's calls by verb, result and error code from its log.

pub mod cni_log;
#[cfg(feature = "kube")]
pub mod kube_source;
pub mod l2;
pub mod masq_config;
pub mod metrics;
pub mod pod_addresses;
pub mod policy_controller;
pub mod policy_source;
pub mod reconcile;
pub mod routes;
pub mod ruleset;
pub mod settings;

pub use masq_config::{ConfigError, MasqConfig, MasqFragment};
pub use reconcile::{
    reconcile_once, run_daemon, uninstall, AgentError, Outcome, ReconcileReport, Status,
};
pub use ruleset::desired_table;
pub use settings::{AgentSettings, Mode, SettingsError};
