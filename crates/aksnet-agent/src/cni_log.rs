//! The plugin's calls, counted from its per-call log (issue 14, item 3).
//!
//! `aksnet-cni` is a new process for every call and keeps no counters, but it appends one JSON
//! line per call (verb, result, CNI error code, duration; crates/aksnet-cni/src/verblog.rs) to
//! a bounded log that it rotates to `<file>.1`. The agent follows that file like `tail -F`:
//! it remembers (device, inode, offset), reads only what was appended since, finishes the
//! rotated `<file>.1` when the inode changed, and starts over when the file shrank. So the
//! counts cost nothing on the plugin's path (no socket, no lock, no extra write), and survive
//! a plugin crash at any point (the line is one `write(2)`).
//!
//! Counting starts at the file's end when the agent starts (Prometheus counters start at
//! zero with the process; calls made while no agent ran are in the log, not in the counts).
//! Lost: calls of a file that was rotated twice between two polls (more than the file's
//! `logMaxBytes` of calls within one poll interval), and all calls when the log is off.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The plugin's default `logFile` (crates/aksnet-cni/src/verblog.rs `DEFAULT_LOG_FILE`; a
/// test below keeps the two equal).
pub const DEFAULT_CNI_LOG_FILE: &str = "/var/log/aksnet/aksnet-cni.log";

/// At most this much is read per poll; the rest is read by the next polls.
const MAX_READ: u64 = 16 << 20;
/// A line longer than this is not one of the plugin's; it is skipped and counted unparsed.
const MAX_LINE: usize = 64 << 10;
/// Distinct error codes kept as labels; others are counted under `code="other"`.
const MAX_CODES: usize = 64;

/// What is counted, by label values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallCounts {
    /// (verb, result) → calls.
    pub calls: BTreeMap<(String, String), u64>,
    /// (verb, code) → failed calls.
    pub failures: BTreeMap<(String, String), u64>,
    /// verb → (seconds, calls) of the calls' `durationMs`.
    pub durations: BTreeMap<String, (f64, u64)>,
    /// Addresses handed out by successful ADDs.
    pub allocated_addresses: u64,
    /// Lines that are not a call record.
    pub unparsed_lines: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    verb: Option<String>,
    result: Option<String>,
    code: Option<u64>,
    duration_ms: Option<f64>,
    #[serde(default)]
    addresses: Vec<serde_json::Value>,
}

/// The verbs of the CNI spec (and `other`, so a hostile line cannot add label values).
fn verb_label(v: Option<&str>) -> &'static str {
    match v {
        Some("ADD") => "ADD",
        Some("CHECK") => "CHECK",
        Some("DEL") => "DEL",
        Some("GC") => "GC",
        Some("STATUS") => "STATUS",
        Some("VERSION") => "VERSION",
        _ => "other",
    }
}

impl CallCounts {
    /// Counts one line of the log (pure).
    pub fn count_line(&mut self, line: &[u8]) {
        let parsed = (line.len() <= MAX_LINE)
            .then(|| serde_json::from_slice::<Line>(line).ok())
            .flatten();
        let Some(l) = parsed else {
            self.unparsed_lines += 1;
            return;
        };
        let verb = verb_label(l.verb.as_deref());
        let result = match l.result.as_deref() {
            Some("ok") => "ok",
            Some("error") => "error",
            _ => {
                self.unparsed_lines += 1;
                return;
            }
        };
        *self.calls.entry((verb.into(), result.into())).or_default() += 1;
        if result == "error" {
            let mut code = l.code.map_or_else(|| "none".to_string(), |c| c.to_string());
            let codes: std::collections::BTreeSet<&String> =
                self.failures.keys().map(|(_, c)| c).collect();
            if !codes.contains(&code) && codes.len() >= MAX_CODES {
                code = "other".into();
            }
            *self.failures.entry((verb.into(), code)).or_default() += 1;
        } else if verb == "ADD" {
            self.allocated_addresses += l.addresses.len() as u64;
        }
        if let Some(ms) = l.duration_ms.filter(|d| d.is_finite() && *d >= 0.0) {
            let d = self.durations.entry(verb.into()).or_default();
            d.0 += ms / 1000.0;
            d.1 += 1;
        }
    }
}

/// Where the follower is in which file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    dev: u64,
    ino: u64,
    offset: u64,
}

/// Follows the plugin's log file.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    pos: Option<Position>,
    started: bool,
    partial: Vec<u8>,
    pub counts: CallCounts,
}

/// Opens a regular file without following a symlink (the log's directory is root's 0700,
/// but the agent should not read through a link planted there anyway) or blocking on a FIFO.
fn open_regular(path: &Path) -> Option<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

