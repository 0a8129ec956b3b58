//! The Kubernetes API as the agent's source (feature `kube`, issue 14 item 4): Namespaces,
//! Pods and NetworkPolicies for the policy controller (the same [`PolicySource`] trait as the
//! manifest directory), and Nodes (`spec.podCIDR(s)`, `status.addresses`) for the node's own
//! settings.
//!
//! Each kind is followed by kube-rs's `watcher`, which implements the API's list-then-watch
//! protocol (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
//! a list gives the objects and a `resourceVersion`, a watch from it gives ADDED, MODIFIED,
//! DELETED and BOOKMARK events; a dropped watch is resumed from the last resourceVersion seen
//! (a bookmark's included); a `410 Gone` (an ERROR event with code 410: the version left the
//! server's history) restarts with a new list whose result REPLACES what we held, so objects
//! deleted while we were away disappear. Errors are retried with kube-rs's default
//! exponential backoff (0.8 s to 30 s).
//!
//! Resync: every `relist` interval each kind is listed again from scratch, which also
//! replaces a connection that went silent without being closed (no client read timeout is
//! set for watches). Between events the policy loop re-applies the cached view every minute.
//!
//! A kind is usable only after its first complete list: until all three policy kinds have
//! one, [`KubeSource::load`] is an error, so the controller keeps what is in force and never
//! applies a partial view (a partial pod list would open or close the wrong pods).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::policy_source::{view_of, ClusterView, PolicySource, SourceErrors};

/// Where the API server and credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeConfigSource {
    /// A kubeconfig file (its current context).
    File(PathBuf),
    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, the token and CA under
    /// /var/run/secrets/kubernetes.io/serviceaccount
    /// (https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/).
    InCluster,
}

#[derive(Debug, Clone)]
pub struct KubeSettings {
    pub config: KubeConfigSource,
    /// Full relist of every kind this often (resync).
    pub relist: Duration,
}

impl KubeSettings {
    pub const DEFAULT_RELIST: Duration = Duration::from_secs(30 * 60);
}

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("in-cluster config (KUBERNETES_SERVICE_HOST, service account token): {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("start the Kubernetes watch thread: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The kinds followed; `POLICY_KINDS` must all be listed before a view is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Pod,
    NetworkPolicy,
    Node,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Namespace, Kind::Pod, Kind::NetworkPolicy, Kind::Node];
    const POLICY_KINDS: [Kind; 3] = [Kind::Namespace, Kind::Pod, Kind::NetworkPolicy];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::NetworkPolicy => "networkpolicies",
            Kind::Node => "nodes",
        }
    }
}

/// One kind's cache.
#[derive(Debug, Default, Clone)]
pub struct KindState {
    /// `namespace/name` (or `name`) → the object as the API sent it (managedFields dropped).
    pub objects: BTreeMap<String, Value>,
    /// Objects of a list in progress; they replace `objects` when it completes.
    pending: Option<BTreeMap<String, Value>>,
    /// A complete list has been received.
    pub synced: bool,
    /// Completed lists (the first one and every relist: after a 410, a resync or a restart).
    pub lists: u64,
    /// Watch and list errors (each retried after a backoff).
    pub errors: u64,
    pub last_error: Option<String>,
}

/// The caches of all kinds and a generation that changes with every applied event.
#[derive(Debug, Default, Clone)]
pub struct Caches {
    pub kinds: BTreeMap<Kind, KindState>,
    pub generation: u64,
}

fn key(v: &Value) -> String {
    let md = v.get("metadata");
    let field = |f: &str| md.and_then(|m| m.get(f)).and_then(Value::as_str);
    match (field("namespace"), field("name")) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl Caches {
    /// Applies one watcher event (pure: unit-tested without a server).
    pub fn apply(&mut self, kind: Kind, event: Event<Value>) {
        let k = self.kinds.entry(kind).or_default();
        match event {
            Event::Init => k.pending = Some(BTreeMap::new()),
            Event::InitApply(v) => {
                k.pending
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key(&v), v);
            }
            Event::InitDone => {
                k.objects = k.pending.take().unwrap_or_default();
                k.synced = true;
                k.lists += 1;
                k.last_error = None;
                self.generation += 1;
            }
            Event::Apply(v) => {
                k.objects.insert(key(&v), v);
                self.generation += 1;
            }
            Event::Delete(v) => {
                k.objects.remove(&key(&v));
                self.generation += 1;
            }
        }
    }

    pub fn error(&mut self, kind: Kind, error: String) {
        let k = self.kinds.entry(kind).or_default();
        k.errors += 1;
        k.last_error = Some(error);
    }

    fn synced(&self, kind: Kind) -> bool {
        self.kinds.get(&kind).is_some_and(|k| k.synced)
    }

    fn objects(&self, kind: Kind) -> impl Iterator<Item = &Value> {
        self.kinds
            .get(&kind)
            .into_iter()
            .flat_map(|k| k.objects.values())
    }

    /// The policy view, or why there is none yet.
    pub fn view(&self, source: &str) -> Result<ClusterView, SourceErrors> {
        let waiting: Vec<String> = Kind::POLICY_KINDS
            .iter()
            .filter(|k| !self.synced(**k))
            .map(
                |k| match self.kinds.get(k).and_then(|s| s.last_error.as_ref()) {
                    Some(e) => format!("{} (last error: {e})", k.as_str()),
                    None => k.as_str().to_string(),
                },
            )
            .collect();
        if !waiting.is_empty() {
            return Err(SourceErrors::Unavailable {
                source_name: source.to_string(),
                reason: format!("no complete list yet of {}", waiting.join(", ")),
            });
        }
        let objects = Kind::POLICY_KINDS
            .iter()
            .flat_map(|k| self.objects(*k))
            .map(|v| (source.to_string(), v.clone()))
            .collect();
        let mut errors = Vec::new();
        let view = view_of(objects, &mut errors);
        if errors.is_empty() {
            Ok(view)
        } else {
            Err(SourceErrors::Invalid(errors))
        }
    }

    /// The nodes known (only after the first list of nodes).
    pub fn nodes(&self) -> Option<Vec<NodeInfo>> {
        if !self.synced(Kind::Node) {
            return None;
        }
        Some(self.objects(Kind::Node).map(node_info).collect())
    }
}

