//! `aksnet lab`: a whole AKS-style cluster in network namespaces on this
//! machine (issue 6; docs/lab.md). Thin: flags here, everything else in the
//! `aksnet-lab` crate.
//!
//! Exit status: 0 done (check: every path as documented); 1 a check
//! mismatch, a demo claim that failed, or an operation that failed; 2 bad
//! input (nothing created).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aksnet_core::podsubnet::Allocation;
use aksnet_lab::{Binaries, LabError, LabSpec, Model};
use ipnet::Ipv4Net;

#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Prefix of every name the lab creates (namespaces, node names, nft table).
    #[arg(long, default_value = aksnet_lab::DEFAULT_PREFIX)]
    pub prefix: String,
    /// The lab's state directory (journal, cluster store, node data dirs);
    /// default /run/<prefix>lab.
    #[arg(long, alias = "store", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Common {
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| aksnet_lab::default_state_dir(&self.prefix))
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: Common,
    /// nodesubnet (Azure CNI Node Subnet), kubenet, podsubnet (Azure CNI Pod
    /// Subnet) or overlay (Azure CNI Overlay).
    #[arg(long, default_value = "nodesubnet")]
    pub model: Model,
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// maxPods per node; default AKS's: 30 (nodesubnet), 110 (kubenet), 250 (overlay, podsubnet).
    #[arg(long)]
    pub max_pods: Option<u32>,
    #[arg(long, default_value_t = 2)]
    pub pods_per_node: u32,
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_VNET)]
    pub vnet: Ipv4Net,
    /// The node subnet.
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_SUBNET)]
    pub subnet: Ipv4Net,
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_SUBNET_NAME)]
    pub subnet_name: String,
    /// The cluster pod CIDR of kubenet and overlay (a /24 per node).
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_POD_CIDR)]
    pub pod_cidr: Ipv4Net,
    /// podsubnet: the pod subnet, a second subnet of --vnet.
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_POD_SUBNET)]
    pub pod_subnet: Ipv4Net,
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_POD_SUBNET_NAME)]
    pub pod_subnet_name: String,
    /// podsubnet: static (/28 blocks for maxPods at join) or dynamic (batches of 16 on demand).
    #[arg(long, default_value = "dynamic", value_parser = parse_allocation)]
    pub pod_allocation: Allocation,
    /// The peered VNet's range.
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_PEER)]
    pub peer: Ipv4Net,
    /// The on-premises range.
    #[arg(long, default_value = aksnet_lab::spec::DEFAULT_ON_PREM)]
    pub on_prem: Ipv4Net,
    /// Add the peered range to nonMasqueradeCIDRs (Azure/AKS#1207).
    #[arg(long)]
    pub non_masq_peer: bool,
    /// What joins the nodes: sdn (a namespace routing as Azure's SDN does) or l2
    /// (a plain bridge: real hosts of one LAN, docs/lab.md "Fabrics").
    #[arg(long, default_value = "sdn")]
    pub fabric: aksnet_lab::spec::Fabric,
    /// Where aksnet and aksnet-cni are (default: $AKSNET_BIN_DIR, else next to this binary).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// The demo's own prefix, so it never touches a lab made with `lab up`;
    /// leftovers of an interrupted demo under it are removed first.
    #[arg(long, default_value = aksnet_lab::demo::DEFAULT_DEMO_PREFIX)]
    pub prefix: String,
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum LabCommand {
    /// Build a lab: fabric (the VNet), nodes, pods, a VM, a peered and an on-premises host.
    Up(UpArgs),
    /// Probe every path that matters and compare with the documented behaviour.
    Check(CheckArgs),
    /// Up, check and each model's own claims for the four models, side by side, then down.
    Demo(DemoArgs),
    /// Remove everything the lab created (also after an interrupted up).
    Down(Common),
    /// Build a probe file's cluster, apply its NetworkPolicies through the real agent and
    /// observe every verdict with a real connection (docs/policy.md).
    Netpol(super::lab_netpol::NetpolArgs),
    /// Migrate the lab to Azure CNI Overlay as AKS does (kubenet or Node Subnet):
    /// --dry-run plans it with the planner's migration rules (docs/lab.md, "Migration").
    Migrate(super::lab_migrate::MigrateArgs),
}

