//! `aksnet plan`: validate an AKS network plan and compute its capacity (issue 5). Thin: flags
//! here, everything else in aksnet-plan. Exit status: 0 no errors, 1 errors found, 2 input
//! that cannot be used.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use aksnet_plan::model::Plugin;
use aksnet_plan::{input, render, Growth, PlanOptions, WhatIf};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PluginArg {
    Kubenet,
    Azure,
    None,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ModeArg {
    Overlay,
    None,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MigrateTarget {
    Overlay,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Inputs are detected from their shape: an aksnet spec (YAML/JSON), az aks show, az aks nodepool show, \
az network vnet show, an ARM GET response or REST example, an ARM template (+ parameters file), Terraform \
.tf/.tfvars/.tfvars.json, Bicep .bicep/.bicepparam, az CLI scripts (.azcli, .sh) and the az code blocks of Markdown (.md).\n\
Each file must be a regular file of at most 16 MiB, nested at most 64 levels deep.\n\
Exit status: 0 no errors, 1 errors found, 2 input that cannot be used. See docs/plan.md."
)]
pub struct PlanArgs {
    /// Input files (several at once: a cluster plus its VNet, a template plus parameters, .tf or .bicep files).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// On-premises range reached over ExpressRoute/VPN (repeatable).
    #[arg(long = "on-prem", value_name = "CIDR")]
    pub on_prem: Vec<String>,
    /// Range of a peered VNet not given as a file (repeatable).
    #[arg(long = "peer", value_name = "CIDR")]
    pub peer: Vec<String>,
    /// What-if: plan with this network plugin.
    #[arg(long, value_enum)]
    pub plugin: Option<PluginArg>,
    /// What-if: plan with this network plugin mode.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// What-if / migration: the new pod CIDR.
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod_cidr: Option<String>,
    /// Check the migration of a kubenet or Node Subnet cluster to Azure CNI Overlay.
    #[arg(long = "migrate-to", value_enum)]
    pub migrate_to: Option<MigrateTarget>,
    /// Growth rate: "N/month" (nodes) or "Npods/month"; /week and /year also work.
    #[arg(long, value_name = "RATE")]
    pub growth: Option<String>,
    /// Colour in the human report.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
}

fn unusable(message: String) -> ExitCode {
    eprintln!("aksnet plan: {message}");
    ExitCode::from(2)
}

pub fn run(args: PlanArgs) -> ExitCode {
    for (flag, values) in [("--on-prem", &args.on_prem), ("--peer", &args.peer)] {
        for v in values {
            if aksnet_plan::net::parse_cidr(v).is_none() {
                return unusable(format!("{flag}: '{v}' is not CIDR notation (a.b.c.d/len)"));
            }
        }
    }
    if let Some(pc) = &args.pod_cidr {
        if aksnet_plan::net::parse_cidr(pc).is_none() {
            return unusable(format!(
                "--pod-cidr: '{pc}' is not CIDR notation (a.b.c.d/len)"
            ));
        }
    }
    if args.migrate_to.is_some() && (args.plugin.is_some() || args.mode.is_some()) {
        return unusable("--migrate-to cannot be combined with --plugin or --mode".into());
    }
    let growth = match &args.growth {
        Some(g) => match Growth::parse(g) {
            Some(parsed) => Some((parsed, g.clone())),
            None => {
                return unusable(format!(
                    "--growth: '{g}' is not a rate like 20/month or 500pods/month"
                ))
            }
        },
        None => None,
    };
    let mut plan_input = match input::load_files(&args.files) {
        Ok(i) => i,
        Err(e) => return unusable(e.to_string()),
    };
    plan_input.on_prem.extend(args.on_prem.iter().cloned());
    plan_input.extra_peers.extend(args.peer.iter().cloned());
    let what_if = WhatIf {
        plugin: args.plugin.map(|p| match p {
            PluginArg::Kubenet => Plugin::Kubenet,
            PluginArg::Azure => Plugin::Azure,
            PluginArg::None => Plugin::None,
        }),
        overlay: args.mode.map(|m| matches!(m, ModeArg::Overlay)),
        pod_cidr: args.pod_cidr.clone(),
        migrate_to_overlay: args.migrate_to.is_some(),
    };
    let report = aksnet_plan::plan(&plan_input, &PlanOptions { what_if, growth });
    let text = match args.format {
        Format::Human => {
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            render::human(&report, color)
        }
        Format::Json => render::json(&report),
        Format::Sarif => render::sarif(&report),
    };
    println!("{}", text.trim_end());
    if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
