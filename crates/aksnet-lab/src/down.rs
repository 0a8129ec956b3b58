//! `lab down`: removes what the journal says the lab created, newest first,
//! then the state directory. Works after a failed or killed `up` (objects are
//! journalled before they exist; removing an absent one is a no-op) and does
//! nothing the second time.
//!
//! Deleting a namespace removes everything inside it: the veth pairs (a pod's
//! veth dies with the pod netns, its host end with it), addresses, routes,
//! policy rules, neighbours and the agent's nftables table. The cluster
//! store, the nodes' pools and IPAM state live in the state directory.
//! Nothing is looked up by pattern: only journalled names are touched.

use std::path::Path;

use aksnet_netlink::delete_named_netns;

use crate::error::{LabError, Result};
use crate::spec::validate_state_dir;
use crate::state::{Entry, StateDir};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// Namespaces that existed and were deleted.
    pub netns_deleted: usize,
    /// Whether there was any state at all.
    pub found: bool,
}

pub fn down(prefix: &str, state_dir: &Path) -> Result<DownReport> {
    crate::spec::validate_prefix(prefix)?;
    validate_state_dir(prefix, state_dir)?;
    let state = StateDir::new(state_dir);
    if !state.exists() {
        return Ok(DownReport::default());
    }
    if state.spec_file().exists() {
        let spec = state.read_spec()?;
        if spec.prefix != prefix {
            return Err(LabError::invalid(
                "--prefix",
                prefix,
                format!(
                    "the lab in {} has prefix {:?}",
                    state_dir.display(),
                    spec.prefix
                ),
            ));
        }
    }
    if let Some(pid) = state.running_up() {
        return Err(LabError::State {
            path: state.dir.join(crate::state::UP_PID_FILE),
            why: format!("`lab up` (pid {pid}) is still building this lab; stop it first, then run down again"),
        });
    }
    let mut report = DownReport {
        found: true,
        ..DownReport::default()
    };
    let mut names: Vec<String> = state
        .read_journal()?
        .into_iter()
        .filter_map(|e| match e {
            Entry::Netns { name } => Some(name),
            _ => None,
        })
        .collect();
    names.reverse();
    names.dedup();
    for name in names {
        // Guard: only names carrying the prefix (the journal is ours, but a
        // hand-edited one must not reach other namespaces).
        if !name.starts_with(prefix) {
            return Err(LabError::State {
                path: state.journal_file(),
                why: format!("netns {name:?} lacks the prefix {prefix:?}; refusing to delete it"),
            });
        }
        if delete_named_netns(&name)? {
            report.netns_deleted += 1;
        }
    }
    match std::fs::remove_dir_all(state_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LabError::io("remove state directory", state_dir, e)),
    }
    Ok(report)
}
