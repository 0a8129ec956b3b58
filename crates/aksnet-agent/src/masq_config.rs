//! ip-masq-agent configuration files, read as ip-masq-agent-v2 reads them
//! (docs/azure.md#ip-masq-agent; Azure/ip-masq-agent-v2 `cmd/ip-masq-agent-v2/ip-masq-agent.go`):
//!
//! - every regular file (symlinks followed, as ConfigMap volumes use them) in the config
//!   directory whose name starts with `ip-masq`, YAML or JSON (YAML parses both); a
//!   directory, FIFO, socket or device of such a name is skipped and reported (file and
//!   reason, in the agent's status), never opened in a way that could block; a file over
//!   [`MAX_CONFIG_BYTES`] is an error;
//! - keys `nonMasqueradeCIDRs`, `masqLinkLocal`, `masqLinkLocalIPv6`, and upstream
//!   kubernetes-sigs/ip-masq-agent's `resyncInterval` and `cidrLimit`; any other key is an error;
//! - at most 64 CIDRs per file, or the file's own `cidrLimit`;
//! - each CIDR must be aligned to its block ("not aligned to a CIDR block" in v2); IPv6 CIDRs
//!   only with IPv6 enabled;
//! - fragments are merged: CIDR lists unioned (duplicates removed), booleans OR'ed.
//!
//! Everything but [`load_dir`] is pure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aksnet_fs::{read_regular_capped_following, FileKind, FsError};
use ipnet::IpNet;
use serde::Serialize;
use serde_norway::Value;

/// v2's per-file CIDR limit (upstream `cidrLimit` default).
pub const DEFAULT_CIDR_LIMIT: usize = 64;

/// The largest config file read: a ConfigMap holds at most 1 MiB (Kubernetes docs,
/// "ConfigMaps": "The data stored in a ConfigMap cannot exceed 1 MiB").
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The prefix of the file names v2 reads.
pub const FILE_PREFIX: &str = "ip-masq";

pub const KEY_NON_MASQ: &str = "nonMasqueradeCIDRs";
pub const KEY_MASQ_LINK_LOCAL: &str = "masqLinkLocal";
pub const KEY_MASQ_LINK_LOCAL_V6: &str = "masqLinkLocalIPv6";
pub const KEY_RESYNC: &str = "resyncInterval";
pub const KEY_CIDR_LIMIT: &str = "cidrLimit";

/// One file's content, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasqFragment {
    /// Where it came from (a path, or a label like `defaults(kubenet)`).
    pub source: String,
    pub non_masquerade_cidrs: Vec<IpNet>,
    pub masq_link_local: bool,
    pub masq_link_local_ipv6: bool,
    pub resync_interval: Option<Duration>,
}

/// The merged configuration the ruleset is compiled from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasqConfig {
    /// Sorted, duplicates removed.
    pub non_masquerade_cidrs: Vec<IpNet>,
    pub masq_link_local: bool,
    pub masq_link_local_ipv6: bool,
    /// The shortest `resyncInterval` any file asked for.
    pub resync_interval: Option<Duration>,
    /// The fragments merged, in order.
    pub sources: Vec<String>,
    /// `ip-masq*` entries of the config directory that were not read, and why.
    pub skipped: Vec<SkippedFile>,
}

/// An `ip-masq*` entry of the config directory that is not a regular file (after
/// following symlinks): skipped, as ip-masq-agent-v2 skips it, but reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    pub file: String,
    pub reason: String,
}

/// What [`load_dir_report`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirContents {
    pub fragments: Vec<MasqFragment>,
    pub skipped: Vec<SkippedFile>,
}

/// A config error always names the file, and the key and value when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Open or read refused: a file over [`MAX_CONFIG_BYTES`], or one that changed kind
    /// between the listing and the read.
    #[error("{0}")]
    Unreadable(#[source] FsError),
    #[error("{file}: cannot list the config directory: {source}")]
    ReadDir {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: malformed YAML/JSON: {detail}")]
    Malformed { file: String, detail: String },
    #[error("{file}: the top level must be a mapping of keys, found {value}")]
    NotAMapping { file: String, value: String },
    #[error("{file}: unknown key {key:?} (value {value}); known keys: nonMasqueradeCIDRs, masqLinkLocal, masqLinkLocalIPv6, resyncInterval, cidrLimit")]
    UnknownKey {
        file: String,
        key: String,
        value: String,
    },
    #[error("{file}: key {key}: value {value} is not {expected}")]
    WrongType {
        file: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{file}: key {key}: value {value:?} is not a CIDR: {reason}")]
    BadCidr {
        file: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error("{file}: key {key}: CIDR {value:?} is not aligned to a CIDR block (did you mean {aligned}?)")]
    NotAligned {
        file: String,
        key: String,
        value: String,
        aligned: String,
    },
    #[error(
        "{file}: key {key}: IPv6 CIDR {value:?} given but IPv6 is not enabled (--enable-ipv6)"
    )]
    Ipv6Disabled {
        file: String,
        key: String,
        value: String,
    },
    #[error("{file}: key {key}: {count} CIDRs exceed the limit of {limit} per file (cidrLimit)")]
    TooManyCidrs {
        file: String,
        key: String,
        count: usize,
        limit: usize,
    },
    #[error("{file}: key {key}: value {value:?} is not a duration like \"60s\" or \"1m30s\"")]
    BadDuration {
        file: String,
        key: String,
        value: String,
    },
}

