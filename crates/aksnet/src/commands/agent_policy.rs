//! The NetworkPolicy part of `aksnet agent` (docs/policy.md "Agent"): `--policy-dir` turns it
//! on; `--policy-only` runs it without SNAT (the lab's `lab netpol` uses that, once per step).
//! `--kubeconfig PATH` or `--in-cluster` take the objects from the Kubernetes API instead
//! (feature `kube`, docs/kubernetes.md "The Kubernetes API as the source").

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use aksnet_agent::metrics::Metrics;
use aksnet_agent::policy_controller::{
    run_policy_loop, run_policy_loop_observed, PolicyController, PolicySettings,
    DEFAULT_POLICY_TABLE,
};
use aksnet_agent::policy_source::{ManifestDir, PolicySource};
use aksnet_nft::NftCommand;
use ipnet::IpNet;

#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Enforce NetworkPolicy from this directory of manifests (Namespace, Pod, NetworkPolicy
    /// objects as `kubectl get -o yaml` prints them), re-read on change.
    #[arg(long, value_name = "DIR", group = "policy_source")]
    pub policy_dir: Option<PathBuf>,
    /// Enforce NetworkPolicy from the Kubernetes API (watches of Namespaces, Pods,
    /// NetworkPolicies and Nodes) with this kubeconfig; needs the `kube` build feature.
    #[arg(long, value_name = "PATH", group = "policy_source")]
    pub kubeconfig: Option<PathBuf>,
    /// Like --kubeconfig, with the pod's service account (a DaemonSet).
    #[arg(long, group = "policy_source")]
    pub in_cluster: bool,
    /// This node's name (pods with this spec.nodeName are enforced here).
    #[arg(long, value_name = "NAME", requires = "policy_source")]
    pub node_name: Option<String>,
    /// This node's pod addresses (kubenet: the node's pod CIDR; nodesubnet: its reserved
    /// block), repeatable: an address there that no known pod has is dropped (fail closed).
    /// With the Kubernetes API the default is the Node's spec.podCIDRs.
    #[arg(long = "policy-pod-range", value_name = "CIDR")]
    pub pod_ranges: Vec<IpNet>,
    /// The policy table (`table inet <name>`).
    #[arg(long, default_value = DEFAULT_POLICY_TABLE)]
    pub policy_table: String,
    /// Only NetworkPolicy: no SNAT (then --mode is not needed).
    #[arg(long, requires = "policy_source")]
    pub policy_only: bool,
}

impl PolicyArgs {
    pub fn enabled(&self) -> bool {
        self.policy_dir.is_some() || self.kubeconfig.is_some() || self.in_cluster
    }
}

/// Where the objects come from.
enum Source {
    Dir(ManifestDir),
    #[cfg(feature = "kube")]
    Kube(aksnet_agent::kube_source::KubeSource),
}

/// How long the first complete list from the API may take before the agent goes on without
/// the Node's pod CIDR (the watches keep trying; policy waits for a complete view).
#[cfg(feature = "kube")]
const FIRST_SYNC: Duration = Duration::from_secs(60);

impl Source {
    fn as_dyn(&self) -> &dyn PolicySource {
        match self {
            Source::Dir(d) => d,
            #[cfg(feature = "kube")]
            Source::Kube(k) => k,
        }
    }

    /// The node's pod ranges: the flags, else (Kubernetes API) the Node's spec.podCIDRs,
    /// after waiting for the first list (blocking: call it off the SNAT thread).
    // `node` names the Node object, which only the API source reads.
    #[cfg_attr(not(feature = "kube"), allow(unused_variables))]
    fn pod_ranges(&self, args: &PolicyArgs, node: &str) -> Vec<IpNet> {
        match self {
            Source::Dir(_) => args.pod_ranges.clone(),
            #[cfg(feature = "kube")]
            Source::Kube(k) => {
                if !k.wait_synced(FIRST_SYNC) {
                    tracing::warn!(source = %k.describe(), "no complete list from the API yet; policy waits for it");
                }
                if !args.pod_ranges.is_empty() {
                    return args.pod_ranges.clone();
                }
                match k.node(node) {
                    Some(n) if !n.pod_cidrs.is_empty() => {
                        tracing::info!(node, pod_cidrs = ?n.pod_cidrs, "pod ranges from the Node object");
                        n.pod_cidrs
                    }
                    _ => {
                        tracing::warn!(node, "Node has no spec.podCIDR (nodesubnet?) and no --policy-pod-range: addresses of pods not known yet are not dropped");
                        Vec::new()
                    }
                }
            }
        }
    }
}