/// What the agent uses of a Node object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// `spec.podCIDRs` (dual stack), else `spec.podCIDR`: kubenet's per-node pod range, given
    /// by the controller manager's node IPAM (`--allocate-node-cidrs`).
    pub pod_cidrs: Vec<IpNet>,
    /// `status.addresses`: (type, address), e.g. ("InternalIP", 10.240.0.4); only entries
    /// whose address parses as an IP (Hostname entries are not).
    pub addresses: Vec<(String, IpAddr)>,
}

impl NodeInfo {
    pub fn internal_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses
            .iter()
            .filter(|(t, _)| t == "InternalIP")
            .map(|(_, ip)| *ip)
    }
}

fn node_info(v: &Value) -> NodeInfo {
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let strings = |p: &str| -> Vec<String> {
        v.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut cidrs = strings("/spec/podCIDRs");
    if cidrs.is_empty() {
        cidrs.extend(
            v.pointer("/spec/podCIDR")
                .and_then(Value::as_str)
                .map(str::to_string),
        );
    }
    let addresses = v
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let t = e.get("type")?.as_str()?.to_string();
                    let ip = e.get("address")?.as_str()?.parse().ok()?;
                    Some((t, ip))
                })
                .collect()
        })
        .unwrap_or_default();
    NodeInfo {
        name,
        pod_cidrs: cidrs.iter().filter_map(|c| c.parse().ok()).collect(),
        addresses,
    }
}

struct Shared {
    caches: Mutex<Caches>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Caches> {
        // A panic while holding the lock cannot leave the caches half-updated in a way that
        // matters (every update is one map operation), so a poisoned lock is still used.
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running source: a thread with a tokio runtime follows the four kinds.
pub struct KubeSource {
    shared: Arc<Shared>,
    describe: String,
}

impl KubeSource {
    /// Reads the config (errors name the kubeconfig), then starts the watches.
    pub fn start(settings: KubeSettings) -> Result<KubeSource, KubeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(KubeError::Runtime)?;
        let config = rt.block_on(client_config(&settings.config))?;
        let describe = format!("kubernetes {}", config.cluster_url);
        let shared = Arc::new(Shared {
            caches: Mutex::new(Caches::default()),
            changed: Condvar::new(),
        });
        let client = {
            let _guard = rt.enter();
            Client::try_from(config).map_err(KubeError::Client)?
        };
        let s = shared.clone();
        std::thread::Builder::new()
            .name("aksnet-kube".into())
            .spawn(move || rt.block_on(follow_all(client, s, settings.relist)))
            .map_err(KubeError::Runtime)?;
        Ok(KubeSource { shared, describe })
    }

    /// Waits until every kind had a complete list or `timeout` passed; true when synced.
    pub fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut caches = self.shared.lock();
        loop {
            if Kind::ALL.iter().all(|k| caches.synced(*k)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            caches = match self.shared.changed.wait_timeout(caches, left) {
                Ok((c, _)) => c,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// A copy of the caches (counters for logs and metrics, tests).
    pub fn caches(&self) -> Caches {
        self.shared.lock().clone()
    }

    pub fn nodes(&self) -> Option<Vec<NodeInfo>> {
        self.shared.lock().nodes()
    }

    pub fn node(&self, name: &str) -> Option<NodeInfo> {
        self.nodes()?.into_iter().find(|n| n.name == name)
    }
}

impl PolicySource for KubeSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn load(&self) -> Result<ClusterView, SourceErrors> {
        self.shared.lock().view(&self.describe)
    }

    fn fingerprint(&self) -> Result<Vec<u8>, SourceErrors> {
        Ok(self.shared.lock().generation.to_le_bytes().to_vec())
    }
}

async fn client_config(source: &KubeConfigSource) -> Result<kube::Config, KubeError> {
    match source {
        KubeConfigSource::File(path) => {
            let err = |source| KubeError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(err)
        }
        KubeConfigSource::InCluster => kube::Config::incluster().map_err(KubeError::InCluster),
    }
}

async fn follow_all(client: Client, shared: Arc<Shared>, relist: Duration) {
    tokio::join!(
        follow(
            Api::<Namespace>::all(client.clone()),
            Kind::Namespace,
            &shared,
            relist
        ),
        follow(Api::<Pod>::all(client.clone()), Kind::Pod, &shared, relist),
        follow(
            Api::<NetworkPolicy>::all(client.clone()),
            Kind::NetworkPolicy,
            &shared,
            relist
        ),
        follow(Api::<Node>::all(client), Kind::Node, &shared, relist),
    );
}

/// Follows one kind forever: a watcher (list, watch, resume, relist on 410, backoff), and a
/// fresh one every `relist`.
async fn follow<K>(api: Api<K>, kind: Kind, shared: &Shared, relist: Duration)
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    loop {
        let stream = watcher(api.clone(), watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let resync = tokio::time::sleep(relist);
        let mut resync = std::pin::pin!(resync);
        loop {
            tokio::select! {
                _ = &mut resync => break,
                event = stream.next() => match event {
                    Some(Ok(event)) => {
                        let event = to_values(event);
                        shared.lock().apply(kind, event);
                        shared.changed.notify_all();
                    }
                    Some(Err(e)) => {
                        tracing::warn!(kind = kind.as_str(), error = %e, "kubernetes watch; retrying");
                        shared.lock().error(kind, e.to_string());
                    }
                    // The backoff stream never ends; should it, start again.
                    None => break,
                },
            }
        }
        tracing::debug!(kind = kind.as_str(), "resync: listing again");
    }
}

/// The objects as JSON values (what [`view_of`] reads), without `managedFields` (the
/// largest part of most objects, unused here).
fn to_values<K: Serialize>(event: Event<K>) -> Event<Value> {
    let v = |o: K| {
        let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
        if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("managedFields");
        }
        v
    };
    match event {
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
        Event::InitApply(o) => Event::InitApply(v(o)),
        Event::Apply(o) => Event::Apply(v(o)),
        Event::Delete(o) => Event::Delete(v(o)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {"containers": [{"name": "c"}], "nodeName": "node-0"},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}})
    }

