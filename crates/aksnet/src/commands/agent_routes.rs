//! `aksnet agent --kubenet-routes NODE`: one route per other node's pod CIDR
//! (`podCIDR via nodeIP proto 213`) from the cluster store (`--store`, shared with
//! the lease keepalive), on `--once` and every `--kubenet-routes-interval`
//! (issue 13 item 2; `aksnet_agent::routes`, docs/agent.md "kubenet routes on a
//! plain LAN").

use std::sync::Arc;
use std::time::{Duration, Instant};

use aksnet_agent::metrics::Metrics;
use aksnet_agent::routes::{reconcile_routes, RoutesError, RoutesOutcome};

use super::node::StoreArgs;

#[derive(clap::Args, Debug, Clone)]
pub struct RoutesArgs {
    /// Program the kubenet route table on this node, whose name is NODE: one
    /// route per other node's pod CIDR, from the cluster store (--store).
    #[arg(long, value_name = "NODE")]
    pub kubenet_routes: Option<String>,
    /// How often the routes are compared with the cluster store.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = super::node::parse_duration)]
    pub kubenet_routes_interval: Duration,
}

fn log(node: &str, result: &Result<RoutesOutcome, RoutesError>) {
    match result {
        Ok(o) if o.diff.add.is_empty() && o.diff.del.is_empty() && o.failed.is_empty() => {
            tracing::debug!(node, kept = o.kept, "kubenet routes in sync")
        }
        Ok(o) => tracing::info!(
            node,
            added = ?o.diff.add,
            deleted = ?o.diff.del,
            failed = ?o.failed,
            kept = o.kept,
            "kubenet routes reconciled"
        ),
        Err(e) => tracing::error!(error = %e, "kubenet routes failed"),
    }
}

fn round(node: &str, store: &dyn aksnet_store::Store) -> Result<RoutesOutcome, u8> {
    store.restart_deadline();
    let result = reconcile_routes(store, node);
    log(node, &result);
    match result {
        Ok(o) if o.failed.is_empty() => Ok(o),
        Err(RoutesError::Netlink(_)) | Ok(_) => Err(3),
        Err(_) => Err(1),
    }
}

fn open(store: &StoreArgs) -> Result<Box<dyn aksnet_store::Store>, u8> {
    store.open().map_err(|e| {
        tracing::error!(error = %e, "kubenet routes: cannot open the cluster store");
        1
    })
}

/// One reconcile; `Err(code)` when it failed (1 store, 3 kernel).
pub fn once(a: &RoutesArgs, store: &StoreArgs) -> Result<(), u8> {
    match &a.kubenet_routes {
        Some(node) => round(node, &*open(store)?).map(drop),
        None => Ok(()),
    }
}

/// Reconciles every interval on a thread of its own, each round recorded in `metrics`.
pub fn spawn(a: &RoutesArgs, store: &StoreArgs, metrics: &Arc<Metrics>) {
    let Some(node) = a.kubenet_routes.clone() else {
        return;
    };
    let (store, interval) = (store.clone(), a.kubenet_routes_interval);
    let metrics = metrics.clone();
    let spawned = std::thread::Builder::new()
        .name("aksnet-routes".into())
        .spawn(move || {
            // Opened once and reused (an etcd store keeps its connection); opened
            // again after a failed round.
            let mut opened = None;
            loop {
                if opened.is_none() {
                    opened = open(&store).ok();
                }
                let started = Instant::now();
                let result = match &opened {
                    Some(s) => round(&node, &**s),
                    None => Err(1),
                };
                metrics.observe_loop("kubenet_routes", result.is_ok(), started.elapsed());
                if result == Err(1) {
                    opened = None;
                }
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "kubenet routes: cannot start the thread");
    }
}
