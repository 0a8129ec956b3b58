//! Bad input (issue 7, item 4): generated environments and stdin configs.
//! The plugin never panics, always fails with a valid CNI error object
//! carrying the code the spec assigns (containernetworking/cni SPEC.md "Error";
//! docs/cni-clients.md#errors: 1 version, 4 environment, 6 undecodable, 7 invalid config, 3 unknown
//! container), and changes nothing: no file appears under the configured
//! dataDir's parent, no link appears in the namespace it runs in.
//!
//! 12,000 cases run in-process through `aksnet_cni::run` (fast) and 300
//! through the real binary (exit status, stdout). Both run inside a fresh
//! sandbox netns `aksntbadin…`, so even a case that were wrongly accepted
//! could only create links there, where the check sees them.
//!
//! No generated case can legitimately change state: every ADD/CHECK names a
//! netns path that does not exist (the plugin opens it before anything else),
//! DEL, GC and STATUS only ever get a config with a defect, and VERSION
//! (which must succeed whatever the config) touches nothing.

#[path = "support/fault.rs"]
mod fault;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fault::{Call, NamedNs};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

const IN_PROCESS_CASES: u32 = 12_000;
const BINARY_CASES: u32 = 300;
const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const VERBS: [&str; 6] = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"];

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone)]
enum EnvDefect {
    None,
    NoCommand,
    UnknownCommand(String),
    NoContainerId,
    BadContainerId(String),
    NoIfname,
    BadIfname(String),
    NoNetns,
    BadCniArgs(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeKind {
    Kubenet,
    NodeSubnet,
    PodSubnet,
    Overlay,
}

/// One defect in an otherwise valid config, and the code it must produce.
#[derive(Debug, Clone)]
struct Mutation {
    /// Read in failure output (Debug) only.
    #[allow(dead_code)]
    what: &'static str,
    /// `None` removes the key.
    path: Vec<&'static str>,
    value: Option<Value>,
    code: u32,
}

#[derive(Debug, Clone)]
enum Stdin {
    /// A valid config (with noise keys the plugin must ignore).
    Valid {
        mode: ModeKind,
        version: &'static str,
        prev: bool,
        noise: Map<String, Value>,
    },
    Mutated {
        mode: ModeKind,
        version: &'static str,
        noise: Map<String, Value>,
        m: Mutation,
    },
    NotJson(Vec<u8>),
    NonObject(Value),
    /// A valid cniVersion and random known and unknown keys.
    Random(Map<String, Value>),
}

#[derive(Debug, Clone)]
struct Case {
    verb: String,
    env: EnvDefect,
    stdin: Stdin,
    /// Optional CNI_PATH and harmless CNI_ARGS noise.
    cni_path: Option<String>,
    /// A fallback defect for DEL/GC/STATUS given a valid config (see module doc).
    fallback: Mutation,
}

#[derive(Debug, PartialEq)]
enum Expect {
    VersionOk,
    Code(u32),
    OneOf(&'static [u32]),
}

fn is_attachment_verb(v: &str) -> bool {
    matches!(v, "ADD" | "DEL" | "CHECK")
}

impl Case {
    /// Makes every case harmless (module doc) and returns it.
    fn normalise(mut self) -> Self {
        let env_fails = self.env_fails();
        let harmful_verb = matches!(self.verb.as_str(), "DEL" | "GC" | "STATUS");
        if harmful_verb && !env_fails {
            self.stdin = match self.stdin {
                Stdin::Valid {
                    mode,
                    version,
                    noise,
                    ..
                } => Stdin::Mutated {
                    mode,
                    version,
                    noise,
                    m: self.fallback.clone(),
                },
                // A random object could happen to be valid: keep it to ADD/CHECK.
                Stdin::Random(_) => Stdin::NotJson(b"{".to_vec()),
                other => other,
            };
        }
        self
    }

    fn env_fails(&self) -> bool {
        match &self.env {
            EnvDefect::None => false,
            EnvDefect::NoCommand | EnvDefect::UnknownCommand(_) => true,
            EnvDefect::NoNetns => matches!(self.verb.as_str(), "ADD" | "CHECK"),
            _ => is_attachment_verb(&self.verb),
        }
    }

    fn expect(&self) -> Expect {
        if self.env_fails() {
            return Expect::Code(4);
        }
        if self.verb == "VERSION" {
            return Expect::VersionOk;
        }
        match &self.stdin {
            Stdin::NotJson(_) => Expect::Code(6),
            Stdin::NonObject(_) => Expect::Code(7),
            Stdin::Mutated { m, .. } => Expect::Code(m.code),
            Stdin::Random(_) => Expect::OneOf(&[1, 3, 6, 7]),
            Stdin::Valid { version, prev, .. } => match self.verb.as_str() {
                // The netns does not exist: "container unknown" (code 3).
                "ADD" => Expect::Code(3),
                "CHECK" if !matches!(*version, "0.4.0" | "1.0.0" | "1.1.0") => Expect::Code(1),
                "CHECK" if !prev => Expect::Code(7),
                "CHECK" => Expect::Code(3),
                other => panic!("normalise let a valid config through to {other}"),
            },
        }
    }

    fn env(&self, missing_netns: &Path) -> BTreeMap<String, String> {
        let mut e = BTreeMap::new();
        e.insert("CNI_COMMAND".to_string(), self.verb.clone());
        e.insert("CNI_CONTAINERID".to_string(), "aksnt-badinput".to_string());
        e.insert("CNI_IFNAME".to_string(), "eth0".to_string());
        e.insert("CNI_NETNS".to_string(), missing_netns.display().to_string());
        e.insert(
            "CNI_ARGS".to_string(),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=aksnt;K8S_POD_NAME=badinput".to_string(),
        );
        if let Some(p) = &self.cni_path {
            e.insert("CNI_PATH".to_string(), p.clone());
        }
        match &self.env {
            EnvDefect::None => {}
            EnvDefect::NoCommand => {
                e.remove("CNI_COMMAND");
            }
            EnvDefect::UnknownCommand(c) => {
                e.insert("CNI_COMMAND".into(), c.clone());
            }
            EnvDefect::NoContainerId => {
                e.remove("CNI_CONTAINERID");
            }
            EnvDefect::BadContainerId(c) => {
                e.insert("CNI_CONTAINERID".into(), c.clone());
            }
            EnvDefect::NoIfname => {
                e.remove("CNI_IFNAME");
            }
            EnvDefect::BadIfname(i) => {
                e.insert("CNI_IFNAME".into(), i.clone());
            }
            EnvDefect::NoNetns => {
                e.remove("CNI_NETNS");
            }
            EnvDefect::BadCniArgs(a) => {
                e.insert("CNI_ARGS".into(), a.clone());
            }
        }
        e
    }

    fn stdin(&self, data_dir: &Path) -> Vec<u8> {
        match &self.stdin {
            Stdin::Valid {
                mode,
                version,
                prev,
                noise,
            } => {
                let mut c = base_config(*mode, version, data_dir);
                if *prev {
                    c.insert("prevResult".into(), prev_result());
                }
                c.extend(noise.clone());
                Value::Object(c).to_string().into_bytes()
            }
            Stdin::Mutated {
                mode,
                version,
                noise,
                m,
            } => {
                let mut c = base_config(*mode, version, data_dir);
                c.extend(noise.clone());
                apply(&mut c, m);
                Value::Object(c).to_string().into_bytes()
            }
            Stdin::NotJson(b) => b.clone(),
            Stdin::NonObject(v) => v.to_string().into_bytes(),
            Stdin::Random(m) => {
                let mut c = m.clone();
                // Even if it happened to be valid, state could only go here.
                c.insert("dataDir".into(), json!(data_dir));
                Value::Object(c).to_string().into_bytes()
            }
        }
    }
}

fn base_config(mode: ModeKind, version: &str, data_dir: &Path) -> Map<String, Value> {
    let v = match mode {
        ModeKind::Kubenet => json!({
            "cniVersion": version, "name": "aksntbad", "type": "aksnet-cni", "mode": "kubenet",
            "bridge": "aksntbadbr", "dataDir": data_dir,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.97.0.0/24"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}
        }),
        ModeKind::NodeSubnet => json!({
            "cniVersion": version, "name": "aksntbad", "type": "aksnet-cni", "mode": "nodesubnet",
            "dataDir": data_dir
        }),
        ModeKind::PodSubnet => json!({
            "cniVersion": version, "name": "aksntbad", "type": "aksnet-cni", "mode": "podsubnet",
            "dataDir": data_dir
        }),
        ModeKind::Overlay => json!({
            "cniVersion": version, "name": "aksntbad", "type": "aksnet-cni", "mode": "overlay",
            "dataDir": data_dir
        }),
    };
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object"),
    }
}

fn prev_result() -> Value {
    json!({
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "azv0123456789a"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.98.0.5/22", "gateway": "169.254.1.1", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}]
    })
}

fn apply(c: &mut Map<String, Value>, m: &Mutation) {
    let (last, parents) = m.path.split_last().expect("mutation path");
    let mut cur = c;
    for p in parents {
        let next = cur.entry(p.to_string()).or_insert_with(|| json!({}));
        if !next.is_object() {
            *next = json!({});
        }
        cur = next.as_object_mut().expect("object");
    }
    match &m.value {
        Some(v) => {
            cur.insert(last.to_string(), v.clone());
        }
        None => {
            cur.remove(*last);
        }
    }
}

// ---------------------------------------------------------------- strategies

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("kubenet"),
            Just("nodesubnet"),
            Just("10.1.0.0/24"),
            Just("1.1.0"),
            Just("eth0"),
            Just("/tmp"),
            Just("")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values that are not a string (and not null, which means "absent").
fn non_string() -> impl Strategy<Value = Value> {
    arb_json().prop_filter("not a string or null", |v| !v.is_string() && !v.is_null())
}

fn non_bool() -> impl Strategy<Value = Value> {
    arb_json().prop_filter("not a bool or null", |v| !v.is_boolean() && !v.is_null())
}

fn m(what: &'static str, path: &[&'static str], value: Option<Value>, code: u32) -> Mutation {
    Mutation {
        what,
        path: path.to_vec(),
        value,
        code,
    }
}

fn common_mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        "[0-9]\\.[0-9]{1,2}\\.[0-9]|[a-z]{1,6}|[0-9]{1,3}|"
            .prop_filter("unsupported", |s| !VERSIONS.contains(&s.as_str()))
            .prop_map(|s| m("cniVersion unsupported", &["cniVersion"], Some(json!(s)), 1)),
        non_string().prop_map(|v| m("cniVersion not a string", &["cniVersion"], Some(v), 7)),
        Just(m("cniVersion missing", &["cniVersion"], None, 7)),
        Just(m("name missing", &["name"], None, 7)),
        "|[-_.][a-z0-9]{0,5}|[a-z]{1,5}[/ :!@#*][a-z]{0,5}".prop_map(|s| m(
            "name invalid",
            &["name"],
            Some(json!(s)),
            7
        )),
        non_string().prop_map(|v| m("name not a string", &["name"], Some(v), 7)),
        Just(m("mode missing", &["mode"], None, 7)),
        "[a-z]{0,10}"
            .prop_filter("unknown mode", |s| {
                !matches!(
                    s.as_str(),
                    "kubenet" | "bridge" | "nodesubnet" | "transparent" | "podsubnet" | "overlay"
                )
            })
            .prop_map(|s| m("mode unknown", &["mode"], Some(json!(s)), 7)),
        non_string().prop_map(|v| m("mode not a string", &["mode"], Some(v), 7)),
        // Starts with a letter or a dot, or is empty: never absolute.
        "[a-z.]{1,10}(/[a-z]{1,5}){0,2}|".prop_map(|s| m(
            "dataDir relative",
            &["dataDir"],
            Some(json!(s)),
            7
        )),
        non_string().prop_map(|v| m("dataDir not a string", &["dataDir"], Some(v), 7)),
        prop_oneof![
            (65_536u64..10_000_000).prop_map(|n| json!(n)),
            (1u64..68).prop_map(|n| json!(n)),
            (-100_000i64..0).prop_map(|n| json!(n)),
            (1.5f64..9000.0).prop_map(|f| json!(f)),
            ".{0,6}".prop_map(|s| json!(s)),
            any::<bool>().prop_map(|b| json!(b)),
        ]
        .prop_map(|v| m("mtu invalid", &["mtu"], Some(v), 7)),
        prop_oneof![
            non_string().prop_filter("not a list", |v| !v.is_array()),
            "[g-z][g-z:]{0,7}".prop_map(|s| json!([s])),
            any::<i32>().prop_map(|n| json!([n])),
        ]
        .prop_map(|v| m(
            "runtimeConfig.ips invalid",
            &["runtimeConfig", "ips"],
            Some(v),
            7
        )),
        non_string().prop_map(|v| m(
            "runtimeConfig.mac not a string",
            &["runtimeConfig", "mac"],
            Some(v),
            7
        )),
        prop_oneof![
            "[g-z][g-z:]{0,7}".prop_map(|s| json!([s])),
            any::<bool>().prop_map(|b| json!(b)),
        ]
        .prop_map(|v| m("args.cni.ips invalid", &["args", "cni", "ips"], Some(v), 7)),
        prop_oneof![
            ".{0,6}".prop_map(|s| json!(s)),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{1,6}".prop_map(|s| json!({"nameservers": [s]})),
            any::<i32>().prop_map(|n| json!({"nameservers": n})),
        ]
        .prop_map(|v| m("dns invalid", &["dns"], Some(v), 7)),
        prop_oneof![
            ".{0,6}".prop_map(|s| json!(s)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            any::<i32>().prop_map(|n| json!({"ips": n})),
            ".{0,6}".prop_map(|s| json!({"interfaces": s})),
        ]
        .prop_map(|v| m("prevResult undecodable", &["prevResult"], Some(v), 6)),
        prop_oneof![
            ".{0,6}".prop_map(|s| json!(s)),
            any::<i32>().prop_map(|n| json!([{"containerID": n, "ifname": "eth0"}])),
            ".{0,6}".prop_map(|s| json!([{"containerID": s}])),
        ]
        .prop_map(|v| m(
            "valid-attachments invalid",
            &["cni.dev/valid-attachments"],
            Some(v),
            7
        )),
        non_bool().prop_map(|v| m("ipMasq not a bool", &["ipMasq"], Some(v), 7)),
    ]
    .boxed()
}

