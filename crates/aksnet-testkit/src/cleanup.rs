//! A command run on drop, for what a test's subject removes itself (e.g.
//! `aksnet lab down --prefix P`): it runs when the test ends, also when the
//! test fails, and can run first to clear leftovers of a killed run.

use std::ffi::{OsStr, OsString};
use std::process::Command;

use crate::run::{run, Run};

/// Runs `program args…` (with `env`) when dropped.
#[derive(Debug, Clone)]
pub struct CleanupGuard {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl CleanupGuard {
    pub fn new<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Self {
        CleanupGuard {
            program: program.as_ref().to_owned(),
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
        }
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The cleanup command, to run it now (say, before the test starts).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs the cleanup now and returns its result; it runs again on drop.
    #[track_caller]
    pub fn run_now(&self) -> Run {
        run(&mut self.command())
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        match self.command().output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "cleanup: {:?} {:?}: {}",
                self.program,
                self.args,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cleanup: {:?} {:?}: {e}", self.program, self.args),
        }
    }
}
