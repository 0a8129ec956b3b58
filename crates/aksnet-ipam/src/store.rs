//! The node IPAM store: one JSON state file per network, changed only under an exclusive
//! flock and replaced atomically (issue 2, item 3; docs/prior-art.md#atomic-writes).
//!
//! # On-disk layout (format version 1)
//!
//! ```text
//! <stateDir>/                     state_dir(dataDir): /run/aksnet (tmpfs) for the default
//!                                 dataDir /var/lib/aksnet, else dataDir itself
//!   <network>.json                the state of one network (this module)
//!   <network>.lock                empty; flock'ed around every read-modify-write; never removed
//!   .<network>.json.<pid>.<n>.tmp the next state while it is written; renamed over
//!                                 <network>.json (aksnet_fs::write_atomic_volatile; a
//!                                 writer killed mid-write leaves it behind, ignored)
//!   <network>.attachments/        the attachment locks (crate::attachment_lock)
//! <dataDir>/node-pool.json        the node's pool (aksnet_core::pool), not ours
//! ```
//!
//! A state file an earlier aksnet left in `<dataDir>` is read while `<stateDir>` has none,
//! and removed by the first transaction that writes the state in `<stateDir>`.
//!
//! The directory is created 0700 and the files 0600 whatever the umask; a symlink at the
//! state, temp or lock path is never followed (`aksnet-fs`, docs/architecture.md "Files
//! and modes").
//!
//! `<network>.json`:
//!
//! ```json
//! {
//!   "kind": "aksnet-ipam-state",
//!   "version": 1,
//!   "network": "kubenet",
//!   "cursors": [ { "set": 0, "lastReserved": "10.244.1.7" } ],
//!   "bootId": "d5b243ea-d46f-4ed3-b096-68c81d6f2516",
//!   "recentlyReleased": [ "10.244.1.5" ],
//!   "allocations": [
//!     { "containerId": "3f2a...", "ifname": "eth0",
//!       "ips": [ { "ip": "10.244.1.7", "set": 0 } ],
//!       "podNamespace": "default", "podName": "web-0", "createdUnix": 1767225600 }
//!   ]
//! }
//! ```
//!
//! - `cursors`: per range set, the address reserved last (round-robin restarts after it).
//!   It lives in the same file as the reservations, so both change in one rename (unlike
//!   host-local's separate `last_reserved_ip.N`, docs/prior-art.md#host-local).
//! - `bootId`: the boot that wrote the file; in another boot its allocations are void.
//!   Absent when `/proc/sys/kernel/random/boot_id` cannot be read (then never void).
//! - `recentlyReleased`: free addresses that round-robin skips while anything else is
//!   free (`aksnet_core::allocator::RECENTLY_RELEASED_MAX`).
//! - `allocations`: one record per attachment (CNI_CONTAINERID, CNI_IFNAME), ordered by
//!   key; loading rebuilds the ip -> attachment index and rejects an address held twice.
//!
//! # Crash safety
//!
//! A transaction is: flock the lock file, read the state file (missing = empty), run the
//! caller's closure on the in-memory state, and, only if it succeeded and changed
//! something, write a temp file and rename it over `<network>.json`; then unlock (closing
//! the fd). rename(2) is atomic, so at every instant the state file is either the old or
//! the new complete state, whichever process is killed when (its writes are in the page
//! cache); a kill before the rename loses only the uncommitted transaction (its caller
//! never got an answer, and the runtime retries ADD or sends DEL).
//!
//! There is no fsync. The allocations describe pod network namespaces, and a reboot (the
//! only thing that loses the page cache) ends all of them, so the file records the boot
//! that wrote it (`bootId`) and a file of another boot holds no allocations: after a
//! power loss the node starts with every address free, where a durable file would hold
//! addresses for pods that no longer exist (docs/architecture.md, "Crash and reboot"). A file
//! that fails to parse is reported with its path and position and never rewritten,
//! unless it was last written before this boot (a torn write of a machine crash).
//!
//! The lock is held only for this read-modify-write (about a millisecond): the plugin
//! does its netlink work after `transact` returns (docs/architecture.md#quality-bars: no node-wide
//! lock across netlink work).