#[cfg(feature = "kube")]
fn kube_source(args: &PolicyArgs) -> Result<Source, ExitCode> {
    use aksnet_agent::kube_source::{KubeConfigSource, KubeSettings, KubeSource};
    let config = match &args.kubeconfig {
        Some(p) => KubeConfigSource::File(p.clone()),
        None => KubeConfigSource::InCluster,
    };
    let settings = KubeSettings {
        config,
        relist: KubeSettings::DEFAULT_RELIST,
    };
    match KubeSource::start(settings) {
        Ok(s) => Ok(Source::Kube(s)),
        Err(e) => {
            tracing::error!(error = %e, "kubernetes source");
            Err(ExitCode::from(1))
        }
    }
}

#[cfg(not(feature = "kube"))]
fn kube_source(_: &PolicyArgs) -> Result<Source, ExitCode> {
    tracing::error!("--kubeconfig/--in-cluster: this aksnet was built without the `kube` feature (cargo build -p aksnet --features kube)");
    Err(ExitCode::from(1))
}

/// Checks the flags and starts the source (fast: a bad kubeconfig fails here).
fn source(args: &PolicyArgs) -> Result<(String, Source), ExitCode> {
    let Some(node) = &args.node_name else {
        tracing::error!("--policy-dir, --kubeconfig and --in-cluster need --node-name");
        return Err(ExitCode::from(1));
    };
    if let Err(e) = aksnet_nft::model::validate_name("table name", &args.policy_table) {
        tracing::error!(error = %e, "--policy-table");
        return Err(ExitCode::from(1));
    }
    let source = match &args.policy_dir {
        Some(dir) => Source::Dir(ManifestDir::new(dir)),
        None => kube_source(args)?,
    };
    Ok((node.clone(), source))
}

/// The controller for the source (may wait for the API's first list).
fn controller(
    args: &PolicyArgs,
    nft: &Path,
    node: String,
    source: &Source,
) -> PolicyController<NftCommand> {
    let settings = PolicySettings {
        table: args.policy_table.clone(),
        pod_ranges: source.pod_ranges(args, &node),
        node,
    };
    PolicyController::new(NftCommand::new(nft), settings)
}

/// `--policy-only`: reconcile once (`--once`: exit 0 applied, 1 bad input, 3 nft failed) or
/// run the loop.
pub fn run(args: &PolicyArgs, nft: &Path, once: bool) -> ExitCode {
    let (node, source) = match source(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut ctl = controller(args, nft, node, &source);
    let source = source.as_dyn();
    if once {
        return match ctl.reconcile(source) {
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
        source,
        Duration::from_millis(100),
        Duration::from_secs(60),
        &stop,
    );
    ExitCode::SUCCESS
}

/// With SNAT: the policy loop in its own thread (when a source is given), each reconcile
/// recorded in `metrics` (`--metrics-addr`).
pub fn spawn(
    args: &PolicyArgs,
    nft: &Path,
    metrics: &Arc<Metrics>,
) -> Result<Option<std::thread::JoinHandle<()>>, ExitCode> {
    if !args.enabled() {
        return Ok(None);
    }
    let (node, source) = source(args)?;
    let (args, nft, metrics) = (args.clone(), nft.to_path_buf(), metrics.clone());
    Ok(Some(std::thread::spawn(move || {
        let mut ctl = controller(&args, &nft, node, &source);
        let stop = AtomicBool::new(false);
        run_policy_loop_observed(
            &mut ctl,
            source.as_dyn(),
            Duration::from_millis(100),
            Duration::from_secs(60),
            &stop,
            &|r, took| metrics.observe_policy(r, took),
        );
    })))
}
