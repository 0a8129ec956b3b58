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
    /// Addresses of a node subnet held by VMs, load balancers or others: never given
    /// to a node, counted when a node joins.
    #[command(subcommand)]
    Subnet(commands::subnet::SubnetCommand),
    /// The node daemon: ip-masq-agent compatible SNAT on nftables.
    Agent(Box<commands::agent::AgentArgs>),
    /// Check an AKS network plan against every AKS rule and compute its capacity.
    Plan(commands::plan::PlanArgs),
    /// Install the CNI plugin and its conflist on this node (and join it, in nodesubnet
    /// mode); idempotent. What it did is recorded for `aksnet uninstall`.
    Install(commands::install::InstallArgs),
    /// Reverse exactly what `aksnet install` did on this node.
    Uninstall(commands::install::UninstallArgs),
    /// A whole AKS-style cluster in network namespaces on this machine.
    #[command(subcommand)]
    Lab(commands::lab::LabCommand),
    /// NetworkPolicy: the model's verdicts for a probe file, and why a connection is blocked.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Migrate to Azure CNI Overlay as AKS does (from kubenet or Node Subnet): --dry-run
    /// plans it with the planner's migration rules, --apply carries it out node by node
    /// in a lab (`--prefix`); the same as `aksnet lab migrate` (docs/lab.md, "Migration").
    Migrate(commands::lab_migrate::MigrateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `aksnet node` and `aksnet agent` talk to etcd over sockets: with SIGPIPE's default action a
    // peer closing the gRPC connection would kill the process mid-write (exit 141,
    // no message, a committed join reported as failure). It keeps Rust's default
    // (SIGPIPE ignored, EPIPE returned) and handles EPIPE on stdout itself
    // (commands/node.rs `emit`). Other commands end quietly on a closed pipe.
    // The agent may keep a lease alive over an etcd socket too (--keepalive-node).
    if !matches!(
        cli.command,
        Command::Node(_) | Command::Subnet(_) | Command::Agent(_)
    ) {
        restore_sigpipe();
    }
    match cli.command {
        Command::Node(c) => commands::node::run(c),
        Command::Subnet(c) => commands::subnet::run(c),
        Command::Agent(a) => commands::agent::run(*a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Lab(c) => commands::lab::run(c),
        Command::Install(a) => commands::install::run_install(a),
        Command::Uninstall(a) => commands::install::run_uninstall(a),
        Command::Policy(c) => commands::policy::run(c),
        Command::Migrate(a) => commands::lab_migrate::run(&a),
    }
}

/// Rust ignores SIGPIPE, so printing to a closed pipe (`aksnet node list | head`)
/// makes `println!` panic. A command-line tool should end quietly instead, as
/// every Unix tool does: restore the default disposition.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: `signal` with `SIG_DFL` installs no handler (no code runs in
    // signal context) and is called in `main` right after parsing the flags, before any thread
    // exists; its only effect is that a write to a closed pipe ends the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
