//! Who applies the model: the [`NftBackend`] trait, the real [`NftCommand`] (drives the `nft`
//! binary, one `nft -f -` transaction per change) and the recording [`FakeNft`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::error::NftError;
use crate::listing::decode_table;
use crate::model::{validate_name, Family, Table};
use crate::render::{delete_script, replace_script};

/// Our table as it is in the kernel now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTable {
    pub table: Table,
    /// The kernel's handle of the table; it changes when the table is recreated.
    pub handle: Option<u64>,
}

/// Everything aksnet does to nftables. Every method touches only the one named table.
pub trait NftBackend {
    /// Our table as it is now, or `None` when it does not exist.
    fn get_table(&self, family: Family, name: &str) -> Result<Option<ListedTable>, NftError>;
    /// Creates or replaces the table atomically (one transaction).
    fn replace_table(&self, table: &Table) -> Result<(), NftError>;
    /// Deletes the table; `Ok(false)` when it did not exist.
    fn delete_table(&self, family: Family, name: &str) -> Result<bool, NftError>;
}

/// The real backend: runs `nft` (by default found on `PATH`) in the caller's network namespace.
#[derive(Debug, Clone)]
pub struct NftCommand {
    pub binary: PathBuf,
}

impl Default for NftCommand {
    fn default() -> Self {
        NftCommand {
            binary: PathBuf::from("nft"),
        }
    }
}

impl NftCommand {
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        NftCommand {
            binary: binary.into(),
        }
    }

    fn run(&self, op: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
        let spawn_err = |source| NftError::Spawn {
            op: op.to_string(),
            binary: self.binary.clone(),
            source,
        };
        let mut child = Command::new(&self.binary)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
            // Dropping the pipe closes nft's stdin so it starts the transaction.
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if !out.status.success() {
            return Err(NftError::Failed {
                op: op.to_string(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs one nft script as ONE transaction (`nft -f -`), e.g. a [`crate::filter`] update.
    pub fn run_script(&self, op: &str, script: &str) -> Result<(), NftError> {
        tracing::debug!(%op, script = %script, "nft -f -");
        self.run(op, &["-f", "-"], Some(script)).map(|_| ())
    }

    /// Whether our table exists (names only are listed, never other tables' contents).
    pub fn has_table(&self, family: Family, name: &str) -> Result<bool, NftError> {
        validate_name("table name", name)?;
        self.table_exists(family, name)
    }

    /// Whether the table exists, from `nft -j list tables` (names only: no rules or set
    /// elements of other tables are read, docs/prior-art.md#nftables). This avoids telling
    /// "no such table" apart from other failures by nft's stderr text.
    fn table_exists(&self, family: Family, name: &str) -> Result<bool, NftError> {
        let op = "list nftables tables";
        let json = self.run(op, &["-j", "list", "tables"], None)?;
        let root: Value = serde_json::from_str(&json).map_err(|e| NftError::Decode {
            op: op.to_string(),
            detail: e.to_string(),
        })?;
        let items = root
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| NftError::Decode {
                op: op.to_string(),
                detail: "no top-level \"nftables\" array".into(),
            })?;
        Ok(items.iter().filter_map(|i| i.get("table")).any(|t| {
            t.get("family").and_then(Value::as_str) == Some(family.as_str())
                && t.get("name").and_then(Value::as_str) == Some(name)
        }))
    }
}

impl NftBackend for NftCommand {
    fn get_table(&self, family: Family, name: &str) -> Result<Option<ListedTable>, NftError> {
        validate_name("table name", name)?;
        if !self.table_exists(family, name)? {
            return Ok(None);
        }
        let op = format!("list table {family} {name}");
        let json = self.run(&op, &["-j", "list", "table", family.as_str(), name], None)?;
        Ok(decode_table(&json, family, name)?.map(|d| ListedTable {
            table: d.table,
            handle: d.handle,
        }))
    }

    fn replace_table(&self, table: &Table) -> Result<(), NftError> {
        let script = replace_script(table)?;
        let op = format!("replace table {} {}", table.family, table.name);
        tracing::debug!(%op, script = %script, "nft -f -");
        self.run(&op, &["-f", "-"], Some(&script)).map(|_| ())
    }

    fn delete_table(&self, family: Family, name: &str) -> Result<bool, NftError> {
        let script = delete_script(family, name)?;
        let existed = self.table_exists(family, name)?;
        let op = format!("delete table {family} {name}");
        self.run(&op, &["-f", "-"], Some(&script))?;
        Ok(existed)
    }
}

/// A recording fake for unit tests of callers (knftables' `fake.go` idea): keeps tables in
/// memory, counts writes, and hands out a new handle on every replace like the kernel does.
#[derive(Debug, Default)]
pub struct FakeNft {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    tables: BTreeMap<(Family, String), ListedTable>,
    writes: usize,
    next_handle: u64,
    fail_next_apply: Option<String>,
}

impl FakeNft {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many replace/delete transactions ran.
    pub fn writes(&self) -> usize {
        self.state.lock().map(|s| s.writes).unwrap_or_default()
    }

    /// Makes the next replace fail like nft would, with this stderr.
    pub fn fail_next_apply(&self, stderr: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.fail_next_apply = Some(stderr.to_string());
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, FakeState>, NftError> {
        self.state.lock().map_err(|_| NftError::Failed {
            op: "fake nft".into(),
            status: "poisoned".into(),
            stderr: String::new(),
        })
    }
}

impl NftBackend for FakeNft {
    fn get_table(&self, family: Family, name: &str) -> Result<Option<ListedTable>, NftError> {
        Ok(self
            .lock()?
            .tables
            .get(&(family, name.to_string()))
            .cloned())
    }

    fn replace_table(&self, table: &Table) -> Result<(), NftError> {
        // Render for real so the fake refuses everything the real backend would refuse.
        replace_script(table)?;
        let mut s = self.lock()?;
        if let Some(stderr) = s.fail_next_apply.take() {
            return Err(NftError::Failed {
                op: format!("replace table {} {}", table.family, table.name),
                status: "exit status: 1".into(),
                stderr,
            });
        }
        s.writes += 1;
        s.next_handle += 1;
        let handle = Some(s.next_handle);
        s.tables.insert(
            (table.family, table.name.clone()),
            ListedTable {
                table: table.clone(),
                handle,
            },
        );
        Ok(())
    }

    fn delete_table(&self, family: Family, name: &str) -> Result<bool, NftError> {
        delete_script(family, name)?;
        let mut s = self.lock()?;
        s.writes += 1;
        Ok(s.tables.remove(&(family, name.to_string())).is_some())
    }
}
