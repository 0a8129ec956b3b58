//! The policy controller on a manifest directory: kubectl-style files (multi-document YAML,
//! `kind: List`, JSON), errors naming file/object/field with the policy in force kept, restart
//! re-applying whole, churn applied as element updates; against a recording backend and
//! against the real `nft` in a network namespace of the test's own.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use aksnet_agent::policy_controller::{Applied, PolicyController, PolicySettings, ScriptBackend};
use aksnet_agent::policy_source::{ManifestDir, PolicySource, SourceErrors};
use aksnet_nft::elements::ElementBatch;
use aksnet_nft::{NftCommand, NftError};
use aksnet_policy::incremental::PodChange;

#[derive(Default)]
struct Recorder {
    scripts: Mutex<Vec<String>>,
}

impl ScriptBackend for &Recorder {
    fn run_script(&self, _op: &str, script: &str) -> Result<(), NftError> {
        self.scripts.lock().unwrap().push(script.to_string());
        Ok(())
    }
}

const NAMESPACES: &str = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: x
    labels: {kubernetes.io/metadata.name: x, ns: x}
    uid: 6b0c4b5e-0000-0000-0000-000000000000
  status: {phase: Active}
- apiVersion: v1
  kind: Namespace
  metadata: {name: y, labels: {ns: y}}
"#;

fn pod_yaml(name: &str, ns: &str, ip: &str, node: &str, labels: &str) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{{labels}}}
  resourceVersion: "1234"
spec:
  nodeName: {node}
  containers:
  - name: c
    image: agnhost
    ports:
    - {{name: serve-80-tcp, containerPort: 80, protocol: TCP}}
status:
  phase: Running
  podIP: {ip}
  podIPs:
  - ip: {ip}
"#
    )
}

const POLICY: &str = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": "allow-b", "namespace": "x"},
 "spec": {"podSelector": {"matchLabels": {"pod": "a"}},
          "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}], "ports": [{"port": "serve-80-tcp"}]}]}}"#;

fn write_dir(dir: &std::path::Path, extra_pod: bool) {
    std::fs::write(dir.join("00-namespaces.yaml"), NAMESPACES).unwrap();
    let mut pods = pod_yaml("a", "x", "10.244.1.11", "node-1", "pod: a")
        + &pod_yaml("b", "x", "10.244.2.12", "node-2", "pod: b");
    if extra_pod {
        pods += &pod_yaml("c", "x", "10.244.1.13", "node-1", "pod: a");
    }
    std::fs::write(dir.join("10-pods.yaml"), pods).unwrap();
    std::fs::write(dir.join("20-policy.json"), POLICY).unwrap();
}

fn settings(table: &str) -> PolicySettings {
    PolicySettings {
        table: table.into(),
        node: "node-1".into(),
        pod_ranges: vec!["10.244.1.0/24".parse().unwrap()],
    }
}

#[test]
fn manifests_load_and_churn_is_element_only() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), false);
    let src = ManifestDir::new(dir.path());
    let view = src.load().unwrap();
    assert_eq!(
        view.cluster.namespaces.len(),
        2,
        "{view:?} {:?}",
        std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(view.cluster.pods.len(), 2);
    assert_eq!(view.policies.len(), 1);
    let rec = Recorder::default();
    let mut ctl = PolicyController::new(&rec, settings("aksh4t"));
    assert_eq!(ctl.reconcile(&src).unwrap().applied, Applied::Replaced);
    assert_eq!(ctl.reconcile(&src).unwrap().applied, Applied::Unchanged);
    write_dir(dir.path(), true);
    let r = ctl.reconcile(&src).unwrap();
    assert!(
        matches!(r.applied, Applied::Updated { .. }),
        "{:?}",
        r.applied
    );
    let scripts = rec.scripts.lock().unwrap().clone();
    assert_eq!(scripts.len(), 2);
    assert!(
        scripts[1].lines().all(|l| l.contains(" element ")),
        "{}",
        scripts[1]
    );
    assert!(
        scripts[1].contains("10.244.1.13 : jump gin-"),
        "{}",
        scripts[1]
    );
}

#[test]
fn pod_events_apply_without_a_whole_view() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), false);
    let src = ManifestDir::new(dir.path());
    let rec = Recorder::default();
    let mut ctl = PolicyController::new(&rec, settings("aksh4t"));
    let before = src.load().unwrap();
    write_dir(dir.path(), true);
    let after = src.load().unwrap();
    let c = after.cluster.pods.iter().find(|p| p.name == "c").unwrap();
    // Nothing applied yet: the events cannot be applied alone.
    let event = || vec![PodChange::Upsert(c.clone())];
    assert!(ctl.apply_pod_events(event()).unwrap().is_none());
    assert_eq!(ctl.apply_view(&before).unwrap().applied, Applied::Replaced);
    // The new pod as an event: the same elements the whole view would have sent.
    let r = ctl.apply_pod_events(event()).unwrap().unwrap();
    assert!(
        matches!(
            r.applied,
            Applied::Updated {
                incremental: true,
                ..
            }
        ),
        "{r:?}"
    );
    let by_event = rec.scripts.lock().unwrap()[1].clone();
    assert!(by_event.contains("10.244.1.13 : jump gin-"), "{by_event}");
    assert_eq!(ctl.apply_view(&after).unwrap().applied, Applied::Unchanged);
    // A pod taking another's address is declined (nothing sent): the whole view follows.
    let mut twin = c.clone();
    twin.name = "twin".into();
    let sent = rec.scripts.lock().unwrap().len();
    assert!(ctl
        .apply_pod_events(vec![PodChange::Upsert(twin)])
        .unwrap()
        .is_none());
    assert_eq!(rec.scripts.lock().unwrap().len(), sent);
    assert_eq!(ctl.apply_view(&after).unwrap().applied, Applied::Replaced);
}

