//! The NetworkPolicy controller: source → view → desired table (pure, aksnet-policy's
//! compiler) → the difference → ONE `nft -f` transaction (docs/policy.md "Agent").
//!
//! - A source error changes nothing: the table in force stays (issue 11, like SNAT).
//! - The first apply of a process (start or restart) replaces our table whole in one
//!   transaction: packets see the old table or the new one, never none, and established
//!   connections pass both. Later applies touch only what changed (element-only for pod and
//!   label churn), computed against what this process applied.
//! - A failed apply forgets what is in the kernel, so the next apply is whole again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aksnet_nft::filter::{replace_script, update_script, FilterTable};
use aksnet_nft::{NftCommand, NftError};
use aksnet_policy::compile::{compile, rule_count, CompileError, NodeScope};
use ipnet::IpNet;

use crate::policy_source::{ClusterView, PolicySource, SourceErrors};

/// Default table of the policy controller (separate from the SNAT table, which the SNAT
/// reconciler replaces whole).
pub const DEFAULT_POLICY_TABLE: &str = "aksnet-policy";

/// Runs nft scripts; the real one is [`NftCommand`], tests record.
pub trait ScriptBackend {
    fn run_script(&self, op: &str, script: &str) -> Result<(), NftError>;
}

impl ScriptBackend for NftCommand {
    fn run_script(&self, op: &str, script: &str) -> Result<(), NftError> {
        NftCommand::run_script(self, op, script)
    }
}

#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub table: String,
    pub node: String,
    pub pod_ranges: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyAgentError {
    #[error("policy source: {0}")]
    Source(#[from] SourceErrors),
    #[error("policy compile: {0}")]
    Compile(#[from] CompileError),
    #[error("apply policy table {table}: {source}")]
    Nft {
        table: String,
        #[source]
        source: NftError,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Whole table replaced (first apply of this process).
    Replaced,
    /// Only the differences (the script's line count).
    Updated {
        lines: usize,
    },
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct PolicyReport {
    pub applied: Applied,
    pub rules: usize,
    pub policies: usize,
    pub pods: usize,
    /// Source read + compile + nft transaction.
    pub elapsed: Duration,
}

pub struct PolicyController<B: ScriptBackend> {
    pub backend: B,
    pub settings: PolicySettings,
    applied: Option<FilterTable>,
}

impl<B: ScriptBackend> PolicyController<B> {
    pub fn new(backend: B, settings: PolicySettings) -> Self {
        PolicyController {
            backend,
            settings,
            applied: None,
        }
    }

    /// The desired table for a view (pure).
    pub fn desired(&self, view: &ClusterView) -> Result<FilterTable, CompileError> {
        let scope = NodeScope {
            table: &self.settings.table,
            node: &self.settings.node,
            pod_ranges: &self.settings.pod_ranges,
        };
        compile(&view.cluster, &view.policies, &scope)
    }

    /// Applies a view: diff against what this process applied, one transaction.
    pub fn apply_view(&mut self, view: &ClusterView) -> Result<PolicyReport, PolicyAgentError> {
        let start = Instant::now();
        let desired = self.desired(view)?;
        let nft_err = |source| PolicyAgentError::Nft {
            table: self.settings.table.clone(),
            source,
        };
        let (script, applied) = match &self.applied {
            None => (
                Some(replace_script(&desired).map_err(nft_err)?),
                Applied::Replaced,
            ),
            Some(old) => match update_script(old, &desired).map_err(nft_err)? {
                Some(s) => {
                    let lines = s.lines().count();
                    (Some(s), Applied::Updated { lines })
                }
                None => (None, Applied::Unchanged),
            },
        };
        if let Some(s) = script {
            let op = format!("apply policy table inet {}", self.settings.table);
            if let Err(source) = self.backend.run_script(&op, &s) {
                self.applied = None;
                return Err(PolicyAgentError::Nft {
                    table: self.settings.table.clone(),
                    source,
                });
            }
        }
        let report = PolicyReport {
            applied,
            rules: rule_count(&desired),
            policies: view.policies.len(),
            pods: view.cluster.pods.len(),
            elapsed: start.elapsed(),
        };
        self.applied = Some(desired);
        Ok(report)
    }

    /// Loads the source and applies it; a source error leaves the kernel untouched.
    pub fn reconcile(
        &mut self,
        source: &dyn PolicySource,
    ) -> Result<PolicyReport, PolicyAgentError> {
        let start = Instant::now();
        let view = source.load()?;
        let mut r = self.apply_view(&view)?;
        r.elapsed = start.elapsed();
        Ok(r)
    }
}

/// Polls the source's fingerprint and reconciles on every change (and at least every
/// `resync`), until `stop`. Errors are logged; the policy in force stays.
pub fn run_policy_loop<B: ScriptBackend>(
    ctl: &mut PolicyController<B>,
    source: &dyn PolicySource,
    poll: Duration,
    resync: Duration,
    stop: &AtomicBool,
) {
    let mut last: Option<Vec<u8>> = None;
    let mut last_apply = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let fp = source.fingerprint().ok();
        if fp.is_none() || fp != last || last_apply.elapsed() >= resync {
            match ctl.reconcile(source) {
                Ok(r) => {
                    tracing::info!(source = %source.describe(), applied = ?r.applied, rules = r.rules, policies = r.policies, pods = r.pods, elapsed_us = r.elapsed.as_micros() as u64, "policy reconciled");
                    last = fp;
                }
                Err(e) => {
                    tracing::error!(source = %source.describe(), error = %e, "policy not applied; previous policy kept");
                    last = fp;
                }
            }
            last_apply = Instant::now();
        }
        std::thread::sleep(poll);
    }
}