use std::fs::{self, File};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aksnet_core::allocator::{AllocationRecord, Allocator, CursorRecord};
use aksnet_core::pool::NODE_POOL_FILE;
use serde::Deserialize;

use crate::boot;
use crate::error::IpamError;

/// Where the node's durable files live unless the config says otherwise (the node pool).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/aksnet";

/// Where the attachments' state of the default data directory lives: `/run` is a tmpfs
/// emptied at every boot (file-hierarchy(7), "/run"; systemd mounts it so), so a reboot,
/// which ends every pod network namespace, also ends their allocations, and writing it
/// costs no disk block (docs/architecture.md, "Crash and reboot").
pub const DEFAULT_RUN_DIR: &str = "/run/aksnet";

/// The directory that holds the attachments' state (`<network>.json`, its lock and the
/// attachment locks) of the node whose data directory is `data_dir`: the one place that
/// knows it. The default data directory keeps its state in [`DEFAULT_RUN_DIR`]; any
/// other data directory (tests, the lab, a node configured by hand) keeps it beside the
/// node pool, where the boot id voids it after a reboot. Every reader (the plugin,
/// `aksnet node leave`, the agent, the lab) reaches the state through [`IpamStore::open`],
/// [`networks_in`] or [`crate::allocated_addresses`], which all call this.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    if data_dir == Path::new(DEFAULT_DATA_DIR) {
        PathBuf::from(DEFAULT_RUN_DIR)
    } else {
        data_dir.to_path_buf()
    }
}

/// The `kind` field of every state file.
pub const STATE_KIND: &str = "aksnet-ipam-state";

/// Current state file format version.
pub const STATE_VERSION: u32 = 1;

/// How long `transact`/`snapshot` wait for another process's transaction. A transaction
/// takes milliseconds; waiting this long means something is wrong, and the plugin
/// answers CNI code 11 so the runtime retries.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

const STATE_SUFFIX: &str = ".json";
const LOCK_SUFFIX: &str = ".lock";

/// The largest state file read: a /16 of single-address allocations is about 10 MB.
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// The file as stored. Field order is the order written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateFile {
    kind: String,
    version: u32,
    network: String,
    #[serde(default)]
    cursors: Vec<CursorRecord>,
    #[serde(default)]
    recently_released: Vec<IpAddr>,
    #[serde(default)]
    allocations: Vec<AllocationRecord>,
    /// The boot of the node that wrote the file (`/proc/sys/kernel/random/boot_id`). Its
    /// allocations are void in any other boot: a reboot ended every network namespace
    /// they were made for (docs/architecture.md, "Crash and reboot").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_id: Option<String>,
}

/// Read when the full parse fails, so a newer format gets a version error rather than
/// a field error.
#[derive(Debug, Deserialize)]
struct Header {
    kind: Option<String>,
    version: Option<u32>,
}

/// The IPAM state of one network in one data directory.
#[derive(Debug, Clone)]
pub struct IpamStore {
    /// The directory of the state ([`state_dir`] of the data directory).
    state_dir: PathBuf,
    network: String,
    state_path: PathBuf,
    lock_path: PathBuf,
    /// The state file where an earlier aksnet kept it (the data directory), when that
    /// differs from `state_path`: read while `state_path` does not exist yet, and
    /// removed by the first write to `state_path` (an upgrade in place).
    legacy_path: Option<PathBuf>,
    lock_timeout: Duration,
}

