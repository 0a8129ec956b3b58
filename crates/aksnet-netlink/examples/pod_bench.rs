//! Times the kernel work of one CNI ADD and DEL, as the plugin does it.
//!
//! Run as root: `cargo run -p aksnet-netlink --example pod_bench [iterations]`.
//! Everything happens in namespaces named `aksnt-bench-*` that are deleted
//! at the end; the whole run executes on a thread inside the "node" netns,
//! so `Handle::new()` and the sysctl writes behave as in the plugin (which
//! runs in the host netns).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use aksnet_netlink::{
    create_named_netns, delete_named_netns, run_in_netns, set_accept_ra, set_proxy_arp, Handle,
    IpNet, NeighbourState, Netns,
};

const HOST_VETH_MAC: [u8; 6] = [0xaa; 6];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Timings {
    add: Vec<Duration>,
    del: Vec<Duration>,
}

fn nodesubnet_add(node_if: &str, pod_ns: &Netns, pod_ip: IpAddr) -> Result<(), BoxError> {
    let gw: IpAddr = "169.254.1.1".parse()?;
    let mut host = Handle::new()?;
    let mut pod = Handle::in_netns(pod_ns)?;
    let veth = host.create_veth(node_if, "eth0", pod_ns, 1500, Some(HOST_VETH_MAC))?;
    host.add_host_route(pod_ip, veth.index)?;
    set_proxy_arp(node_if, true)?;
    set_accept_ra(node_if, 0)?;
    let eth0 = pod.link_by_name("eth0")?.ok_or("eth0 missing")?;
    pod.set_link_up(eth0.index)?;
    pod.add_addr_noprefixroute(eth0.index, IpNet::new(pod_ip, 16)?)?;
    pod.add_host_route(gw, eth0.index)?;
    pod.add_default_route(gw, eth0.index)?;
    pod.add_neighbour(eth0.index, gw, HOST_VETH_MAC, NeighbourState::Permanent)?;
    Ok(())
}

fn kubenet_add(node_if: &str, pod_ns: &Netns, pod_ip: IpAddr) -> Result<(), BoxError> {
    let gw: IpAddr = "10.244.0.1".parse()?;
    let mut host = Handle::new()?;
    let mut pod = Handle::in_netns(pod_ns)?;
    let br = host.ensure_bridge("aksntcbr0", 1500, true)?;
    host.ensure_addr(br.index, "10.244.0.1/24".parse()?)?;
    let veth = host.create_veth(node_if, "eth0", pod_ns, 1500, None)?;
    host.set_master(veth.index, br.index)?;
    host.set_hairpin(veth.index, false)?;
    let eth0 = pod.link_by_name("eth0")?.ok_or("eth0 missing")?;
    pod.set_link_up(eth0.index)?;
    pod.add_addr(eth0.index, IpNet::new(pod_ip, 24)?)?;
    pod.add_default_route(gw, eth0.index)?;
    Ok(())
}

fn del(node_if: &str) -> Result<(), BoxError> {
    let mut host = Handle::new()?;
    host.del_link_by_name(node_if)?;
    Ok(())
}

type AddFn = fn(&str, &Netns, IpAddr) -> Result<(), BoxError>;

fn run(
    mode: &str,
    add: AddFn,
    pods: &[(String, Netns)],
    ip_base: [u8; 3],
) -> Result<Timings, BoxError> {
    let mut t = Timings {
        add: Vec::new(),
        del: Vec::new(),
    };
    for (i, (_, ns)) in pods.iter().enumerate() {
        let node_if = format!("aksnt{mode}{i}");
        let pod_ip = IpAddr::from([ip_base[0], ip_base[1], ip_base[2], 10 + i as u8]);
        let start = Instant::now();
        add(&node_if, ns, pod_ip)?;
        t.add.push(start.elapsed());
        let start = Instant::now();
        del(&node_if)?;
        t.del.push(start.elapsed());
    }
    Ok(t)
}

fn summary(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<24} n={:<4} min={:>8.3?} median={:>8.3?} p90={:>8.3?} max={:>8.3?}",
        samples.len(),
        samples[0],
        pick(0.5),
        pick(0.9),
        samples[samples.len() - 1]
    );
}

fn main() -> Result<(), BoxError> {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let pid = std::process::id();
    let node_name = format!("aksnt-bench-node-{pid}");
    let node = create_named_netns(&node_name)?;
    let mut pods = Vec::new();
    for i in 0..iterations {
        let name = format!("aksnt-bench-pod{i}-{pid}");
        let ns = create_named_netns(&name)?;
        pods.push((name, ns));
    }

    let result = run_in_netns(
        &node,
        || -> Result<(Timings, Timings, Duration, Vec<Duration>), BoxError> {
            let start = Instant::now();
            let h = Handle::new()?;
            let open_here = start.elapsed();
            drop(h);
            let mut opens = Vec::new();
            for (_, ns) in &pods {
                let start = Instant::now();
                let h = Handle::in_netns(ns)?;
                opens.push(start.elapsed());
                drop(h);
            }
            let ns = run("ns", nodesubnet_add, &pods, [10, 240, 0])?;
            let kn = run("kn", kubenet_add, &pods, [10, 244, 0])?;
            Ok((ns, kn, open_here, opens))
        },
    );

    for (name, _) in &pods {
        delete_named_netns(name)?;
    }
    delete_named_netns(&node_name)?;

    let (mut ns, mut kn, open_here, mut opens) = result??;
    println!("Handle::new (socket in current netns, first): {open_here:.3?}");
    summary("Handle::in_netns", &mut opens);
    summary("nodesubnet ADD", &mut ns.add);
    summary("nodesubnet DEL (link)", &mut ns.del);
    summary("kubenet ADD", &mut kn.add);
    summary("kubenet DEL (link)", &mut kn.del);
    Ok(())
}
