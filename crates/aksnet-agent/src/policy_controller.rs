//! The NetworkPolicy controller: source → view → desired table (pure, aksnet-policy's
//! compiler) → the difference → ONE `nft -f` transaction (docs/policy.md "Agent").
//!
//! - A source error changes nothing: the table in force stays (issue 11, like SNAT).
//! - The first apply of a process (start or restart) replaces our table whole in one
//!   transaction: packets see the old table or the new one, never none, and established
//!   connections pass both. Later applies touch only what changed, computed against what
//!   this process applied.
//! - Pod churn (same policies and namespaces, pods added, removed, relabelled) goes through
//!   the incremental compiler (`aksnet_policy::incremental`): only the sets, map entries and
//!   chains the changed pods touch are recomputed and sent, so a pod change costs
//!   milliseconds whatever the cluster's size (docs/benchmarks.md "NetworkPolicy"). When the
//!   change is nothing but set and map elements (the usual pod change) it goes to the kernel
//!   as one nf_tables netlink batch, without starting `nft` (`aksnet_nft::nfnetlink`). A
//!   policy or namespace change compiles whole and diffs whole.
//! - A failed apply forgets what is in the kernel, so the next apply is whole again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aksnet_nft::elements::{element_batch, ElementBatch};
use aksnet_nft::filter::{partial_update_script, replace_script, update_script, FilterTable};
use aksnet_nft::{NftCommand, NftError};
use aksnet_policy::compile::{compile, CompileError, NodeScope};
use aksnet_policy::incremental::{pod_changes, Compiled, IncrementalError, PodChange};
use ipnet::IpNet;

use crate::policy_source::{ClusterView, PolicySource, SourceErrors};

/// Default table of the policy controller (separate from the SNAT table, which the SNAT
/// reconciler replaces whole).
pub const DEFAULT_POLICY_TABLE: &str = "aksnet-policy";

/// Runs nft scripts; the real one is [`NftCommand`], tests record.
pub trait ScriptBackend {
    fn run_script(&self, op: &str, script: &str) -> Result<(), NftError>;

    /// An element-only change (pod churn) as ONE transaction; by default its nft script.
    fn apply_elements(&self, op: &str, batch: &ElementBatch) -> Result<(), NftError> {
        self.run_script(op, &batch.script())
    }
}

impl ScriptBackend for NftCommand {
    /// The script reaches nft whole or not at all, even when the agent is killed while
    /// handing it over (`run_script_whole`): the table is the old one or the new one.
    fn run_script(&self, op: &str, script: &str) -> Result<(), NftError> {
        NftCommand::run_script_whole(self, op, script)
    }

