//! Reconciling our table with the desired ruleset, and the daemon loop around it.
//!
//! Order matters for "a bad config never removes working rules" (issue 4): the config is
//! loaded and validated completely BEFORE nftables is touched; any error returns early with
//! the kernel unchanged. The table is rewritten only when what is in the kernel differs from
//! what we want, so reconciling twice writes nothing the second time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aksnet_nft::{NftBackend, NftError};
use ipnet::IpNet;
use serde::Serialize;

use crate::masq_config::{
    dir_fingerprint, load_dir_report, merge, ConfigErrors, MasqConfig, SkippedFile,
};
use crate::ruleset::{desired_table, TABLE_FAMILY};
use crate::settings::{AgentSettings, SettingsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The table was created or replaced.
    Applied,
    /// The kernel already held the desired ruleset; nothing was written.
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct ReconcileReport {
    pub outcome: Outcome,
    pub config: MasqConfig,
    /// Handle of our table after the reconcile.
    pub table_handle: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent settings: {0}")]
    Settings(#[from] SettingsError),
    #[error("invalid ip-masq config, previous rules left in force: {0}")]
    Config(#[from] ConfigErrors),
    #[error("{op} table {table}: {source}")]
    Nft {
        op: &'static str,
        table: String,
        #[source]
        source: NftError,
    },
}

impl AgentError {
    /// `aksnet agent --once` exit status: 1 for bad settings or config (nothing was changed),
    /// 3 when nftables refused or failed (docs/agent.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            AgentError::Settings(_) | AgentError::Config(_) => 1,
            AgentError::Nft { .. } => 3,
        }
    }
}

fn table_label(settings: &AgentSettings) -> String {
    format!("{} {}", TABLE_FAMILY, settings.table_name)
}

/// The built-in defaults merged with every `ip-masq*` file of the config directory.
pub fn load_config(settings: &AgentSettings) -> Result<MasqConfig, ConfigErrors> {
    let mut fragments = vec![settings.defaults_fragment()];
    let found = load_dir_report(&settings.config_dir, settings.enable_ipv6)?;
    fragments.extend(found.fragments);
    let mut config = merge(&fragments);
    config.skipped = found.skipped;
    Ok(config)
}

/// One reconcile: load config, compile, read our table, replace it only if it differs.
pub fn reconcile_once<B: NftBackend>(
    backend: &B,
    settings: &AgentSettings,
) -> Result<ReconcileReport, AgentError> {
    settings.validate()?;
    let config = load_config(settings)?;
    let desired = desired_table(settings, &config);
    let nft_err = |op, source| AgentError::Nft {
        op,
        table: table_label(settings),
        source,
    };
    let current = backend
        .get_table(TABLE_FAMILY, &settings.table_name)
        .map_err(|e| nft_err("read", e))?;
    if let Some(cur) = &current {
        if cur.table.same_ruleset(&desired) {
            return Ok(ReconcileReport {
                outcome: Outcome::Unchanged,
                config,
                table_handle: cur.handle,
            });
        }
    }
    backend
        .replace_table(&desired)
        .map_err(|e| nft_err("replace", e))?;
    let after = backend
        .get_table(TABLE_FAMILY, &settings.table_name)
        .map_err(|e| nft_err("read back", e))?;
    match &after {
        Some(a) if a.table.same_ruleset(&desired) => {}
        // Not fatal (the rules are in force) but every resync would rewrite: say so.
        _ => tracing::warn!(
            table = %table_label(settings),
            "table read back differs from what was written; the next reconcile will rewrite it"
        ),
    }
    Ok(ReconcileReport {
        outcome: Outcome::Applied,
        config,
        table_handle: after.and_then(|a| a.handle),
    })
}

/// Removes our table. `Ok(false)` when there was none.
pub fn uninstall<B: NftBackend>(backend: &B, settings: &AgentSettings) -> Result<bool, AgentError> {
    if aksnet_nft::model::validate_name("table name", &settings.table_name).is_err() {
        return Err(SettingsError::BadTableName {
            value: settings.table_name.clone(),
        }
        .into());
    }
    backend
        .delete_table(TABLE_FAMILY, &settings.table_name)
        .map_err(|source| AgentError::Nft {
            op: "delete",
            table: table_label(settings),
            source,
        })
}

/// What the agent reports after every reconcile (`--status-file`, JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub ok: bool,
    /// "applied", "unchanged" or "error".
    pub outcome: String,
    pub error: Option<String>,
    pub table: String,
    pub non_masquerade_cidrs: Vec<IpNet>,
    pub config_sources: Vec<String>,
    /// `ip-masq*` entries of the config directory that are not regular files (a
    /// directory, FIFO or device): not read, reported here and logged.
    pub skipped_files: Vec<SkippedFile>,
    /// Seconds since the epoch of this reconcile.
    pub time: u64,
}