/// Every error found, across all files (so one run reports them all).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Short, single-line rendering of a YAML value for error messages.
fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => serde_json::to_string(other)
            .unwrap_or_else(|_| format!("{other:?}"))
            .replace('\n', " "),
    };
    if s.len() > 120 {
        let mut cut = 117;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

/// Parses one file's text. `file` is only used in errors and as the fragment's source.
pub fn parse_fragment(
    file: &str,
    text: &str,
    enable_ipv6: bool,
) -> Result<MasqFragment, ConfigError> {
    let mut frag = MasqFragment {
        source: file.to_string(),
        ..MasqFragment::default()
    };
    let Some(map) = document(file, text)? else {
        return Ok(frag);
    };
    let mut limit = DEFAULT_CIDR_LIMIT;
    let mut cidrs: Option<&Vec<Value>> = None;
    for (k, v) in &map {
        let Value::String(key) = k else {
            return Err(unknown_key(file, show(k), v));
        };
        match key.as_str() {
            KEY_NON_MASQ => match v {
                Value::Sequence(s) => cidrs = Some(s),
                Value::Null => {}
                _ => return Err(wrong_type(file, key, v, "a list of CIDR strings")),
            },
            KEY_CIDR_LIMIT => {
                limit = v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| wrong_type(file, key, v, "a non-negative integer"))?;
            }
            _ => set_scalar(&mut frag, file, key, v)?,
        }
    }
    if let Some(list) = cidrs {
        frag.non_masquerade_cidrs = parse_cidr_list(file, list, limit, enable_ipv6)?;
    }
    Ok(frag)
}

/// The file's YAML document: a mapping, or `None` for an empty file (v2 unmarshals it to
/// zero values).
fn document(file: &str, text: &str) -> Result<Option<serde_norway::Mapping>, ConfigError> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError::Malformed {
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    match doc {
        Value::Null => Ok(None),
        Value::Mapping(m) => Ok(Some(m)),
        other => Err(ConfigError::NotAMapping {
            file: file.to_string(),
            value: show(&other),
        }),
    }
}

/// One of the scalar keys (link-local masquerading, resync interval); any other key is
/// unknown, which v2 refuses too.
fn set_scalar(
    frag: &mut MasqFragment,
    file: &str,
    key: &str,
    v: &Value,
) -> Result<(), ConfigError> {
    let flag = || {
        v.as_bool()
            .ok_or_else(|| wrong_type(file, key, v, "true or false"))
    };
    match key {
        KEY_MASQ_LINK_LOCAL => frag.masq_link_local = flag()?,
        KEY_MASQ_LINK_LOCAL_V6 => frag.masq_link_local_ipv6 = flag()?,
        KEY_RESYNC => {
            let s = v
                .as_str()
                .ok_or_else(|| wrong_type(file, key, v, "a duration string like \"60s\""))?;
            let d = parse_go_duration(s).ok_or_else(|| ConfigError::BadDuration {
                file: file.to_string(),
                key: key.to_string(),
                value: s.to_string(),
            })?;
            frag.resync_interval = Some(d);
        }
        _ => return Err(unknown_key(file, key.to_string(), v)),
    }
    Ok(())
}

