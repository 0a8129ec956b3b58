//! The demo's Pod Subnet act (docs/models.md#pod-subnet): a VM cannot be placed
//! in the pod subnet, and a dynamic node's blocks move — a node whose batch is
//! used up gets another from the cluster store, the fabric routes it as soon as
//! the store says so, and it goes back (and its route with it) when its pods
//! are gone.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use aksnet_core::podsubnet::{Allocation, BATCH};
use aksnet_store::EmbeddedStore;

use crate::check::{probe_once, Lab};
use crate::demo::mark;
use crate::error::{LabError, Result};
use crate::exec::{self, Binaries};
use crate::spec::{host, pod_name, LabSpec, PodPlan};
use crate::up::{Builder, NodeUp};

pub fn pod_subnet_act(
    spec: &LabSpec,
    lab: &Lab,
    bins: &Binaries,
    out: &mut dyn Write,
) -> Result<bool> {
    let mut ok = vm_refused(spec, bins, out)?;
    if spec.pod_allocation == Allocation::Dynamic {
        ok &= blocks_move(spec, lab, bins, out)?;
    }
    Ok(ok)
}

/// `aksnet subnet reserve` of a pod-subnet address is refused, with the reason.
fn vm_refused(spec: &LabSpec, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let ip = host(spec.pod_subnet, 200);
    let store = crate::state::StateDir::new(&spec.state_dir).store_dir();
    let refusal = match exec::subnet_reserve(
        bins,
        ip,
        &format!("{}vm", spec.prefix),
        spec.pod_subnet,
        &spec.pod_subnet_name,
        &store,
    ) {
        Ok(()) => None,
        Err(LabError::Command { message, .. }) => Some(message),
        Err(e) => return Err(e),
    };
    let refused = refusal
        .as_deref()
        .is_some_and(|m| m.contains("VMs cannot be placed in a pod subnet"));
    let _ = writeln!(
        out,
        "  {} a VM cannot be placed in the pod subnet: `aksnet subnet reserve --address {ip}` is refused\n         {}",
        mark(refused),
        refusal.as_deref().unwrap_or("it was ACCEPTED")
    );
    Ok(refused)
}

/// The blocks node 0 holds in the store.
fn blocks(spec: &LabSpec, node: &str) -> Result<Vec<Ipv4Addr>> {
    let dir = crate::state::StateDir::new(&spec.state_dir).store_dir();
    let store = EmbeddedStore::new(&dir);
    let got = aksnet_store::podsubnet::get_pods(&store, node)
        .map_err(|source| LabError::Store { dir, source })?;
    Ok(got.map(|(r, _)| r.blocks).unwrap_or_default())
}

fn show(blocks: &[Ipv4Addr]) -> String {
    let list: Vec<String> = blocks.iter().map(|b| format!("{b}/28")).collect();
    list.join(", ")
}

/// Node 0 fills its batch; the next pod waits for a batch (CNI code 11), gets
/// one, and the VM reaches it through the fabric; then the pods go and the batch
/// returns over two rounds.
fn blocks_move(spec: &LabSpec, lab: &Lab, bins: &Binaries, out: &mut dyn Write) -> Result<bool> {
    let node = crate::demo::first_node(lab)?;
    let plan = node.plan.clone();
    let b = Builder::resume(spec, &lab.topo, bins)?;
    let before = blocks(spec, &plan.name)?;
    // Add pods until the node holds one more block (at most two batches' worth).
    let have = plan.pods.len() as u32;
    let mut added = Vec::new();
    let mut last_ip = None;
    for j in have..have + 2 * BATCH {
        let pod = PodPlan {
            name: pod_name(&spec.prefix, 0, j),
            netns: pod_name(&spec.prefix, 0, j),
        };
        let ip = b
            .add_pod(&node, &pod)?
            .map_err(|f| crate::up::cni_error(&node, &pod, f))?;
        added.push(pod);
        last_ip = Some(ip);
        if blocks(spec, &plan.name)?.len() > before.len() {
            break;
        }
    }
    let grown = blocks(spec, &plan.name)?;
    let (Some(ip), Some(newest)) = (last_ip, added.last()) else {
        return Ok(false);
    };
    let seen = probe_once(&lab.topo.vm.netns, &newest.netns, ip)?;
    let reached = seen == Ok(IpAddr::V4(lab.topo.vm.ip));
    let grew = grown.len() == before.len() + 1;
    let _ = writeln!(
        out,
        "  {} dynamic: {} held {} ({} pod addresses); its pod {} found none free (CNI code {}), one \
         `aksnet node pod-sync` took a batch, now {}; the fabric routes it and the VM reaches the pod {ip}: {}",
        mark(grew && reached),
        plan.name,
        show(&before),
        before.len() as u32 * BATCH - 1,
        added.len() as u32 + have,
        exec::CNI_TRY_AGAIN,
        show(&grown),
        match &seen {
            Ok(a) => format!("it saw {a}"),
            Err(e) => format!("unreachable ({e})"),
        }
    );
    let returned = give_back(&b, &node, &added)?;
    let after = blocks(spec, &plan.name)?;
    let back = after == before && returned.0 > 0;
    let _ = writeln!(
        out,
        "  {} dynamic: the {} pods deleted, two rounds return the batch: {} held again; the fabric dropped {} route(s)",
        mark(back),
        added.len(),
        show(&after),
        returned.0
    );
    Ok(grew && reached && back)
}

/// DELs `pods`, runs two pod-sync rounds (a batch is returned over two,
/// docs/models.md "Who tops up") and makes the fabric follow.
fn give_back(b: &Builder<'_>, node: &NodeUp, pods: &[PodPlan]) -> Result<(usize, usize)> {
    let config = b.cni_config(node);
    for pod in pods {
        if let Err(f) = exec::cni(
            b.bins,
            "DEL",
            &node.plan.netns,
            &pod.name,
            &pod.netns,
            &config,
        )? {
            return Err(crate::up::cni_error(node, pod, f));
        }
    }
    let data_dir = b.state.node_dir(&node.plan.name);
    let store = b.state.store_dir();
    exec::pod_sync(b.bins, &store, &data_dir)?;
    exec::pod_sync(b.bins, &store, &data_dir)?;
    b.sync_pod_subnet_routes()
}
