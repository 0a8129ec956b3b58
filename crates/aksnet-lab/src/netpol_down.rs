//! `aksnet lab netpol --down --prefix P`: removes what a `lab netpol` run killed before its
//! own cleanup (SIGKILL, a crash) left behind: its network namespaces, the processes in them
//! (the listeners outlive their killed parent) and its state directory.
//!
//! What belongs to a run is known without a record, from names the run alone uses: its
//! state directory is `/run/<prefix>netpol-<pid>` and its namespaces are `<prefix>f`
//! (fabric), `<prefix>n<i>` (nodes), `<prefix>p<j>` (pods) and `<prefix>x<k>` (externals).
//! A run of that prefix that is still alive (its pid exists) is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use aksnet_netlink::{delete_named_netns, named_netns_path};

use crate::error::{LabError, Result};

/// Where the run with this prefix and pid keeps its state (node data, manifests).
pub fn state_dir(prefix: &str, pid: u32) -> PathBuf {
    PathBuf::from(format!("/run/{prefix}netpol-{pid}"))
}

/// What [`down`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub namespaces: Vec<String>,
    pub processes: usize,
    pub state_dirs: Vec<PathBuf>,
}

/// Whether `name` is one of the namespaces a run with `prefix` creates.
pub fn is_run_namespace(prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    match rest.split_at_checked(1) {
        Some(("f", "")) => true,
        Some(("n" | "p" | "x", digits)) => {
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// The state directories of runs with this prefix: (pid, directory).
fn state_dirs(prefix: &str) -> Result<Vec<(u32, PathBuf)>> {
    let run = Path::new("/run");
    let lead = format!("{prefix}netpol-");
    let mut out = Vec::new();
    for e in std::fs::read_dir(run).map_err(|e| LabError::io("list", run, e))? {
        let e = e.map_err(|e| LabError::io("list", run, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&lead).and_then(|p| p.parse::<u32>().ok()) {
            out.push((pid, e.path()));
        }
    }
    Ok(out)
}

fn netns_names(prefix: &str) -> Result<Vec<String>> {
    let dir = named_netns_path("x");
    let dir = dir.parent().unwrap_or(Path::new("/run/netns"));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LabError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let name = e
            .map_err(|e| LabError::io("list", dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if is_run_namespace(prefix, &name) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether namespaces of a run with this prefix exist (an earlier run was killed).
pub fn leftovers(prefix: &str) -> Result<bool> {
    Ok(!netns_names(prefix)?.is_empty())
}

/// Kills the processes in a namespace (`ip netns pids`): they hold it and its ports.
fn kill_in(ns: &str) -> Result<usize> {
    let what = format!("ip netns pids {ns}");
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map_err(|e| LabError::Command {
            what: what.clone(),
            status: "not started".into(),
            message: e.to_string(),
        })?;
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    for pid in &pids {
        // Each by its id; one already gone is fine.
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    Ok(pids.len())
}

/// Removes what dead runs with `prefix` left. Refuses (changing nothing) while a run with
/// this prefix is alive.
pub fn down(prefix: &str) -> Result<Removed> {
    crate::netpol::check_prefix(prefix)?;
    let dirs = state_dirs(prefix)?;
    if let Some((pid, dir)) = dirs
        .iter()
        .find(|(pid, _)| Path::new(&format!("/proc/{pid}")).exists())
    {
        return Err(LabError::Invalid {
            flag: "--prefix",
            value: prefix.into(),
            why: format!(
                "a lab netpol run with this prefix is alive (pid {pid}, state in {}): nothing removed",
                dir.display()
            ),
        });
    }
    let mut removed = Removed::default();
    let names = netns_names(prefix)?;
    for ns in &names {
        removed.processes += kill_in(ns)?;
    }
    for ns in names.iter().rev() {
        delete_named_netns(ns)?;
        removed.namespaces.push(ns.clone());
    }
    for (_, dir) in dirs {
        std::fs::remove_dir_all(&dir).map_err(|e| LabError::io("remove", &dir, e))?;
        removed.state_dirs.push(dir);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::is_run_namespace;

    #[test]
    fn only_the_runs_own_names() {
        for n in ["aknpf", "aknpn0", "aknpp12", "aknpx3"] {
            assert!(is_run_namespace("aknp", n), "{n}");
        }
        for n in [
            "aknp", "aknpff", "aknpn", "aknpp1a", "aknpq1", "xaknpf", "aknpfx", "aknpn-1",
        ] {
            assert!(!is_run_namespace("aknp", n), "{n}");
        }
    }
}