    fn listed(c: &mut Caches, kind: Kind, objs: Vec<Value>) {
        c.apply(kind, Event::Init);
        for o in objs {
            c.apply(kind, Event::InitApply(o));
        }
        c.apply(kind, Event::InitDone);
    }

    #[test]
    fn no_view_before_every_policy_kind_is_listed() {
        let mut c = Caches::default();
        listed(&mut c, Kind::Pod, vec![pod("a", "10.244.0.5")]);
        c.error(Kind::Namespace, "403 Forbidden".into());
        let e = c.view("k").unwrap_err().to_string();
        assert!(e.contains("namespaces (last error: 403 Forbidden)"), "{e}");
        assert!(e.contains("networkpolicies"), "{e}");
        listed(
            &mut c,
            Kind::Namespace,
            vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})],
        );
        listed(&mut c, Kind::NetworkPolicy, vec![]);
        let v = c.view("k").unwrap();
        assert_eq!(v.cluster.pods.len(), 1);
        assert_eq!(v.cluster.namespaces.len(), 1);
    }

    #[test]
    fn a_relist_replaces_the_cache_and_a_half_done_list_is_not_seen() {
        let mut c = Caches::default();
        for k in Kind::POLICY_KINDS {
            listed(&mut c, k, vec![]);
        }
        listed(
            &mut c,
            Kind::Pod,
            vec![pod("a", "10.244.0.5"), pod("b", "10.244.0.6")],
        );
        c.apply(Kind::Pod, Event::Init);
        c.apply(Kind::Pod, Event::InitApply(pod("b", "10.244.0.6")));
        assert_eq!(
            c.view("k").unwrap().cluster.pods.len(),
            2,
            "old list until done"
        );
        c.apply(Kind::Pod, Event::InitDone);
        let names: Vec<_> = c
            .view("k")
            .unwrap()
            .cluster
            .pods
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["b"]);
        c.apply(Kind::Pod, Event::Delete(pod("b", "")));
        assert!(c.view("k").unwrap().cluster.pods.is_empty());
        assert_eq!(c.kinds[&Kind::Pod].lists, 3);
    }

    #[test]
    fn node_pod_cidrs_and_addresses() {
        let n = node_info(&json!({"metadata": {"name": "n0"},
            "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.240.0.4"},
                                     {"type": "Hostname", "address": "n0"}]}}));
        assert_eq!(n.pod_cidrs.len(), 2);
        assert_eq!(
            n.internal_ips().collect::<Vec<_>>(),
            ["10.240.0.4".parse::<IpAddr>().unwrap()]
        );
        let old =
            node_info(&json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.2.0/24"}}));
        assert_eq!(old.pod_cidrs, ["10.244.2.0/24".parse::<IpNet>().unwrap()]);
    }
}
