//! `aksnet plan` (skeleton).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PlanArgs {}

pub fn run(_args: PlanArgs) -> ExitCode {
    eprintln!("aksnet plan: not implemented yet");
    ExitCode::from(2)
}