fn kubenet_mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        "|[a-z]{16,20}|[a-z]{1,5}[/: ][a-z]{1,5}|\\.|\\.\\.".prop_map(|s| m(
            "bridge invalid",
            &["bridge"],
            Some(json!(s)),
            7
        )),
        non_string().prop_map(|v| m("bridge not a string", &["bridge"], Some(v), 7)),
        Just(m("ipam missing", &["ipam"], None, 7)),
        arb_json()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|v| m("ipam not an object", &["ipam"], Some(v), 7)),
        "[a-z-]{1,10}"
            .prop_filter("unsupported ipam", |s| !matches!(
                s.as_str(),
                "host-local" | "aksnet"
            ))
            .prop_map(|s| m(
                "ipam.type unsupported",
                &["ipam", "type"],
                Some(json!(s)),
                7
            )),
        prop_oneof![
            Just(json!([])),
            Just(json!([[]])),
            ".{0,6}".prop_map(|s| json!(s)),
            ".{0,10}".prop_map(|s| json!([[{"subnet": s}]])),
            (31u8..=32).prop_map(|p| json!([[{"subnet": format!("10.97.0.0/{p}")}]])),
            (1u8..=254).prop_map(|h| json!([[{"subnet": format!("10.97.0.{h}/24")}]])),
            (1u8..=254).prop_map(
                |h| json!([[{"subnet": "10.97.0.0/24", "rangeStart": format!("10.96.0.{h}")}]])
            ),
            ".{1,8}".prop_map(|s| json!([[{"subnet": "10.97.0.0/24", "gateway": s}]])),
            Just(json!([[{"rangeStart": "10.97.0.10"}]])),
        ]
        .prop_map(|v| m("ipam.ranges invalid", &["ipam", "ranges"], Some(v), 7)),
        prop_oneof![
            ".{0,6}".prop_map(|s| json!(s)),
            Just(json!([{"gw": "10.97.0.1"}])),
            "[g-z]{1,8}".prop_map(|s| json!([{"dst": s}])),
            "[g-z]{1,8}".prop_map(|s| json!([{"dst": "0.0.0.0/0", "gw": s}])),
        ]
        .prop_map(|v| m("ipam.routes invalid", &["ipam", "routes"], Some(v), 7)),
        non_bool().prop_map(|v| m("isGateway not a bool", &["isGateway"], Some(v), 7)),
        non_bool().prop_map(|v| m("hairpinMode not a bool", &["hairpinMode"], Some(v), 7)),
        non_bool().prop_map(|v| m("promiscMode not a bool", &["promiscMode"], Some(v), 7)),
    ]
    .boxed()
}

