//! `aksnet`: the command line for everything that is not the CNI plugin itself.
//! Thin: each subcommand parses its flags and calls a library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
#[command(
    name = "aksnet",
    version,
    about = "AKS legacy networking (Node Subnet, kubenet) on any Linux machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reserve, release and list node addresses in the cluster store.
    #[command(subcommand)]
    Node(commands::node::NodeCommand),
    /// The node daemon: ip-masq-agent compatible SNAT on nftables.
    Agent(commands::agent::AgentArgs),
    /// Check an AKS network plan against every AKS rule and compute its capacity.
    Plan(commands::plan::PlanArgs),
    /// A whole AKS-style cluster in network namespaces on this machine.
    #[command(subcommand)]
    Lab(commands::lab::LabCommand),
    /// NetworkPolicy: the model's verdicts for a probe file, and why a connection is blocked.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Node(c) => commands::node::run(c),
        Command::Agent(a) => commands::agent::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Lab(c) => commands::lab::run(c),
        Command::Policy(c) => commands::policy::run(c),
    }
}

/// Rust ignores SIGPIPE, so printing to a closed pipe (`aksnet node list | head`)
/// makes `println!` panic. A command-line tool should end quietly instead, as
/// every Unix tool does: restore the default disposition.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: `signal` with `SIG_DFL` installs no handler (no code runs in
    // signal context) and is called first thing in `main`, before any thread
    // exists; its only effect is that a write to a closed pipe ends the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