impl LogFollower {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LogFollower {
            path: path.into(),
            pos: None,
            started: false,
            partial: Vec::new(),
            counts: CallCounts::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".1");
        PathBuf::from(p)
    }

    /// Reads what was appended since the last poll and counts it.
    pub fn poll(&mut self) {
        let current = open_regular(&self.path);
        let cur_id = current
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino(), m.len()));
        if !self.started {
            // Start at the end: count calls from now on.
            self.started = true;
            self.pos = cur_id.map(|(dev, ino, len)| Position {
                dev,
                ino,
                offset: len,
            });
            return;
        }
        if let Some(old) = self.pos {
            if cur_id.map(|(d, i, _)| (d, i)) != Some((old.dev, old.ino)) {
                // Rotated (or removed): finish the old file if it is now `<file>.1`.
                if let Some(mut f) = open_regular(&self.rotated()) {
                    let same = f
                        .metadata()
                        .is_ok_and(|m| (m.dev(), m.ino()) == (old.dev, old.ino));
                    if same {
                        self.read_from(&mut f, old.offset);
                    }
                }
                self.partial.clear();
                self.pos = None;
            }
        }
        let (Some(mut f), Some((dev, ino, len))) = (current, cur_id) else {
            return;
        };
        let mut offset = self.pos.map_or(0, |p| p.offset);
        if len < offset {
            // Truncated in place (not how the plugin rotates, but an operator may): start over.
            offset = 0;
            self.partial.clear();
        }
        let end = self.read_from(&mut f, offset);
        self.pos = Some(Position {
            dev,
            ino,
            offset: end,
        });
    }

    /// Counts the complete lines from `offset` on; returns the offset read up to.
    fn read_from(&mut self, f: &mut File, offset: u64) -> u64 {
        if f.seek(SeekFrom::Start(offset)).is_err() {
            return offset;
        }
        let mut buf = Vec::new();
        let Ok(n) = f.take(MAX_READ).read_to_end(&mut buf) else {
            return offset;
        };
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(&buf);
        let mut lines = data.split(|b| *b == b'\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                // No newline yet: the plugin's write may be in progress.
                if line.len() <= MAX_LINE {
                    self.partial = line.to_vec();
                } else {
                    self.counts.unparsed_lines += 1;
                }
            } else if !line.is_empty() {
                self.counts.count_line(line);
            }
        }
        offset + n as u64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    const ADD_OK: &str = r#"{"time":"2026-12-02T20:31:00.123Z","verb":"ADD","network":"kubenet","container":"c1","ifname":"eth0","pod":"default/web-0","durationMs":2.5,"addresses":["10.244.1.5/24"],"result":"ok"}"#;
    const ADD_FULL: &str = r#"{"time":"2026-12-02T20:31:01.000Z","verb":"ADD","network":"kubenet","container":"c2","ifname":"eth0","durationMs":1.5,"result":"error","code":110,"error":"node has no free pod address"}"#;

    fn append(p: &Path, s: &str) {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn default_path_is_the_plugins() {
        let plugin = include_str!("../../aksnet-cni/src/verblog.rs");
        let decl = format!("pub const DEFAULT_LOG_FILE: &str = \"{DEFAULT_CNI_LOG_FILE}\";");
        assert!(
            plugin.contains(&decl),
            "aksnet-cni's default log file differs from {DEFAULT_CNI_LOG_FILE}"
        );
    }

    #[test]
    fn counts_lines_by_verb_result_and_code() {
        let mut c = CallCounts::default();
        c.count_line(ADD_OK.as_bytes());
        c.count_line(ADD_FULL.as_bytes());
        c.count_line(br#"{"verb":"DROP TABLE","result":"ok"}"#);
        c.count_line(b"not json");
        assert_eq!(c.calls[&("ADD".into(), "ok".into())], 1);
        assert_eq!(c.calls[&("other".into(), "ok".into())], 1);
        assert_eq!(c.failures[&("ADD".into(), "110".into())], 1);
        assert_eq!(c.allocated_addresses, 1);
        assert_eq!(c.unparsed_lines, 1);
        assert_eq!(c.durations["ADD"], (0.004, 2));
    }

    #[test]
    fn error_codes_are_bounded() {
        let mut c = CallCounts::default();
        for code in 0..100 {
            c.count_line(format!(r#"{{"verb":"ADD","result":"error","code":{code}}}"#).as_bytes());
        }
        let codes: std::collections::BTreeSet<_> =
            c.failures.keys().map(|(_, c)| c.clone()).collect();
        assert_eq!(codes.len(), MAX_CODES + 1);
        assert_eq!(
            c.failures[&("ADD".into(), "other".into())],
            100 - MAX_CODES as u64
        );
    }

    #[test]
    fn follows_appends_partial_lines_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("aksnet-cni.log");
        append(&p, &format!("{ADD_OK}\n"));
        let mut f = LogFollower::new(&p);
        f.poll();
        assert_eq!(
            f.counts,
            CallCounts::default(),
            "history before the start is not counted"
        );
        append(&p, &format!("{ADD_OK}\n{}", &ADD_FULL[..20]));
        f.poll();
        assert_eq!(f.counts.calls.values().sum::<u64>(), 1, "half a line waits");
        append(&p, &format!("{}\n", &ADD_FULL[20..]));
        f.poll();
        assert_eq!(f.counts.calls.values().sum::<u64>(), 2);
        // The plugin rotates: write, then rename to .1; the rest of the old file is counted.
        append(&p, &format!("{ADD_OK}\n"));
        std::fs::rename(&p, dir.path().join("aksnet-cni.log.1")).unwrap();
        append(&p, &format!("{ADD_OK}\n"));
        f.poll();
        assert_eq!(f.counts.calls[&("ADD".into(), "ok".into())], 3);
        // Truncated in place (an operator's `: > file`): seen as a shorter file, read from 0.
        std::fs::write(&p, "").unwrap();
        f.poll();
        append(&p, &format!("{ADD_FULL}\n"));
        f.poll();
        assert_eq!(
            f.counts.failures[&("ADD".into(), "110".into())],
            2,
            "truncated: read from 0"
        );
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        f.poll();
        assert_eq!(f.counts.unparsed_lines, 0, "a symlink is not followed");
    }
}