#[test]
fn invalid_object_mid_way_keeps_the_policy_and_names_file_object_field() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), false);
    let src = ManifestDir::new(dir.path());
    let rec = Recorder::default();
    let mut ctl = PolicyController::new(&rec, settings("aksh4t"));
    ctl.reconcile(&src).unwrap();
    // A second policy file, valid first document, invalid second one.
    std::fs::write(
        dir.path().join("30-more.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ok, namespace: y}\nspec: {podSelector: {}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]\n",
    )
    .unwrap();
    let err = ctl.reconcile(&src).unwrap_err().to_string();
    assert!(err.contains("30-more.yaml"), "{err}");
    assert!(err.contains("NetworkPolicy x/broken"), "{err}");
    assert!(
        err.contains("spec.ingress[0].from[0].ipBlock.except[0]"),
        "{err}"
    );
    assert!(err.contains("192.168.0.0/16"), "{err}");
    assert_eq!(
        rec.scripts.lock().unwrap().len(),
        1,
        "nothing applied after the bad file"
    );
    // Unparseable YAML is reported with its file too.
    std::fs::write(dir.path().join("30-more.yaml"), "kind: [").unwrap();
    match src.load() {
        Err(SourceErrors::Invalid(e)) => assert!(e[0].file.ends_with("30-more.yaml")),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------ real nft

/// The node's namespace (deleted on drop).
struct Netns(aksnet_testkit::Netns);

impl Netns {
    fn new() -> Netns {
        aksnet_testkit::require_root();
        Netns(aksnet_testkit::Netns::create(&format!(
            "aksh4-pol{}",
            std::process::id()
        )))
    }
    fn list(&self, table: &str) -> String {
        let o = self.0.exec(&["nft", "list", "table", "inet", table]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

struct InNetns<'a>(&'a Netns);

impl ScriptBackend for InNetns<'_> {
    fn apply_elements(&self, op: &str, batch: &ElementBatch) -> Result<(), NftError> {
        self.elements_in_netns(op, batch)
    }

    fn run_script(&self, op: &str, script: &str) -> Result<(), NftError> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.0 .0.name(), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::Spawn {
                op: op.into(),
                binary: "nft".into(),
                source,
            })?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Failed {
                op: op.into(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into(),
            })
        }
    }
}

/// Element batches the controller sent over netlink (through the real backend's path).
static NETLINK_BATCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl InNetns<'_> {
    /// The real backend's element path (one nf_tables netlink batch), from a thread inside
    /// the test's namespace: a netlink socket belongs to the namespace it is opened in.
    fn elements_in_netns(&self, op: &str, batch: &ElementBatch) -> Result<(), NftError> {
        let path = self.0 .0.path();
        let (op, batch) = (op.to_string(), batch.clone());
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            NftCommand::default().apply_elements(&op, &batch)
        })
        .join()
        .unwrap()?;
        NETLINK_BATCHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn real_nft_apply_update_bad_input_and_restart() {
    let ns = Netns::new();
    let table = "aksh4-policy";
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), false);
    let src = ManifestDir::new(dir.path());
    let mut ctl = PolicyController::new(InNetns(&ns), settings(table));
    ctl.reconcile(&src).unwrap();
    let first = ns.list(table);
    assert!(first.contains("10.244.1.11 : jump gin-"), "{first}");
    assert!(first.contains("10.244.2.12 . tcp . 80"), "{first}");
    // Churn: element-only update accepted by the kernel, sent as one netlink batch.
    write_dir(dir.path(), true);
    let r = ctl.reconcile(&src).unwrap();
    assert!(matches!(r.applied, Applied::Updated { .. }));
    assert_eq!(NETLINK_BATCHES.load(std::sync::atomic::Ordering::SeqCst), 1);
    let second = ns.list(table);
    assert!(second.contains("10.244.1.13 : jump gin-"), "{second}");
    // Bad input: nothing changes in the kernel.
    std::fs::write(
        dir.path().join("20-policy.json"),
        POLICY.replace("\"pod\": \"a\"", "\"-pod\": \"a\""),
    )
    .unwrap();
    assert!(ctl.reconcile(&src).is_err());
    assert_eq!(ns.list(table), second);
    // Restart (a new controller, nothing in memory): whole replace, same table.
    write_dir(dir.path(), true);
    let mut restarted = PolicyController::new(InNetns(&ns), settings(table));
    assert_eq!(
        restarted.reconcile(&src).unwrap().applied,
        Applied::Replaced
    );
    assert_eq!(ns.list(table), second);
    // Policy deleted: the chains go, in one update.
    std::fs::remove_file(dir.path().join("20-policy.json")).unwrap();
    restarted.reconcile(&src).unwrap();
    let third = ns.list(table);
    assert!(
        !third.contains("jump gin-") && !third.contains("chain pi-"),
        "{third}"
    );
}
