//! `aksnet lab netpol FILE`: thin; everything is in aksnet-lab's `netpol`.
//! Exit status: 0 every observation equals the model (and the file's expectations); 1 a
//! difference or a failure; 2 unusable input (nothing created).

use std::path::PathBuf;
use std::process::ExitCode;

use aksnet_lab::netpol::{netpol, NetpolOptions};
use aksnet_lab::{Binaries, Model};

use super::policy::Format;

#[derive(clap::Args, Debug, Clone)]
pub struct NetpolArgs {
    /// The probe file (docs/policy.md "Probe files").
    #[arg(required_unless_present = "down")]
    pub file: Option<PathBuf>,
    /// Remove what a killed run with this --prefix left (namespaces, their processes, state)
    /// instead of running; refused while such a run is alive.
    #[arg(long, conflicts_with_all = ["file", "model", "format", "bin_dir"])]
    pub down: bool,
    #[arg(long, default_value = "nodesubnet")]
    pub model: Model,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Prefix of every namespace, link and table the run creates (at most 10 characters).
    #[arg(long, default_value = "aknp")]
    pub prefix: String,
    /// Directory of the aksnet and aksnet-cni binaries (default: next to this one).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

fn down(prefix: &str) -> ExitCode {
    match aksnet_lab::netpol_down::down(prefix) {
        Ok(r) => {
            println!(
                "lab netpol --down: removed {} namespaces, {} processes, {} state directories",
                r.namespaces.len(),
                r.processes,
                r.state_dirs.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aksnet lab netpol --down: {e}");
            ExitCode::from(match e {
                aksnet_lab::LabError::Invalid { .. } => 2,
                _ => 1,
            })
        }
    }
}

pub fn run(a: &NetpolArgs) -> ExitCode {
    let Some(file) = a.file.as_ref().filter(|_| !a.down) else {
        return down(&a.prefix);
    };
    let scenario = match super::policy::load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aksnet lab netpol: {e}");
            return ExitCode::from(2);
        }
    };
    let bins = match Binaries::locate(a.bin_dir.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("aksnet lab netpol: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = NetpolOptions {
        prefix: a.prefix.clone(),
        model: a.model,
        state_dir: aksnet_lab::netpol_down::state_dir(&a.prefix, std::process::id()),
    };
    let mut progress: Box<dyn std::io::Write> = match a.format {
        Format::Human => Box::new(std::io::stdout()),
        Format::Json => Box::new(std::io::stderr()),
    };
    let report = match netpol(&scenario, &opts, &bins, &mut progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aksnet lab netpol: {e}");
            return ExitCode::from(match e {
                aksnet_lab::LabError::Invalid { .. } => 2,
                _ => 1,
            });
        }
    };
    super::policy::print_report(&report, a.format, "aksnet lab netpol", 1)
}
