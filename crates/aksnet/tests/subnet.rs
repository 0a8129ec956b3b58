//! `aksnet subnet reserve|release|list` through the real binary with the embedded
//! store (issue 13 item 3): a VM's address is never given to a node, joins count
//! tenants in InsufficientSubnetSize, bad input changes nothing, and a reserve and
//! a join racing as separate processes never both take one address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aksnet");

struct Cluster {
    dir: tempfile::TempDir,
}

fn run(args: &[String]) -> Output {
    Command::new(BIN).args(args).output().expect("run aksnet")
}

fn text(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

impl Cluster {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn store(&self) -> String {
        self.dir.path().join("cluster").display().to_string()
    }
    fn data(&self, node: &str) -> PathBuf {
        self.dir.path().join("nodes").join(node)
    }
    fn join_args(&self, node: &str, subnet: &str, max_pods: &str) -> Vec<String> {
        [
            "node",
            "join",
            "--node",
            node,
            "--subnet",
            subnet,
            "--max-pods",
            max_pods,
            "--store",
            &self.store(),
            "--data-dir",
            &self.data(node).display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    }
    /// A Node Subnet join into the subnet named `name`.
    fn join_args_in(&self, node: &str, subnet: &str, name: &str) -> Vec<String> {
        let mut a = self.join_args(node, subnet, "30");
        a.extend(["--subnet-name", name].map(String::from));
        a
    }
    fn subnet_args(&self, verb: &str, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["subnet", verb, "--store", &self.store()]
            .map(String::from)
            .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }
    fn subnet(&self, verb: &str, extra: &[&str]) -> (Option<i32>, String, String) {
        text(&run(&self.subnet_args(verb, extra)))
    }
    fn state(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("cluster").join("state.json")).unwrap_or_default()
    }
    fn list_json(&self) -> serde_json::Value {
        let (code, out, err) = self.subnet("list", &["--format", "json"]);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str(&out).expect("json")
    }
}

#[test]
fn a_vms_addresses_are_never_given_to_a_node_and_count_in_insufficient_subnet_size() {
    let c = Cluster::new();
    // Before any node joined, the subnet's CIDR is needed.
    let (code, _, err) = c.subnet("reserve", &["--address", "10.240.0.4", "--owner", "vm1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pass --subnet CIDR"), "{err}");
    let (code, out, err) = c.subnet(
        "reserve",
        &[
            "--address",
            "10.240.0.4-10.240.0.13",
            "--owner",
            "vm1",
            "--subnet",
            "10.240.0.0/24",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        "reserved 10.240.0.4-10.240.0.13 (10 addresses) of subnet aks-subnet (10.240.0.0/24) for vm1"
    );
    let o = run(&c.join_args("node-a", "10.240.0.0/24", "30"));
    assert!(o.status.success(), "{:?}", text(&o));
    let pool: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.data("node-a").join("node-pool.json")).unwrap())
            .unwrap();
    assert_eq!(
        pool["nodeIp"], "10.240.0.14",
        "the VM's 10 addresses are skipped"
    );
    for i in 0..6 {
        let o = run(&c.join_args(&format!("n{i}"), "10.240.0.0/24", "30"));
        assert!(o.status.success(), "{:?}", text(&o));
    }
    // 251 usable - 10 (vm1) - 7 x 31 = 24 left.
    let (code, _, err) = text(&run(&c.join_args("last", "10.240.0.0/24", "30")));
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        "aksnet node join: InsufficientSubnetSize: Pre-allocated IPs 31 exceeds IPs available \
         24 in Subnet Cidr 10.240.0.0/24, Subnet Name aks-subnet"
    );
    // The subnet is registered now: --subnet is not needed.
    let (code, _, err) = c.subnet("reserve", &["--address", "10.240.0.250", "--owner", "lb"]);
    assert_eq!(code, Some(0), "{err}");
    let list = c.list_json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["owner"], "vm1");
    let (code, out, _) = c.subnet("list", &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("10.240.0.4-10.240.0.13"), "{out}");
    // Release frees the range; releasing it again names it.
    let (code, out, err) = c.subnet("release", &["--address", "10.240.0.4-10.240.0.13"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("released 10.240.0.4-10.240.0.13"), "{out}");
    let (code, _, err) = c.subnet("release", &["--address", "10.240.0.4-10.240.0.13"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--address 10.240.0.4-10.240.0.13: "), "{err}");
    assert_eq!(c.list_json().as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_and_held_addresses_are_refused_naming_flag_value_and_holder() {
    let c = Cluster::new();
    let o = run(&c.join_args("node-a", "10.1.0.0/24", "10"));
    assert!(o.status.success(), "{:?}", text(&o));
    let before = c.state();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--address", "10.1.0.8", "--owner", "vm"],
            1,
            "--address 10.1.0.8: address 10.1.0.8 is held by node node-a",
        ),
        (
            &["--address", "10.2.0.8", "--owner", "vm"],
            2,
            "--address 10.2.0.8: address 10.2.0.8 is not in subnet 10.1.0.0/24",
        ),
        (
            &["--address", "10.1.0.1", "--owner", "vm"],
            2,
            "--address 10.1.0.1: address 10.1.0.1 is one of the 5 addresses Azure keeps",
        ),
        (
            &["--address", "10.1.0.250-10.1.0.255", "--owner", "vm"],
            2,
            "address 10.1.0.255 is one of the 5",
        ),
        (
            &["--address", "10.1.0.30-10.1.0.20", "--owner", "vm"],
            2,
            "'--address <IP[-IP]>': range 10.1.0.30-10.1.0.20 is reversed",
        ),
        (
            &["--address", "10.1.0.30", "--owner", "a b"],
            2,
            "'--owner <NAME>': invalid owner \"a b\"",
        ),
        (
            &[
                "--address",
                "10.1.0.30",
                "--owner",
                "vm",
                "--subnet",
                "10.1.0.0/23",
            ],
            2,
            "subnet aks-subnet is registered with CIDR 10.1.0.0/24, not 10.1.0.0/23",
        ),
    ];
    for (args, want_code, want) in cases {
        let (code, _, err) = c.subnet("reserve", args);
        assert_eq!(code, Some(*want_code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(c.state(), before, "{args:?} changed the store");
    }
    let (code, _, err) = c.subnet(
        "reserve",
        &["--address", "10.1.0.30-10.1.0.31", "--owner", "vm"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = c.subnet(
        "reserve",
        &["--address", "10.1.0.30-10.1.0.31", "--owner", "vm"],
    );
    assert_eq!(code, Some(0));
    assert!(out.starts_with("already reserved"), "{out}");
    let (code, _, err) = c.subnet("reserve", &["--address", "10.1.0.31", "--owner", "lb"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("address 10.1.0.31 is already reserved for vm (range 10.1.0.30-10.1.0.31)"),
        "{err}"
    );
}

/// A reserve and a join started at the same moment as separate processes, where
/// the subnet has room for only one of them: exactly one succeeds, every round,
/// and no address ends up held twice.
#[test]
fn a_concurrent_reserve_and_join_never_both_take_one_address() {
    for round in 0..8 {
        let c = Cluster::new();
        // /27: 27 usable (.4-.30); node-a takes 11 (.4-.14), 16 are left.
        let o = run(&c.join_args("node-a", "10.9.0.0/27", "10"));
        assert!(o.status.success(), "{:?}", text(&o));
        let reserve = Command::new(BIN)
            .args(c.subnet_args(
                "reserve",
                &["--address", "10.9.0.15-10.9.0.20", "--owner", "vm"],
            ))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn reserve");
        let join = Command::new(BIN)
            .args(c.join_args("node-b", "10.9.0.0/27", "10"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn join");
        let (r, j) = (
            text(&reserve.wait_with_output().unwrap()),
            text(&join.wait_with_output().unwrap()),
        );
        // 6 + 11 > 16: whichever commits second must see the first.
        match (r.0, j.0) {
            (Some(0), Some(1)) => assert!(
                j.2.contains("Pre-allocated IPs 11 exceeds IPs available 10"),
                "round {round}: {j:?}"
            ),
            (Some(1), Some(0)) => assert!(
                r.2.contains("is held by node node-b"),
                "round {round}: {r:?}"
            ),
            _ => panic!("round {round}: reserve {r:?}, join {j:?}"),
        }
        let tenants = c.list_json();
        let pool = c.data("node-b").join("node-pool.json");
        assert_eq!(
            tenants.as_array().unwrap().len() + usize::from(pool.exists()),
            1,
            "round {round}"
        );
    }
}

/// Issue 15: a pod subnet holds only pods. `aksnet subnet reserve` in it (a VM)
/// and a Node Subnet join into it are refused with AKS's reason and change
/// nothing; a Pod Subnet node costs one address of the node subnet; leave
/// returns its blocks.
#[test]
fn vms_cannot_be_placed_in_a_pod_subnet() {
    let c = Cluster::new();
    let mut join = c.join_args("pods-a", "10.240.0.0/24", "30");
    join.extend(
        [
            "--pod-subnet",
            "10.241.0.0/24",
            "--pod-subnet-name",
            "pods",
            "--pod-allocation",
            "static",
        ]
        .map(String::from),
    );
    let (code, out, err) = text(&run(&join));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("pod subnet pods (10.241.0.0/24, static): blocks 10.241.0.16/28,10.241.0.32/28 (30 pod addresses now)"),
        "{out}"
    );
    assert!(out.contains("250 of 251 usable addresses free"), "{out}");
    let before = c.state();
    let (code, _, err) = c.subnet(
        "reserve",
        &[
            "--address",
            "10.241.0.100",
            "--owner",
            "vm1",
            "--subnet-name",
            "pods",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is a pod subnet in the cluster store, not a node subnet")
            && err.contains("VMs cannot be placed in a pod subnet"),
        "{err}"
    );
    let (code, _, err) = text(&run(&c.join_args_in("vm-node", "10.241.0.0/24", "pods")));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("VMs cannot be placed in a pod subnet"),
        "{err}"
    );
    assert_eq!(c.state(), before, "refusals change nothing");
    let o = run(&[
        "node".into(),
        "pod-sync".into(),
        "--store".into(),
        c.store(),
        "--every".into(),
        "2s".into(),
    ]);
    let (code, _, err) = text(&o);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--every") && err.contains("10 s IPAM lock timeout"),
        "{err}"
    );
    let leave = [
        "node",
        "leave",
        "--node",
        "pods-a",
        "--store",
        &c.store(),
        "--data-dir",
        &c.data("pods-a").display().to_string(),
    ]
    .map(String::from);
    let (code, out, err) = text(&run(&leave));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("node pods-a returned 2 block(s) of pod subnet pods (10.241.0.0/24)"),
        "{out}"
    );
}