/// Checks a network name before it becomes a file name: the CNI spec's character set
/// (alphanumerics, `-`, `_`, `.`), no leading dot (hidden/temp files, `..`), and not the
/// node pool's file name.
pub fn validate_network_name(name: &str) -> Result<(), IpamError> {
    let bad = |reason| {
        Err(IpamError::InvalidNetwork {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed (CNI spec)");
    }
    if format!("{name}{STATE_SUFFIX}") == NODE_POOL_FILE {
        return bad("reserved: its state file would be the node pool file");
    }
    Ok(())
}

impl IpamStore {
    /// Opens the store of `network` of the node whose data directory is `data_dir`; the
    /// state lives in [`state_dir`]`(data_dir)`. Creates that directory (0700) and the
    /// lock file (0600). Refuses a directory or lock file that is a symlink, and a
    /// directory writable by others (`aksnet_fs::ensure_private_dir`). Does not read the
    /// state.
    pub fn open(data_dir: &Path, network: &str) -> Result<Self, IpamError> {
        let dir = state_dir(data_dir);
        let legacy = (dir != data_dir).then(|| data_dir.join(format!("{network}{STATE_SUFFIX}")));
        Self::open_in(&dir, legacy, network)
    }

    /// Opens the store of `network` whose state is in `dir`, reading `legacy` while
    /// `dir` has none ([`IpamStore::open`]; tests give both directories explicitly).
    pub fn open_in(dir: &Path, legacy: Option<PathBuf>, network: &str) -> Result<Self, IpamError> {
        validate_network_name(network)?;
        aksnet_fs::ensure_private_dir(dir)?;
        let store = IpamStore {
            state_dir: dir.to_path_buf(),
            network: network.to_string(),
            state_path: dir.join(format!("{network}{STATE_SUFFIX}")),
            lock_path: dir.join(format!("{network}{LOCK_SUFFIX}")),
            legacy_path: legacy,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        };
        store.open_lock_file()?;
        Ok(store)
    }

    /// Changes how long to wait for the lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    pub fn network(&self) -> &str {
        &self.network
    }
    /// The directory the state is in ([`state_dir`] of the data directory).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Runs one read-modify-write transaction under the exclusive lock. The closure's
    /// changes are written (atomically) only if it returns `Ok` and changed something;
    /// on `Err` nothing is written. Do no netlink work inside the closure.
    pub fn transact<R, E>(&self, f: impl FnOnce(&mut Allocator) -> Result<R, E>) -> Result<R, E>
    where
        E: From<IpamError>,
    {
        // A fresh open file description per transaction: flock excludes per description,
        // so two threads sharing one fd would not exclude each other.
        let lock = self.open_lock_file()?;
        self.acquire(&lock, false)?;
        let (mut state, legacy) = self.read_state()?;
        let before = state.revision();
        let out = f(&mut state)?;
        if state.revision() != before || legacy {
            self.write_state(&state)?;
            if legacy {
                self.remove_legacy()?;
            }
        }
        // Closing `lock` releases the flock.
        drop(lock);
        Ok(out)
    }

    /// The current state, read under the shared lock (consistent with writers).
    pub fn snapshot(&self) -> Result<Allocator, IpamError> {
        let lock = self.open_lock_file()?;
        self.acquire(&lock, true)?;
        Ok(self.read_state()?.0)
    }

    fn open_lock_file(&self) -> Result<File, IpamError> {
        Ok(aksnet_fs::open_lock_file(&self.lock_path)?)
    }

    fn acquire(&self, lock: &File, shared: bool) -> Result<(), IpamError> {
        crate::attachment_lock::lock_with_deadline(lock, &self.lock_path, shared, self.lock_timeout)
    }

    /// The state, and whether it came from the legacy path (then the next write moves
    /// it).
    fn read_state(&self) -> Result<(Allocator, bool), IpamError> {
        match self.read_state_at(&self.state_path)? {
            Some(state) => Ok((state, false)),
            None => match &self.legacy_path {
                Some(legacy) => match self.read_state_at(legacy)? {
                    Some(state) => Ok((state, true)),
                    None => Ok((Allocator::new(), false)),
                },
                None => Ok((Allocator::new(), false)),
            },
        }
    }

    /// The state in `path`; `None` when there is no file.
    fn read_state_at(&self, path: &Path) -> Result<Option<Allocator>, IpamError> {
        let bytes = match aksnet_fs::read_regular_capped(path, MAX_STATE_BYTES) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match parse_state(path, &bytes, Some(&self.network), boot::id()) {
            // Only a crash of the whole machine can tear a file that is replaced by
            // rename (the page cache keeps a killed process's writes); one last written
            // before this boot is such a leftover, and its allocations are void anyway.
            Err(IpamError::Corrupt { .. }) if boot::written_before_boot(path) => {
                tracing::warn!(path = %path.display(),
                    "unreadable IPAM state from before this boot: starting empty");
                Ok(Some(Allocator::new()))
            }
            other => other.map(Some),
        }
    }

    /// After the state moved to `state_path`: the legacy file goes. Not durably: should
    /// a reboot bring it back, its `bootId` voids its allocations.
    fn remove_legacy(&self) -> Result<(), IpamError> {
        let Some(legacy) = &self.legacy_path else {
            return Ok(());
        };
        match fs::remove_file(legacy) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(IpamError::io("remove the moved IPAM state", legacy, e)),
        }
    }

    /// Writes the next state: temp file and rename, no fsync (`write_atomic_volatile`).
    /// The state is void after a reboot (`boot_id`), and a killed process cannot lose a
    /// rename, so an fsync would only make a power loss keep what the next boot discards.
    fn write_state(&self, state: &Allocator) -> Result<(), IpamError> {
        let bytes = render_state(&self.network, state, boot::id()).map_err(|e| {
            IpamError::io(
                "serialise IPAM state for",
                &self.state_path,
                io::Error::other(e),
            )
        })?;
        let name = format!("{}{STATE_SUFFIX}", self.network);
        Ok(aksnet_fs::write_atomic_volatile(
            &self.state_dir,
            &name,
            &bytes,
            aksnet_fs::PRIVATE_FILE_MODE,
        )?)
    }
}

