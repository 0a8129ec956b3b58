//! A command's whole result (exit code, stdout, stderr) for tests that assert on
//! all three, the tools a test needs, and the binaries built next to the one
//! under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What a finished command returned, its output as text.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// True when it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout then stderr, for a failure message.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to its end, panicking only if it cannot start.
#[track_caller]
pub fn run(cmd: &mut Command) -> Run {
    cmd.output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e} (is it installed?)"))
        .into()
}

/// Fails (never skips) unless every `(program, Debian package)` starts; the
/// message names the package to install.
#[track_caller]
pub fn require_tools(tools: &[(&str, &str)]) {
    for (tool, package) in tools {
        // Not every tool knows --version (iproute2's `ip` wants -V).
        let starts = Command::new(tool).arg("--version").output().is_ok()
            || Command::new(tool).arg("-V").output().is_ok();
        assert!(
            starts,
            "{tool} (Debian package {package}) is missing: bash scripts/install-deps.sh"
        );
    }
}

/// The binary `name` built in the same directory as `exe` (a test's
/// `env!("CARGO_BIN_EXE_…")`); fails naming the build that makes it.
#[track_caller]
pub fn sibling_bin(exe: &str, name: &str) -> PathBuf {
    let p = Path::new(exe).parent().unwrap_or(Path::new(".")).join(name);
    assert!(
        p.is_file(),
        "{} is missing: build it first (cargo build --workspace --all-features --bins)",
        p.display()
    );
    p
}
