//! `aksnet node` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum NodeCommand {
    /// Not implemented yet.
    Todo,
}

pub fn run(_cmd: NodeCommand) -> ExitCode {
    eprintln!("aksnet node: not implemented yet");
    ExitCode::from(2)
}
