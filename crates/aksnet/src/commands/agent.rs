//! `aksnet agent` (skeleton).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AgentArgs {}

pub fn run(_args: AgentArgs) -> ExitCode {
    eprintln!("aksnet agent: not implemented yet");
    ExitCode::from(2)
}
