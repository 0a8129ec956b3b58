//! `aksnet node keepalive`: keeps the lease of a node's reservation alive and the
//! node's local pool in step with the store; fences the pool when the node may no
//! longer own it (issue 17, "leases"; docs/node.md, "Leases and fencing").
//!
//! Every third of the lease's TTL, one round:
//!
//! 1. renew the lease (etcd LeaseKeepAlive);
//! 2. read the node's reservation: it must exist and live on that lease;
//! 3. make `node-pool.json` equal to the store's record (rewriting it only when
//!    the node's IPAM holds no address outside the record).
//!
//! The pool is fenced (`<data-dir>/node-pool.fenced`: the plugin's ADD refuses to
//! allocate from it) when the lease expired, the reservation is gone or belongs
//! to another lease, the pool cannot be reconciled, or no round succeeded for half
//! the TTL: etcd frees the addresses one TTL after the last renewal it saw, which
//! may be earlier than one TTL after our last answer, so half a TTL leaves the
//! margin. `aksnet node join` lifts the fence.
//!
//! Between rounds it waits on an etcd watch of the node's key (from the revision
//! it read): a change (leave, another reservation) starts the next round at once;
//! otherwise the next round runs after TTL/3.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aksnet_node::keepalive::{keepalive_round, Round};
use aksnet_store::local_pool::{fence, read_node_lease, NodeLease};
use aksnet_store::reservation::node_key;
use aksnet_store::Store;

use super::{parse_node_name, NodeError, StoreArgs, DEFAULT_DATA_DIR};

#[derive(clap::Args)]
pub struct KeepaliveArgs {
    /// Node name (as joined with --lease-ttl).
    #[arg(long, value_name = "NAME", value_parser = parse_node_name)]
    pub node: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The node's data directory (node-pool.json, node-pool.lease).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// One round, then exit: 0 when the lease is alive and the pool matches the
    /// store, 1 when the pool was fenced or the store could not be reached.
    #[arg(long)]
    pub once: bool,
}

pub fn run(a: &KeepaliveArgs) -> Result<(), NodeError> {
    run_observed(a, &|_| {})
}

/// What one keepalive round did, for the agent's metrics.
#[derive(Debug, Clone, Copy)]
pub struct RoundReport {
    /// The round renewed the lease and reconciled the pool.
    pub ok: bool,
    /// Store attempts retried since the loop started (etcd: transient failures).
    pub store_retries: u64,
}

/// [`run`], telling `observe` about every round.
pub fn run_observed(a: &KeepaliveArgs, observe: &dyn Fn(RoundReport)) -> Result<(), NodeError> {
    let lease = match read_node_lease(&a.data_dir)? {
        Some(l) if l.node == a.node => l,
        _ => {
            return Err(NodeError::NoLease {
                node: a.node.clone(),
                data_dir: a.data_dir.clone(),
            })
        }
    };
    let store = a.store.open()?;
    let mut ttl = Duration::from_secs(lease.ttl_seconds.max(1));
    let mut last_ok = Instant::now();
    let mut seen = 0;
    loop {
        store.restart_deadline();
        let result = round(&*store, a, &lease);
        observe(RoundReport {
            ok: matches!(result, Ok(Round::Alive { .. })),
            store_retries: store.retries_so_far(),
        });
        let reason = match result {
            Ok(Round::Alive {
                ttl: t, revision, ..
            }) => {
                ttl = t;
                seen = revision;
                last_ok = Instant::now();
                None
            }
            Ok(Round::Lost(reason)) => Some(reason),
            Err(e) if a.once => return Err(e),
            Err(e) if last_ok.elapsed() >= ttl / 2 => Some(format!(
                "no keep-alive of lease {:x} reached the store for {:?} (half its {ttl:?} TTL; \
                 last error: {e}): the store may free node {}'s addresses",
                lease.lease,
                last_ok.elapsed(),
                a.node
            )),
            Err(e) => {
                eprintln!("aksnet node keepalive: warning: {e}; retrying");
                None
            }
        };
        if let Some(reason) = reason {
            let path = fence(&a.data_dir, &reason)?;
            return Err(NodeError::Fenced { path, reason });
        }
        if a.once {
            return Ok(());
        }
        // Next round after a third of the TTL, or at once when the reservation
        // changes in the store (an etcd watch): a node learns of a leave or a
        // replacement of its reservation without waiting for the lease.
        let wait = (ttl / 3).max(Duration::from_millis(200));
        if seen == 0 {
            std::thread::sleep(wait);
        } else if let Err(e) = store.wait_for_change(&node_key(&a.node), seen, wait) {
            eprintln!("aksnet node keepalive: warning: watch: {e}");
        }
    }
}

/// One round; says on stderr when it rewrote the local pool.
fn round(store: &dyn Store, a: &KeepaliveArgs, lease: &NodeLease) -> Result<Round, NodeError> {
    let r = keepalive_round(store, &a.node, &a.data_dir, lease)?;
    if let Round::Alive { rewrote: true, .. } = r {
        eprintln!(
            "aksnet node keepalive: rewrote the local pool of node {} from the store",
            a.node
        );
    }
    Ok(r)
}

/// The agent's lease hook (`aksnet agent --keepalive-node NAME ...`): the same
/// loop as `aksnet node keepalive`, in a thread of the agent.
#[derive(clap::Args, Debug)]
pub struct LeaseHookArgs {
    /// Keep this node's lease alive and its pool reconciled (it joined with
    /// --lease-ttl); the store flags below say where.
    #[arg(long, value_name = "NAME", value_parser = parse_node_name)]
    pub keepalive_node: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The node's data directory (node-pool.json, node-pool.lease).
    #[arg(long = "keepalive-data-dir", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// Starts the keepalive loop in a thread when `--keepalive-node` is given. A
/// fenced pool or a setup error is logged; the agent's own work goes on.
pub fn spawn_lease_hook(hook: &LeaseHookArgs, observe: impl Fn(RoundReport) + Send + 'static) {
    let Some(node) = hook.keepalive_node.clone() else {
        return;
    };
    let args = KeepaliveArgs {
        node,
        store: hook.store.clone(),
        data_dir: hook.data_dir.clone(),
        once: false,
    };
    let spawned = std::thread::Builder::new()
        .name("lease-keepalive".into())
        .spawn(move || {
            if let Err(e) = run_observed(&args, &observe) {
                tracing::error!(node = %args.node, error = %e, "lease keepalive stopped");
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the lease keepalive thread");
    }
}