fn nodesubnet_mutation() -> BoxedStrategy<Mutation> {
    non_string()
        .prop_map(|v| m("uplink not a string", &["uplink"], Some(v), 7))
        .boxed()
}

fn noise() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("x-[a-zA-Z0-9]{1,8}", arb_json(), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

fn arb_mode() -> impl Strategy<Value = ModeKind> {
    prop_oneof![
        Just(ModeKind::Kubenet),
        Just(ModeKind::NodeSubnet),
        Just(ModeKind::PodSubnet),
        Just(ModeKind::Overlay)
    ]
}

fn arb_version() -> impl Strategy<Value = &'static str> {
    prop::sample::select(VERSIONS.to_vec())
}

fn arb_stdin() -> impl Strategy<Value = Stdin> {
    let mutated = (arb_mode(), arb_version(), noise(), prop::bool::ANY).prop_flat_map(
        |(mode, version, noise, specific)| {
            let muts = match (mode, specific) {
                (ModeKind::Kubenet, true) => kubenet_mutation(),
                // podsubnet and overlay take nodesubnet's datapath settings.
                (ModeKind::NodeSubnet | ModeKind::PodSubnet | ModeKind::Overlay, true) => {
                    nodesubnet_mutation()
                }
                _ => common_mutation(),
            };
            muts.prop_map(move |m| Stdin::Mutated {
                mode,
                version,
                noise: noise.clone(),
                m,
            })
        },
    );
    let random_keys = prop::collection::btree_map(
        prop_oneof![
            prop::sample::select(vec![
                "name",
                "mode",
                "bridge",
                "ipam",
                "mtu",
                "dns",
                "prevResult",
                "runtimeConfig",
                "args",
                "uplink",
                "isGateway",
                "ipMasq",
                "cni.dev/valid-attachments"
            ])
            .prop_map(str::to_string),
            "[a-zA-Z]{1,8}",
        ],
        arb_json(),
        0..6,
    );
    prop_oneof![
        6 => mutated,
        2 => (arb_mode(), arb_version(), prop::bool::ANY, noise())
            .prop_map(|(mode, version, prev, noise)| Stdin::Valid { mode, version, prev, noise }),
        1 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_filter("not JSON", |b| serde_json::from_slice::<Value>(b).is_err())
            .prop_map(Stdin::NotJson),
        1 => "\\{[a-z\":, ]{0,20}|\\[[0-9,]{0,8}|\"[a-z]{0,6}"
            .prop_filter("not JSON", |s| serde_json::from_str::<Value>(s).is_err())
            .prop_map(|s| Stdin::NotJson(s.into_bytes())),
        1 => arb_json()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(Stdin::NonObject),
        1 => (arb_version(), random_keys).prop_map(|(v, keys)| {
            let mut m: Map<String, Value> = keys.into_iter().collect();
            m.insert("cniVersion".into(), json!(v));
            Stdin::Random(m)
        }),
    ]
}

