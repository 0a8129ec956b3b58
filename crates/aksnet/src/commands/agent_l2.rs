//! `aksnet agent --l2-uplink IFNAME`: the node answers ARP on its uplink for its
//! own pods' addresses (issue 13 item 1; `aksnet_agent::l2`, docs/agent.md "L2
//! answers on a plain LAN"), on `--once` and every resync.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aksnet_agent::l2::{reconcile_l2, L2Error, L2Outcome};
use aksnet_agent::metrics::Metrics;

fn log(uplink: &str, result: &Result<L2Outcome, L2Error>) {
    match result {
        Ok(o) if !o.joined => tracing::warn!(
            uplink,
            deleted = ?o.diff.del,
            "L2 answers: no node pool in --data-dir (not joined) or a fenced one; answering for no address"
        ),
        Ok(o) => tracing::info!(
            uplink,
            added = ?o.diff.add,
            deleted = ?o.diff.del,
            kept = o.kept,
            "L2 answers reconciled"
        ),
        Err(e) => tracing::error!(error = %e, "L2 answers failed"),
    }
}

/// One reconcile; `Err(3)` (the agent's kernel-failure exit code) when it failed.
pub fn once(uplink: Option<&str>, data_dir: &Path) -> Result<(), u8> {
    let Some(uplink) = uplink else {
        return Ok(());
    };
    let result = reconcile_l2(uplink, data_dir);
    log(uplink, &result);
    result.map(drop).map_err(|_| 3)
}

/// The longest pause between two L2 reconciles: a round reads two local files
/// and one netlink dump, so a new pod is answered for (and a deleted one no
/// longer) within about a second, whatever the SNAT resync interval.
pub const L2_MAX_INTERVAL: Duration = Duration::from_secs(1);

/// Reconciles every `interval` (at most [`L2_MAX_INTERVAL`]) on a thread of its
/// own (SNAT's loop is untouched).
pub fn spawn(uplink: Option<&str>, data_dir: &Path, interval: Duration, metrics: &Arc<Metrics>) {
    let interval = interval.min(L2_MAX_INTERVAL);
    let Some(uplink) = uplink.map(str::to_string) else {
        return;
    };
    let (data_dir, metrics): (PathBuf, _) = (data_dir.to_path_buf(), metrics.clone());
    let spawned = std::thread::Builder::new()
        .name("aksnet-l2".into())
        .spawn(move || loop {
            let started = Instant::now();
            let result = reconcile_l2(&uplink, &data_dir);
            metrics.observe_loop("l2_answers", result.is_ok(), started.elapsed());
            log(&uplink, &result);
            std::thread::sleep(interval);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "L2 answers: cannot start the thread");
    }
}
