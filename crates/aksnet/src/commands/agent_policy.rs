//! The NetworkPolicy part of `aksnet agent` (docs/policy.md "Agent"): `--policy-dir` turns it
//! on; `--policy-only` runs it without SNAT (the lab's `lab netpol` uses that, once per step).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aksnet_agent::policy_controller::{
    run_policy_loop, PolicyController, PolicySettings, DEFAULT_POLICY_TABLE,
};
use aksnet_agent::policy_source::ManifestDir;
use aksnet_nft::NftCommand;
use ipnet::IpNet;

#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Enforce NetworkPolicy from this directory of manifests (Namespace, Pod, NetworkPolicy
    /// objects as `kubectl get -o yaml` prints them), re-read on change.
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// This node's name (pods with this spec.nodeName are enforced here).
    #[arg(long, value_name = "NAME", requires = "policy_dir")]
    pub node_name: Option<String>,
    /// This node's pod addresses (kubenet: the node's pod CIDR; nodesubnet: its reserved
    /// block), repeatable: an address there that no known pod has is dropped (fail closed).
    #[arg(long = "policy-pod-range", value_name = "CIDR")]
    pub pod_ranges: Vec<IpNet>,
    /// The policy table (`table inet <name>`).
    #[arg(long, default_value = DEFAULT_POLICY_TABLE)]
    pub policy_table: String,
    /// Only NetworkPolicy: no SNAT (then --mode is not needed).
    #[arg(long, requires = "policy_dir")]
    pub policy_only: bool,
}

fn controller(
    args: &PolicyArgs,
    nft: &Path,
) -> Result<(PolicyController<NftCommand>, ManifestDir), ExitCode> {
    let (Some(dir), Some(node)) = (&args.policy_dir, &args.node_name) else {
        tracing::error!("--policy-dir needs --node-name");
        return Err(ExitCode::from(1));
    };
    if let Err(e) = aksnet_nft::model::validate_name("table name", &args.policy_table) {
        tracing::error!(error = %e, "--policy-table");
        return Err(ExitCode::from(1));
    }
    let settings = PolicySettings {
        table: args.policy_table.clone(),
        node: node.clone(),
        pod_ranges: args.pod_ranges.clone(),
    };
    Ok((
        PolicyController::new(NftCommand::new(nft), settings),
        ManifestDir::new(dir),
    ))
}

/// `--policy-only`: reconcile once (`--once`: exit 0 applied, 1 bad input, 3 nft failed) or
/// run the loop.
pub fn run(args: &PolicyArgs, nft: &Path, once: bool) -> ExitCode {
    let (mut ctl, source) = match controller(args, nft) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if once {
        return match ctl.reconcile(&source) {
            Ok(r) => {
                tracing::info!(applied = ?r.applied, rules = r.rules, policies = r.policies, pods = r.pods, elapsed_us = r.elapsed.as_micros() as u64, "policy applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "policy not applied; previous policy kept");
                let nft_failed = matches!(
                    e,
                    aksnet_agent::policy_controller::PolicyAgentError::Nft { .. }
                );
                ExitCode::from(if nft_failed { 3 } else { 1 })
            }
        };
    }
    let stop = AtomicBool::new(false);
    run_policy_loop(
        &mut ctl,
        &source,
        Duration::from_millis(100),
        Duration::from_secs(60),
        &stop,
    );
    ExitCode::SUCCESS
}

/// With SNAT: the policy loop in its own thread (when --policy-dir is given).
pub fn spawn(
    args: &PolicyArgs,
    nft: &Path,
) -> Result<Option<std::thread::JoinHandle<()>>, ExitCode> {
    if args.policy_dir.is_none() {
        return Ok(None);
    }
    let (mut ctl, source) = controller(args, nft)?;
    Ok(Some(std::thread::spawn(move || {
        let stop = AtomicBool::new(false);
        run_policy_loop(
            &mut ctl,
            &source,
            Duration::from_millis(100),
            Duration::from_secs(60),
            &stop,
        );
    })))
}
