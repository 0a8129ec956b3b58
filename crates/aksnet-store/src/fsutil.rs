//! Atomic file replacement: write a temp file in the same directory, fsync it,
//! rename it over the target, fsync the directory. A crash leaves either the old
//! or the new file, never a truncated one (docs/prior-art.md#atomic-writes,
//! containernetworking/plugins#498).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O failure with the operation and the path it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn ctx<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with `bytes` atomically and durably. The temp file is
/// `.<name>.tmp` next to it; a stale one from a crash is overwritten. Callers that
/// may race on the same `path` must serialise (the embedded store holds its lock).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(ctx("create temp file", &tmp))?;
        f.write_all(bytes).map_err(ctx("write temp file", &tmp))?;
        f.sync_all().map_err(ctx("fsync temp file", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(ctx("rename temp file onto", path))?;
    sync_dir(&dir)
}

/// fsyncs a directory so a rename or unlink in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ctx("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        write_atomically(&p, b"one").expect("first write");
        write_atomically(&p, b"two").expect("second write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn error_names_the_path() {
        let p = Path::new("/nonexistent-aksnt-dir/x.json");
        let e = write_atomically(p, b"x").unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent-aksnt-dir/.x.json.tmp"),
            "{e}"
        );
    }
}