/// `nonMasqueradeCIDRs`: at most `limit` entries, each an aligned CIDR string.
fn parse_cidr_list(
    file: &str,
    list: &[Value],
    limit: usize,
    enable_ipv6: bool,
) -> Result<Vec<IpNet>, ConfigError> {
    if list.len() > limit {
        return Err(ConfigError::TooManyCidrs {
            file: file.to_string(),
            key: KEY_NON_MASQ.to_string(),
            count: list.len(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let key = format!("{KEY_NON_MASQ}[{i}]");
        let s = item
            .as_str()
            .ok_or_else(|| wrong_type(file, &key, item, "a CIDR string"))?;
        out.push(parse_aligned_cidr(file, &key, s, enable_ipv6)?);
    }
    Ok(out)
}

fn wrong_type(file: &str, key: &str, v: &Value, expected: &'static str) -> ConfigError {
    ConfigError::WrongType {
        file: file.to_string(),
        key: key.to_string(),
        value: show(v),
        expected,
    }
}

fn unknown_key(file: &str, key: String, v: &Value) -> ConfigError {
    ConfigError::UnknownKey {
        file: file.to_string(),
        key,
        value: show(v),
    }
}

/// A CIDR as v2 accepts it: `addr/len`, host bits zero, IPv6 only when enabled.
pub fn parse_aligned_cidr(
    file: &str,
    key: &str,
    s: &str,
    enable_ipv6: bool,
) -> Result<IpNet, ConfigError> {
    let net: IpNet = s
        .trim()
        .parse()
        .map_err(|e: ipnet::AddrParseError| ConfigError::BadCidr {
            file: file.to_string(),
            key: key.to_string(),
            value: s.to_string(),
            reason: e.to_string(),
        })?;
    if net.trunc() != net {
        return Err(ConfigError::NotAligned {
            file: file.to_string(),
            key: key.to_string(),
            value: s.to_string(),
            aligned: net.trunc().to_string(),
        });
    }
    if matches!(net, IpNet::V6(_)) && !enable_ipv6 {
        return Err(ConfigError::Ipv6Disabled {
            file: file.to_string(),
            key: key.to_string(),
            value: s.to_string(),
        });
    }
    Ok(net)
}

/// Go's `time.ParseDuration` for the units a resync interval uses: a sequence of
/// `<number><unit>` with units h, m, s, ms (e.g. "60s", "1m30s", "1.5m"). Zero is refused.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    (total > 0.0 && total.is_finite() && total < 1e9).then(|| Duration::from_secs_f64(total))
}

/// v2's merge: CIDR lists unioned without duplicates, booleans OR'ed; the shortest resync.
pub fn merge(fragments: &[MasqFragment]) -> MasqConfig {
    let mut cidrs = BTreeSet::new();
    let mut out = MasqConfig::default();
    for f in fragments {
        cidrs.extend(f.non_masquerade_cidrs.iter().copied());
        out.masq_link_local |= f.masq_link_local;
        out.masq_link_local_ipv6 |= f.masq_link_local_ipv6;
        out.resync_interval = match (out.resync_interval, f.resync_interval) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.sources.push(f.source.clone());
    }
    out.non_masquerade_cidrs = cidrs.into_iter().collect();
    out
}

/// Whether v2 reads this directory entry name.
pub fn is_config_file_name(name: &str) -> bool {
    name.starts_with(FILE_PREFIX)
}

/// Reads every `ip-masq*` file of `dir` (sorted by name). A missing directory means no files.
/// Returns all errors found, not just the first.
pub fn load_dir(dir: &Path, enable_ipv6: bool) -> Result<Vec<MasqFragment>, ConfigErrors> {
    load_dir_report(dir, enable_ipv6).map(|c| c.fragments)
}

/// [`load_dir`], plus the `ip-masq*` entries skipped because they are not regular files.
pub fn load_dir_report(dir: &Path, enable_ipv6: bool) -> Result<DirContents, ConfigErrors> {
    let (paths, mut errors) = list_config_paths(dir)?;
    let mut out = DirContents::default();
    for path in paths {
        // metadata() follows symlinks: ConfigMap volumes link ip-masq-agent -> ..data/ip-masq-agent.
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => {
                let kind = FileKind::from_mode(std::os::unix::fs::MetadataExt::mode(&m));
                out.skipped.push(SkippedFile {
                    file: path.display().to_string(),
                    reason: format!("a {kind}, not a regular file"),
                });
                continue;
            }
            Ok(_) => {}
            Err(source) => {
                errors.push(ConfigError::Read { file: path, source });
                continue;
            }
        }
        let text = match read_regular_capped_following(&path, MAX_CONFIG_BYTES) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                errors.push(ConfigError::Unreadable(e));
                continue;
            }
        };
        match parse_fragment(&path.display().to_string(), &text, enable_ipv6) {
            Ok(f) => out.fragments.push(f),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The `ip-masq*` entries of `dir`, sorted, and the listing errors.
fn list_config_paths(dir: &Path) -> Result<(Vec<PathBuf>, Vec<ConfigError>), ConfigErrors> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(ConfigErrors(vec![ConfigError::ReadDir {
                file: dir.to_path_buf(),
                source,
            }]))
        }
    };
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                if is_config_file_name(&e.file_name().to_string_lossy()) {
                    paths.push(e.path());
                }
            }
            Err(source) => errors.push(ConfigError::ReadDir {
                file: dir.to_path_buf(),
                source,
            }),
        }
    }
    paths.sort();
    Ok((paths, errors))
}

/// What changes when a config file changes: names, sizes, modification times and inodes of the
/// `ip-masq*` entries (after following symlinks), and the directory's own mtime. Polled by the
/// daemon; cheap and needs no inotify.
pub fn dir_fingerprint(dir: &Path) -> Vec<(String, u64, i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    if let Ok(m) = std::fs::metadata(dir) {
        out.push((String::from("."), m.len(), mtime_ns(&m), m.ino()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_config_file_name(&name) {
                match std::fs::metadata(e.path()) {
                    Ok(m) => out.push((name, m.len(), mtime_ns(&m), m.ino())),
                    Err(_) => out.push((name, 0, 0, 0)),
                }
            }
        }
    }
    out.sort();
    out
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}