impl Status {
    pub fn from_result(
        settings: &AgentSettings,
        result: &Result<ReconcileReport, AgentError>,
    ) -> Status {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        match result {
            Ok(r) => Status {
                ok: true,
                outcome: match r.outcome {
                    Outcome::Applied => "applied".into(),
                    Outcome::Unchanged => "unchanged".into(),
                },
                error: None,
                table: table_label(settings),
                non_masquerade_cidrs: r.config.non_masquerade_cidrs.clone(),
                config_sources: r.config.sources.clone(),
                skipped_files: r.config.skipped.clone(),
                time,
            },
            Err(e) => Status {
                ok: false,
                outcome: "error".into(),
                error: Some(e.to_string()),
                table: table_label(settings),
                non_masquerade_cidrs: Vec::new(),
                config_sources: Vec::new(),
                skipped_files: Vec::new(),
                time,
            },
        }
    }
}

/// Why the status file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("status file: {0}")]
    File(#[from] aksnet_fs::FsError),
    #[error("status file {}: cannot serialise: {source}", path.display())]
    Serialise {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Writes the status file atomically with mode 0644 (monitoring on the node reads it; it
/// holds no secret), never through a symlink (`aksnet_fs::write_atomic`).
pub fn write_status(path: &Path, status: &Status) -> Result<(), StatusError> {
    let mut text = serde_json::to_vec_pretty(status).map_err(|source| StatusError::Serialise {
        path: path.to_path_buf(),
        source,
    })?;
    text.push(b'\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name =
        path.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| aksnet_fs::FsError::BadName {
                dir: dir.to_path_buf(),
                name: path.display().to_string(),
                reason: "not a UTF-8 file name",
            })?;
    aksnet_fs::write_atomic(dir, name, &text, aksnet_fs::PUBLIC_FILE_MODE)?;
    Ok(())
}

/// Logs one reconcile's result and writes the status file if configured.
pub fn report(settings: &AgentSettings, result: &Result<ReconcileReport, AgentError>) {
    let table = table_label(settings);
    match result {
        Ok(r) => match r.outcome {
            Outcome::Applied => tracing::info!(
                %table,
                non_masquerade = ?r.config.non_masquerade_cidrs,
                sources = ?r.config.sources,
                "ruleset applied"
            ),
            Outcome::Unchanged => tracing::info!(%table, "ruleset unchanged; nothing written"),
        },
        Err(e) => tracing::error!(%table, error = %e, "reconcile failed"),
    }
    if let Ok(r) = result {
        for skipped in &r.config.skipped {
            tracing::warn!(file = %skipped.file, reason = %skipped.reason, "config entry skipped");
        }
        if r.config.non_masquerade_cidrs.is_empty() {
            tracing::warn!(
                %table,
                "nonMasqueradeCIDRs is empty: all pod traffic leaving the node is masqueraded (Azure/AKS#2653)"
            );
        }
    }
    if let Some(path) = &settings.status_file {
        if let Err(e) = write_status(path, &Status::from_result(settings, result)) {
            tracing::error!(file = %path.display(), error = %e, "cannot write status file");
        }
    }
}

/// How often the daemon polls the config directory for changes.
pub const CONFIG_POLL: Duration = Duration::from_secs(1);

/// The daemon: reconcile, then wait for the resync interval (or a `resyncInterval` from the
/// config) or a config file change, whichever comes first; until `stop` is set. Errors are
/// logged and reported; the previous rules stay in force and the next good config is applied.
pub fn run_daemon<B: NftBackend>(backend: &B, settings: &AgentSettings, stop: &AtomicBool) {
    run_daemon_observed(backend, settings, stop, None);
}

/// [`run_daemon`], recording every reconcile in `metrics` (`--metrics-addr`).
pub fn run_daemon_observed<B: NftBackend>(
    backend: &B,
    settings: &AgentSettings,
    stop: &AtomicBool,
    metrics: Option<&crate::metrics::Metrics>,
) {
    let mut fingerprint = dir_fingerprint(&settings.config_dir);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = reconcile_once(backend, settings);
        if let Some(m) = metrics {
            m.observe(&result, started.elapsed());
        }
        report(settings, &result);
        let interval = result
            .as_ref()
            .ok()
            .and_then(|r| r.config.resync_interval)
            .map(|d| d.max(Duration::from_secs(1)))
            .unwrap_or(settings.resync_interval);
        let deadline = Instant::now() + interval;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep(CONFIG_POLL.min(deadline - now));
            let fp = dir_fingerprint(&settings.config_dir);
            if fp != fingerprint {
                fingerprint = fp;
                tracing::info!(dir = %settings.config_dir.display(), "config changed");
                break;
            }
        }
    }
}