fn arb_env() -> impl Strategy<Value = EnvDefect> {
    prop_oneof![
        8 => Just(EnvDefect::None),
        1 => Just(EnvDefect::NoCommand),
        1 => "[A-Za-z]{0,8}"
            .prop_filter("unknown verb", |s| !VERBS.contains(&s.as_str()))
            .prop_map(EnvDefect::UnknownCommand),
        1 => Just(EnvDefect::NoContainerId),
        1 => "[-_.][a-z0-9]{0,5}|[a-z]{1,4}[/ :!$][a-z]{0,4}".prop_map(EnvDefect::BadContainerId),
        1 => Just(EnvDefect::NoIfname),
        1 => "[a-z]{16,20}|[a-z]{1,5}[/: \t][a-z]{1,5}|\\.|\\.\\.".prop_map(EnvDefect::BadIfname),
        1 => Just(EnvDefect::NoNetns),
        1 => prop_oneof![
            "[a-z]{1,8}",
            "FOO[A-Z]{0,3}=[a-z]{0,4}",
            "K8S_POD_NAME=x;IP=[g-z]{1,6}",
            "IP=10\\.[3-9][0-9]{2}\\.0\\.1",
        ]
        .prop_map(EnvDefect::BadCniArgs),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(VERBS.to_vec()),
        arb_env(),
        arb_stdin(),
        prop::option::of("(/[a-z]{1,6}){1,3}(:/[a-z]{1,6}){0,2}"),
        common_mutation(),
    )
        .prop_map(|(verb, env, stdin, cni_path, fallback)| {
            Case {
                verb: verb.to_string(),
                env,
                stdin,
                cni_path,
                fallback,
            }
            .normalise()
        })
}