    /// One nf_tables netlink batch, sent in one `sendmsg`: no `nft` process and no cache
    /// fetch of the whole ruleset for a few elements (aksnet_nft::nfnetlink).
    fn apply_elements(&self, op: &str, batch: &ElementBatch) -> Result<(), NftError> {
        NftCommand::apply_elements(self, op, batch)
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
    /// Only the differences (the script's line count); `incremental`: computed from the
    /// changed pods alone, without a full compile.
    Updated {
        lines: usize,
        incremental: bool,
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

enum PodsOutcome {
    Done(Applied),
    /// Compile whole, diffing against this table (what the kernel holds), if known.
    Declined(Option<FilterTable>),
}

pub struct PolicyController<B: ScriptBackend> {
    pub backend: B,
    pub settings: PolicySettings,
    /// What this process applied, with the incremental compiler's indexes.
    applied: Option<Compiled>,
}

impl<B: ScriptBackend> PolicyController<B> {
    pub fn new(backend: B, settings: PolicySettings) -> Self {
        PolicyController {
            backend,
            settings,
            applied: None,
        }
    }

    fn scope(&self) -> NodeScope<'_> {
        NodeScope {
            table: &self.settings.table,
            node: &self.settings.node,
            pod_ranges: &self.settings.pod_ranges,
        }
    }

    /// The desired table for a view (pure).
    pub fn desired(&self, view: &ClusterView) -> Result<FilterTable, CompileError> {
        compile(&view.cluster, &view.policies, &self.scope())
    }

    fn nft_err(&self, source: NftError) -> PolicyAgentError {
        PolicyAgentError::Nft {
            table: self.settings.table.clone(),
            source,
        }
    }

    fn run(&mut self, script: &str) -> Result<(), PolicyAgentError> {
        let op = format!("apply policy table inet {}", self.settings.table);
        self.backend.run_script(&op, script).map_err(|e| {
            self.applied = None;
            self.nft_err(e)
        })
    }

    /// The changed pods, when only pods changed since the last apply.
    fn only_pods_changed(&self, view: &ClusterView) -> Option<Vec<PodChange>> {
        let st = self.applied.as_ref()?;
        let same = st.policies() == view.policies.as_slice()
            && st.cluster().namespaces == view.cluster.namespaces;
        if !same {
            return None;
        }
        pod_changes(st, &view.cluster.pods)
    }

    /// Pod changes applied pod by pod and sent as one small transaction.
    fn apply_pods(&mut self, changes: Vec<PodChange>) -> Result<PodsOutcome, PolicyAgentError> {
        let Some(mut st) = self.applied.take() else {
            return Ok(PodsOutcome::Declined(None));
        };
        for ch in changes {
            match st.apply_pod(ch) {
                Ok(()) => {}
                Err(IncrementalError::NeedsFull { pod, why }) => {
                    tracing::debug!(%pod, why, "policy: pod change compiled whole");
                    // Nothing was sent: the kernel holds the table before these changes.
                    return Ok(PodsOutcome::Declined(Some(st.kernel_table())));
                }
                Err(IncrementalError::Compile(e)) => return Err(e.into()),
            }
        }
        let applied = match st.take_delta() {
            None => Applied::Unchanged,
            Some((old, new)) => self.send_delta(&old, &new)?,
        };
        self.applied = Some(st);
        Ok(PodsOutcome::Done(applied))
    }

    /// An incremental delta as one transaction: a netlink element batch when it is nothing
    /// but elements (the usual pod change), else the partial nft script.
    fn send_delta(
        &mut self,
        old: &FilterTable,
        new: &FilterTable,
    ) -> Result<Applied, PolicyAgentError> {
        let updated = |lines| Applied::Updated {
            lines,
            incremental: true,
        };
        if let Some(batch) = element_batch(old, new).map_err(|e| self.nft_err(e))? {
            let op = format!("apply policy elements inet {}", self.settings.table);
            self.backend.apply_elements(&op, &batch).map_err(|e| {
                self.applied = None;
                self.nft_err(e)
            })?;
            return Ok(updated(batch.len()));
        }
        match partial_update_script(old, new).map_err(|e| self.nft_err(e))? {
            Some(script) => {
                self.run(&script)?;
                Ok(updated(script.lines().count()))
            }
            None => Ok(Applied::Unchanged),
        }
    }

    /// A whole compile, diffed against `old` (what the kernel holds), or replacing the table.
    fn apply_full(
        &mut self,
        view: &ClusterView,
        old: Option<FilterTable>,
    ) -> Result<Applied, PolicyAgentError> {
        self.applied = None;
        let desired = Compiled::new(view.cluster.clone(), view.policies.clone(), &self.scope())?;
        let table = desired.table();
        let (script, applied) = match &old {
            None => (
                Some(replace_script(&table).map_err(|e| self.nft_err(e))?),
                Applied::Replaced,
            ),
            Some(old) => match update_script(old, &table).map_err(|e| self.nft_err(e))? {
                Some(s) => {
                    let lines = s.lines().count();
                    let incremental = false;
                    (Some(s), Applied::Updated { lines, incremental })
                }
                None => (None, Applied::Unchanged),
            },
        };
        if let Some(s) = script {
            self.run(&s)?;
        }
        self.applied = Some(desired);
        Ok(applied)
    }

    /// Applies a view: only the changed pods when only pods changed, else a whole compile
    /// diffed against what this process applied; one transaction either way.
    pub fn apply_view(&mut self, view: &ClusterView) -> Result<PolicyReport, PolicyAgentError> {
        let start = Instant::now();
        let outcome = match self.only_pods_changed(view) {
            Some(changes) => self
                .apply_pods(changes)
                .inspect_err(|_| self.applied = None)?,
            None => PodsOutcome::Declined(self.applied.as_ref().map(Compiled::table)),
        };
        let applied = match outcome {
            PodsOutcome::Done(a) => a,
            PodsOutcome::Declined(old) => self.apply_full(view, old)?,
        };
        Ok(PolicyReport {
            applied,
            rules: self.applied.as_ref().map_or(0, Compiled::rule_count),
            policies: view.policies.len(),
            pods: view.cluster.pods.len(),
            elapsed: start.elapsed(),
        })
    }

    /// Pod events (a watch's added, changed and deleted pods) applied without comparing the
    /// whole view with the last one: the incremental path of [`Self::apply_view`] alone.
    /// `Ok(None)`: not possible from here (nothing applied yet by this process, or a change
    /// the incremental compiler declines, e.g. a reused address); nothing was sent, and the
    /// caller applies the whole view with [`Self::apply_view`] (then a whole replace).
    pub fn apply_pod_events(
        &mut self,
        changes: Vec<PodChange>,
    ) -> Result<Option<PolicyReport>, PolicyAgentError> {
        let start = Instant::now();
        if self.applied.is_none() {
            return Ok(None);
        }
        let outcome = self
            .apply_pods(changes)
            .inspect_err(|_| self.applied = None)?;
        let (PodsOutcome::Done(applied), Some(st)) = (outcome, self.applied.as_ref()) else {
            self.applied = None;
            return Ok(None);
        };
        Ok(Some(PolicyReport {
            applied,
            rules: st.rule_count(),
            policies: st.policies().len(),
            pods: st.cluster().pods.len(),
            elapsed: start.elapsed(),
        }))
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
    run_policy_loop_observed(ctl, source, poll, resync, stop, &|_, _| {});
}

/// What the loop reports after each reconcile: its result and how long the whole call took
/// (`--metrics-addr`: `crate::metrics::Metrics::observe_policy`).
pub type PolicyObserver<'a> = dyn Fn(&Result<PolicyReport, PolicyAgentError>, Duration) + 'a;

/// [`run_policy_loop`], handing every reconcile to `observe`.
pub fn run_policy_loop_observed<B: ScriptBackend>(
    ctl: &mut PolicyController<B>,
    source: &dyn PolicySource,
    poll: Duration,
    resync: Duration,
    stop: &AtomicBool,
    observe: &PolicyObserver<'_>,
) {
    let mut last: Option<Vec<u8>> = None;
    let mut last_apply = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let fp = source.fingerprint().ok();
        if fp.is_none() || fp != last || last_apply.elapsed() >= resync {
            let started = Instant::now();
            let result = ctl.reconcile(source);
            observe(&result, started.elapsed());
            match result {
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
