//! What a lab created, on disk, so any later command (another process, after
//! a crash or a kill) can find and remove it.
//!
//! ```text
//! <state-dir>/lab.json        the LabSpec (written first, atomically)
//! <state-dir>/journal.jsonl   one JSON object per line, appended
//! <state-dir>/store/          the cluster store (aksnet node join --store)
//! <state-dir>/nodes/<node>/   each node's data dir (pool, IPAM state)
//! <state-dir>/ip-masq/        the agents' --config-dir
//! ```
//!
//! Every kernel object is journalled **before** it is created, so `down`
//! after an interrupted `up` finds it; removing an object that was never
//! created is a no-op. The journal is append-only (one `write` per line, the
//! file opened with O_APPEND): a kill can at worst leave a torn last line,
//! which readers skip.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::spec::LabSpec;

pub const SPEC_FILE: &str = "lab.json";
pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const UP_PID_FILE: &str = "up.pid";

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Entry {
    /// A named network namespace (about to be) created; `down` deletes it,
    /// and with it every link, address, route, neighbour and nftables table
    /// inside.
    #[serde(rename_all = "camelCase")]
    Netns { name: String },
    /// A node joined (and its address), recorded once known.
    #[serde(rename_all = "camelCase")]
    Node { name: String, ip: Ipv4Addr },
    /// A pod attached by `aksnet-cni` ADD, with the address it got.
    #[serde(rename_all = "camelCase")]
    Pod {
        node: String,
        name: String,
        ip: Ipv4Addr,
    },
    /// `lab up` finished.
    UpDone,
}

/// Paths of one lab's state.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn spec_file(&self) -> PathBuf {
        self.dir.join(SPEC_FILE)
    }
    pub fn journal_file(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node)
    }
    pub fn ip_masq_dir(&self) -> PathBuf {
        self.dir.join("ip-masq")
    }

    pub fn exists(&self) -> bool {
        self.dir.exists()
    }

    /// Creates the directory (0700: it holds the lab's store) and writes the
    /// spec; fails if it exists (one lab per prefix).
    pub fn create(&self, spec: &LabSpec) -> Result<()> {
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| LabError::io("create directory", parent, e))?;
        }
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                LabError::AlreadyUp {
                    prefix: spec.prefix.clone(),
                    dir: self.dir.clone(),
                }
            } else {
                LabError::io("create state directory", &self.dir, e)
            }
        })?;
        let text = serde_json::to_string_pretty(spec).map_err(|e| LabError::State {
            path: self.spec_file(),
            why: e.to_string(),
        })?;
        write_atomic(&self.spec_file(), text.as_bytes())?;
        write_atomic(
            &self.dir.join(UP_PID_FILE),
            std::process::id().to_string().as_bytes(),
        )
    }

    /// The pid of a `lab up` that is still running on this lab, if any: its
    /// pid file names a live process whose command line is `… lab up …`.
    pub fn running_up(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join(UP_PID_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if pid == std::process::id() {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_up = args.windows(2).any(|w| w[0] == b"lab" && w[1] == b"up");
        is_up.then_some(pid)
    }

    pub fn read_spec(&self) -> Result<LabSpec> {
        let path = self.spec_file();
        let text = std::fs::read_to_string(&path).map_err(|e| LabError::io("read", &path, e))?;
        serde_json::from_str(&text).map_err(|e| LabError::State {
            path,
            why: e.to_string(),
        })
    }

    /// The journal's entries in order; a torn (unparseable) last line is
    /// skipped, any other bad line is an error naming its number.
    pub fn read_journal(&self) -> Result<Vec<Entry>> {
        let path = self.journal_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LabError::io("read", &path, e)),
        };
        parse_journal(&text).map_err(|why| LabError::State { path, why })
    }

    pub fn open_journal(&self) -> Result<Journal> {
        let path = self.journal_file();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LabError::io("open journal", &path, e))?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }
}

/// Parses journal text (pure, for tests).
pub fn parse_journal(text: &str) -> std::result::Result<Vec<Entry>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            // The last line without a newline after it: a write a kill cut short.
            Err(_) if i + 1 == lines.len() => {}
            Err(e) => return Err(format!("line {}: {e}: {line:?}", i + 1)),
        }
    }
    Ok(out)
}

/// The append-only journal, shared by the threads of `lab up`.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn record(&self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(entry).map_err(|e| LabError::State {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(line.as_bytes())
            .map_err(|e| LabError::io("append to journal", &self.path, e))
    }
}

/// Replaces `path` atomically, mode 0600, never through a symlink (`aksnet_fs`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(aksnet_fs::write_atomic(
        dir,
        &name,
        bytes,
        aksnet_fs::PRIVATE_FILE_MODE,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::new(dir.path().join("aksnl-lab"));
        let spec = LabSpec::defaults("aksnl-", crate::Model::Kubenet);
        sd.create(&spec).unwrap();
        assert!(matches!(sd.create(&spec), Err(LabError::AlreadyUp { .. })));
        assert_eq!(sd.read_spec().unwrap(), spec);
        let j = sd.open_journal().unwrap();
        let entries = vec![
            Entry::Netns {
                name: "aksnl-vnet".into(),
            },
            Entry::Node {
                name: "aksnl-node-0".into(),
                ip: Ipv4Addr::new(10, 224, 0, 4),
            },
            Entry::Pod {
                node: "aksnl-node-0".into(),
                name: "p".into(),
                ip: Ipv4Addr::new(10, 244, 0, 2),
            },
            Entry::UpDone,
        ];
        for e in &entries {
            j.record(e).unwrap();
        }
        assert_eq!(sd.read_journal().unwrap(), entries);
        // A kill mid-write leaves a torn last line: skipped.
        let mut f = OpenOptions::new()
            .append(true)
            .open(sd.journal_file())
            .unwrap();
        f.write_all(b"{\"kind\":\"netns\",\"na").unwrap();
        assert_eq!(sd.read_journal().unwrap(), entries);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let err =
            parse_journal("{\"kind\":\"upDone\"}\nnonsense\n{\"kind\":\"upDone\"}\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