/// Renders the state as the fields of [`StateFile`], in its order, with one allocation
/// per line: readable with `grep` and `jq`, and about half the size of pretty-printed
/// JSON. The records are serialised borrowed from the allocator
/// (`Allocator::record_views`): the file is written by every ADD and DEL, and copying
/// each record first cost as much as writing it.
fn render_state(
    network: &str,
    state: &Allocator,
    boot_id: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    let records = state.record_views();
    let mut out = Rendered(Vec::with_capacity(128 + 160 * records.len()));
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, STATE_KIND)?;
    out.extend_from_slice(b",\"version\":");
    serde_json::to_writer(&mut out, &STATE_VERSION)?;
    out.extend_from_slice(b",\"network\":");
    serde_json::to_writer(&mut out, network)?;
    out.extend_from_slice(b",\n\"cursors\":");
    serde_json::to_writer(&mut out, &state.cursors())?;
    if let Some(boot) = boot_id {
        out.extend_from_slice(b",\"bootId\":");
        serde_json::to_writer(&mut out, boot)?;
    }
    out.extend_from_slice(b",\n\"recentlyReleased\":");
    serde_json::to_writer(&mut out, &state.recently_released())?;
    out.extend_from_slice(b",\n\"allocations\":[");
    for (i, rec) in records.enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut out, &rec)?;
    }
    out.extend_from_slice(b"\n]}\n");
    Ok(out.0)
}

/// The state's bytes while they are rendered. serde_json hands its writer each record
/// in dozens of pieces of one to a few bytes (quotes, colons, commas, digits), and
/// `Vec::extend_from_slice` makes every piece a call to the C library's `memcpy`,
/// which in musl (what the plugin is linked with) costs far more than the copy; short
/// pieces are pushed byte by byte instead (docs/benchmarks.md, "IPAM state without
/// flatten").
struct Rendered(Vec<u8>);

impl Rendered {
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.len() <= 16 {
            self.0.reserve(bytes.len());
            for &b in bytes {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(bytes);
        }
    }
}