fn parse_allocation(s: &str) -> Result<Allocation, String> {
    match s {
        "static" => Ok(Allocation::Static),
        "dynamic" => Ok(Allocation::Dynamic),
        _ => Err(format!(
            "unknown allocation {s:?}: expected static or dynamic"
        )),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub(crate) fn say(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

pub(crate) fn fail(e: &LabError) -> ExitCode {
    eprintln!("aksnet lab: {e}");
    match e {
        LabError::Invalid { .. } => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

pub fn run(cmd: LabCommand) -> ExitCode {
    match cmd {
        LabCommand::Netpol(a) => super::lab_netpol::run(&a),
        LabCommand::Migrate(a) => super::lab_migrate::run(&a),
        LabCommand::Up(a) => up(a),
        LabCommand::Check(a) => check(&a),
        LabCommand::Demo(a) => demo(&a),
        LabCommand::Down(c) => down(&c),
    }
}

impl UpArgs {
    /// The lab these flags describe (maxPods defaults to the model's AKS default).
    fn spec(self) -> LabSpec {
        LabSpec {
            prefix: self.common.prefix.clone(),
            state_dir: self.common.state_dir(),
            model: self.model,
            nodes: self.nodes,
            max_pods: self.max_pods.unwrap_or(self.model.default_max_pods()),
            pods_per_node: self.pods_per_node,
            vnet: self.vnet,
            subnet: self.subnet,
            subnet_name: self.subnet_name,
            pod_cidr: self.pod_cidr,
            peer: self.peer,
            on_prem: self.on_prem,
            non_masq_peer: self.non_masq_peer,
            fabric: self.fabric,
            pod_subnet: self.pod_subnet,
            pod_subnet_name: self.pod_subnet_name,
            pod_allocation: self.pod_allocation,
        }
    }
}

/// `lab up`: every flag checked before anything is created; a failure past that
/// point says how to remove what was made.
fn up(a: UpArgs) -> ExitCode {
    let bin_dir = a.bin_dir.clone();
    let spec = a.spec();
    if let Err(e) = spec.topology() {
        return fail(&e);
    }
    let bins = match Binaries::locate(bin_dir.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    match aksnet_lab::up(&spec, &bins, &mut std::io::stdout()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let code = fail(&e);
            if !matches!(e, LabError::AlreadyUp { .. }) {
                eprintln!(
                    "aksnet lab: the lab is partly up; remove it with `aksnet lab down --prefix {}`",
                    spec.prefix
                );
            }
            code
        }
    }
}

/// `lab check`: the report as text or JSON; exit 1 when a path differs from the docs.
fn check(a: &CheckArgs) -> ExitCode {
    let lab = match aksnet_lab::Lab::open(&a.common.prefix, &a.common.state_dir()) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let report = match aksnet_lab::check(&lab) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if a.format == "json" {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => say(&format!("{s}\n")),
            Err(e) => {
                eprintln!("aksnet lab: encode check report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        say(&report.render(&lab));
        if !lab.complete {
            say("note: `lab up` did not finish; some paths may be missing\n");
        }
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn demo(a: &DemoArgs) -> ExitCode {
    if let Err(e) = aksnet_lab::spec::validate_prefix(&a.prefix) {
        return fail(&e);
    }
    let bins = match Binaries::locate(a.bin_dir.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let opts = aksnet_lab::DemoOptions {
        prefix: a.prefix.clone(),
        state_dir: a.state_dir.clone(),
    };
    match aksnet_lab::demo(&opts, &bins, &mut std::io::stdout()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => fail(&e),
    }
}

fn down(c: &Common) -> ExitCode {
    match aksnet_lab::down(&c.prefix, &c.state_dir()) {
        Ok(r) if !r.found => {
            say(&format!("lab {}: nothing to remove\n", c.prefix));
            ExitCode::SUCCESS
        }
        Ok(r) => {
            say(&format!(
                "lab {} down: {} namespaces removed\n",
                c.prefix, r.netns_deleted
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