// ---------------------------------------------------------------- checks

struct Sandbox {
    ns: NamedNs,
    /// dataDir of every config is `<root>/data`; the root must stay empty.
    root: tempfile::TempDir,
    missing_netns: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Self {
        let ns = NamedNs::create(&format!("aksntbadin{tag}"));
        let root = tempfile::Builder::new()
            .prefix("aksnt-badinput-")
            .tempdir()
            .expect("tempdir");
        let missing_netns = root.path().join("no-such-netns");
        Sandbox {
            ns,
            root,
            missing_netns,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn assert_unchanged(&self, case: &Case) -> Result<(), TestCaseError> {
        let files: Vec<_> = std::fs::read_dir(self.root.path())
            .expect("read sandbox root")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        if !files.is_empty() {
            // Remove it so that the shrunk case is the one that creates it.
            let _ = std::fs::remove_dir_all(self.data_dir());
            return Err(TestCaseError::fail(format!(
                "state appeared {files:?} for {case:?}"
            )));
        }
        let links = self.ns.links();
        prop_assert_eq!(
            links,
            vec!["lo".to_string()],
            "links appeared for {:?}",
            case
        );
        Ok(())
    }
}

/// Checks a CNI error object: `code` as expected, a non-empty `msg`.
fn check_error_json(v: &Value, expect: &Expect, case: &Case) -> Result<(), TestCaseError> {
    let code = v["code"].as_u64().map(|c| c as u32);
    let Some(code) = code else {
        return Err(TestCaseError::fail(format!(
            "error object without code: {v} for {case:?}"
        )));
    };
    match expect {
        Expect::Code(c) => prop_assert_eq!(code, *c, "wrong code in {} for {:?}", v, case),
        Expect::OneOf(cs) => prop_assert!(
            cs.contains(&code),
            "code {code} not in {cs:?}: {v} for {case:?}"
        ),
        Expect::VersionOk => {
            return Err(TestCaseError::fail(format!(
                "VERSION failed: {v} for {case:?}"
            )))
        }
    }
    prop_assert!(
        v["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "error without msg: {v} for {case:?}"
    );
    if let Some(d) = v.get("details") {
        prop_assert!(d.is_string(), "details not a string: {v}");
    }
    Ok(())
}

fn check_version_json(v: &Value, case: &Case) -> Result<(), TestCaseError> {
    prop_assert!(
        v["cniVersion"].is_string(),
        "VERSION without cniVersion: {v} for {case:?}"
    );
    prop_assert!(
        v["supportedVersions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "1.1.0")),
        "VERSION without supportedVersions: {v} for {case:?}"
    );
    Ok(())
}

fn in_process(sb: &Sandbox, case: &Case) -> Result<(), TestCaseError> {
    let env = case.env(&sb.missing_netns);
    let stdin = case.stdin(&sb.data_dir());
    let expect = case.expect();
    let out = aksnet_cni::run(|k| env.get(k).cloned(), &stdin);
    // The state check runs (and cleans up) whatever the verdict, so that a
    // failing case never leaves state that a later case would be blamed for.
    let unchanged = sb.assert_unchanged(case);
    match (out, &expect) {
        (Ok(Some(v)), Expect::VersionOk) => check_version_json(&v, case)?,
        (Ok(other), _) => {
            return Err(TestCaseError::fail(format!(
                "accepted (expected {expect:?}): {other:?} for {case:?}"
            )))
        }
        (Err(e), _) => {
            prop_assert_eq!(
                e.code().code(),
                e.to_cni_error().code,
                "code() and to_cni_error() disagree"
            );
            let v: Value = serde_json::from_str(&e.to_cni_error().to_json())
                .map_err(|j| TestCaseError::fail(format!("error JSON does not parse: {j}")))?;
            check_error_json(&v, &expect, case)?;
        }
    }
    unchanged
}

fn through_binary(sb: &Sandbox, case: &Case) -> Result<(), TestCaseError> {
    let env = case.env(&sb.missing_netns);
    // The OS environment cannot carry NUL bytes; such cases are in-process only.
    if env
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Ok(());
    }
    let mut env = env;
    // The per-call log stays off (the default file is /var/log's).
    env.insert("AKSNET_CNI_LOG_FILE".to_string(), String::new());
    let call = Call {
        env,
        stdin: case.stdin(&sb.data_dir()),
    };
    let out = sb.ns.run(&call);
    let unchanged = sb.assert_unchanged(case);
    let expect = case.expect();
    prop_assert!(
        out.code.is_some(),
        "killed by a signal (panic=abort?): {out:?} for {case:?}"
    );
    prop_assert!(
        !out.stderr.contains("panicked"),
        "panicked: {} for {case:?}",
        out.stderr
    );
    let v: Value = serde_json::from_str(out.stdout.trim()).map_err(|e| {
        TestCaseError::fail(format!(
            "stdout is not one JSON object ({e}): {out:?} for {case:?}"
        ))
    })?;
    if expect == Expect::VersionOk {
        prop_assert_eq!(out.code, Some(0), "VERSION failed: {:?}", out);
        check_version_json(&v, case)?;
    } else {
        prop_assert!(
            out.code != Some(0),
            "exit 0 (expected {expect:?}): {out:?} for {case:?}"
        );
        check_error_json(&v, &expect, case)?;
    }
    unchanged
}

fn run_cases(tag: &str, cases: u32, f: fn(&Sandbox, &Case) -> Result<(), TestCaseError>) {
    let sb = Sandbox::new(tag);
    let outcome = sb
        .ns
        .netns
        .run(|| {
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                max_global_rejects: cases * 4,
                ..Config::default()
            });
            // The failure as text: TestError<Case> is large to carry out of the thread.
            runner
                .run(&arb_case(), |case| f(&sb, &case))
                .map_err(|e| e.to_string())
        })
        .expect("enter sandbox netns");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[test]
fn generated_bad_input_in_process_fails_cleanly_and_changes_nothing() {
    run_cases("p", IN_PROCESS_CASES, in_process);
}

#[test]
fn generated_bad_input_through_the_binary_fails_cleanly_and_changes_nothing() {
    run_cases("b", BINARY_CASES, through_binary);
}

/// The generator covers every expectation (a guard against a generator that
/// silently stopped producing some class of defect).
#[test]
fn generator_covers_every_error_class() {
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    let strategy = arb_case();
    for _ in 0..3000 {
        let case = strategy.new_tree(&mut runner).expect("generate").current();
        seen.insert(format!("{:?}", case.expect()));
    }
    for want in [
        "VersionOk",
        "Code(1)",
        "Code(3)",
        "Code(4)",
        "Code(6)",
        "Code(7)",
        "OneOf([1, 3, 6, 7])",
    ] {
        assert!(
            seen.contains(want),
            "generator never produced {want}: {seen:?}"
        );
    }
}