impl io::Write for Rendered {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Parses a state file; `expected_network` checks the `network` field.
fn parse_state(
    path: &Path,
    bytes: &[u8],
    expected_network: Option<&str>,
    this_boot: Option<&str>,
) -> Result<Allocator, IpamError> {
    let corrupt = |e: serde_json::Error| IpamError::Corrupt {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        source: e,
    };
    // One parse on the hot path; the header is parsed only to explain a failure, so a
    // file of another kind or a newer version gets that error rather than a field error.
    let file: Result<StateFile, serde_json::Error> = serde_json::from_slice(bytes);
    let (kind, version) = match &file {
        Ok(f) => (Some(f.kind.clone()), Some(f.version)),
        Err(_) => {
            let header: Header = serde_json::from_slice(bytes).map_err(corrupt)?;
            (header.kind, header.version)
        }
    };
    match kind.as_deref() {
        Some(STATE_KIND) => {}
        other => {
            return Err(IpamError::WrongKind {
                path: path.to_path_buf(),
                found: other.unwrap_or("(missing)").to_string(),
                expected: STATE_KIND,
            })
        }
    }
    let version = version.unwrap_or(0);
    if version != STATE_VERSION {
        return Err(IpamError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: STATE_VERSION,
        });
    }
    let file = file.map_err(corrupt)?;
    if let Some(expected) = expected_network {
        if file.network != expected {
            return Err(IpamError::WrongNetwork {
                path: path.to_path_buf(),
                found: file.network,
                expected: expected.to_string(),
            });
        }
    }
    // Allocations of another boot are void; the cursors still spread the next ones.
    let allocations = match (file.boot_id.as_deref(), this_boot) {
        (Some(then), Some(now)) if then != now => Vec::new(),
        _ => file.allocations,
    };
    Allocator::from_parts(allocations, file.cursors, file.recently_released).map_err(|e| {
        IpamError::Inconsistent {
            path: path.to_path_buf(),
            source: Box::new(e),
        }
    })
}

/// The network names whose state files belong to the node whose data directory is
/// `data_dir`: those in [`state_dir`]`(data_dir)`, and those an earlier aksnet left in
/// `data_dir` itself (lock, temp and the node pool file are not state files). A missing
/// directory has none.
pub fn networks_in(data_dir: &Path) -> Result<Vec<String>, IpamError> {
    let dir = state_dir(data_dir);
    networks_in_at(&dir, (dir != data_dir).then_some(data_dir))
}

/// The network names whose state files are in `dir`, and in `legacy` (the directory
/// where an earlier aksnet kept them, [`IpamStore::open_in`]).
pub fn networks_in_at(dir: &Path, legacy: Option<&Path>) -> Result<Vec<String>, IpamError> {
    let mut out = networks_in_dir(dir)?;
    if let Some(legacy) = legacy {
        // The data directory holds other JSON files too (the agent's status file is
        // `/var/lib/aksnet/agent-status.json` in deploy/): only IPAM states count.
        let old = networks_in_dir(legacy)?;
        out.extend(
            old.into_iter()
                .filter(|n| is_state_file(&legacy.join(format!("{n}{STATE_SUFFIX}")))),
        );
        out.sort();
        out.dedup();
    }
    Ok(out)
}

/// Whether `path` is an IPAM state file (its `kind`), read only to list an earlier
/// aksnet's states.
fn is_state_file(path: &Path) -> bool {
    aksnet_fs::read_regular_capped(path, MAX_STATE_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<Header>(&b).ok())
        .is_some_and(|h| h.kind.as_deref() == Some(STATE_KIND))
}

fn networks_in_dir(data_dir: &Path) -> Result<Vec<String>, IpamError> {
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IpamError::io("list IPAM data directory", data_dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IpamError::io("list IPAM data directory", data_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == NODE_POOL_FILE || name.starts_with('.') {
            continue;
        }
        let Some(network) = name.strip_suffix(STATE_SUFFIX) else {
            continue;
        };
        if validate_network_name(network).is_err() {
            continue;
        }
        let is_file = entry
            .file_type()
            .map_err(|e| IpamError::io("stat", entry.path(), e))?
            .is_file();
        if is_file {
            out.push(network.to_string());
        }
    }
    out.sort();
    Ok(out)
}
