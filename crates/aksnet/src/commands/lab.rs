//! `aksnet lab` (skeleton).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum LabCommand {
    /// Not implemented yet.
    Todo,
}

pub fn run(_cmd: LabCommand) -> ExitCode {
    eprintln!("aksnet lab: not implemented yet");
    ExitCode::from(2)
}
