//! Which boot of the node this is: the IPAM state of pod attachments is valid for one
//! boot only (docs/architecture.md, "Crash and reboot").

use std::path::Path;
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

/// A random UUID the kernel draws at every boot (proc(5), `/proc/sys/kernel/random/boot_id`).
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The `btime` line of /proc/stat: when the system booted, in seconds since the epoch
/// (proc(5)).
const PROC_STAT: &str = "/proc/stat";

/// This boot's id, read once per process; `None` when /proc does not have it.
pub(crate) fn id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        let text = std::fs::read_to_string(BOOT_ID).ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_string())
    })
    .as_deref()
}

/// When the node booted (seconds since the epoch).
fn started_unix() -> Option<u64> {
    let text = std::fs::read_to_string(PROC_STAT).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// True when `path` was last modified before this boot. False when either time is
/// unknown, so that a doubt keeps the file.
pub(crate) fn written_before_boot(path: &Path) -> bool {
    let modified = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    match (modified, started_unix()) {
        (Some(m), Some(boot)) => m.as_secs() < boot,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_boot_has_an_id_and_a_start() {
        let id = id().expect("boot_id readable");
        assert_eq!(id.len(), 36, "{id}");
        assert!(started_unix().is_some());
    }

    #[test]
    fn a_file_written_now_is_of_this_boot() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"x").unwrap();
        assert!(!written_before_boot(&f));
        assert!(!written_before_boot(&dir.path().join("missing")));
    }
}
