//! Where the policy controller learns namespaces, pods and NetworkPolicies: the
//! [`PolicySource`] trait (also implemented by the Kubernetes API source, `kube_source.rs`)
//! and the manifest directory (files as `kubectl get -o yaml|json` prints them:
//! multi-document YAML or JSON, single objects or `kind: List`).
//!
//! A source delivers the whole view or an error naming file, object and field; it never
//! delivers half a view, so the policy in force stays in force when a file is bad.

use std::path::PathBuf;

use aksnet_policy::k8s;
use aksnet_policy::model::{Cluster, NamedPort, Namespace, Pod, Policy, Protocol};
use aksnet_policy::{validate, FieldError};
use serde_json::Value;

/// Everything policy enforcement needs to know about the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub cluster: Cluster,
    pub policies: Vec<Policy>,
}

/// One invalid object in one file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {error}")]
pub struct SourceError {
    pub file: String,
    pub error: FieldError,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceErrors {
    #[error("{dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A live source (the Kubernetes API) has no complete view yet.
    #[error("{source_name}: {reason}")]
    Unavailable { source_name: String, reason: String },
    #[error("{} invalid objects, previous policy kept:\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<SourceError>),
}

pub trait PolicySource {
    /// A name for logs and status (`manifests /etc/aksnet/policy`).
    fn describe(&self) -> String;
    /// The whole current view, or every error found.
    fn load(&self) -> Result<ClusterView, SourceErrors>;
    /// A cheap token that changes when the source may have changed (re-read on change).
    fn fingerprint(&self) -> Result<Vec<u8>, SourceErrors>;
}

/// A directory of manifests: every `*.yaml`, `*.yml` and `*.json` file, in name order.
#[derive(Debug, Clone)]
pub struct ManifestDir {
    pub dir: PathBuf,
}

impl ManifestDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ManifestDir { dir: dir.into() }
    }

    fn files(&self) -> Result<Vec<PathBuf>, SourceErrors> {
        let io = |source| SourceErrors::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if matches!(ext, "yaml" | "yml" | "json") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }
}

impl PolicySource for ManifestDir {
    fn describe(&self) -> String {
        format!("manifests {}", self.dir.display())
    }

    fn fingerprint(&self) -> Result<Vec<u8>, SourceErrors> {
        let mut fp = Vec::new();
        for f in self.files()? {
            fp.extend_from_slice(f.to_string_lossy().as_bytes());
            fp.push(0);
            let bytes = std::fs::read(&f).map_err(|source| SourceErrors::Io {
                dir: f.clone(),
                source,
            })?;
            fp.extend_from_slice(&bytes);
            fp.push(0);
        }
        Ok(fp)
    }

    fn load(&self) -> Result<ClusterView, SourceErrors> {
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        for f in self.files()? {
            let text = std::fs::read_to_string(&f).map_err(|source| SourceErrors::Io {
                dir: f.clone(),
                source,
            })?;
            let name = f.display().to_string();
            match documents(&text) {
                Ok(docs) => objects.extend(docs.into_iter().map(|d| (name.clone(), d))),
                Err(detail) => errors.push(SourceError {
                    file: name,
                    error: FieldError::new("document", "", "", detail),
                }),
            }
        }
        let view = view_of(objects, &mut errors);
        if errors.is_empty() {
            Ok(view)
        } else {
            Err(SourceErrors::Invalid(errors))
        }
    }
}

/// The documents of one file: JSON, or YAML with `---` separators; `kind: List` flattened.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        docs.push(serde_json::from_str::<Value>(text).map_err(|e| e.to_string())?);
    } else {
        for d in serde_norway::Deserializer::from_str(text) {
            let v: Value = serde::Deserialize::deserialize(d).map_err(|e| e.to_string())?;
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    let mut flat = Vec::new();
    for d in docs {
        match (d.get("kind").and_then(Value::as_str), d.get("items")) {
            (Some("List") | None, Some(Value::Array(items))) => flat.extend(items.iter().cloned()),
            _ => flat.push(d),
        }
    }
    Ok(flat)
}

fn object_name(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("object");
    let md = v.get("metadata");
    let ns = md.and_then(|m| m.get("namespace")).and_then(Value::as_str);
    let name = md
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

pub(crate) fn view_of(objects: Vec<(String, Value)>, errors: &mut Vec<SourceError>) -> ClusterView {
    let mut view = ClusterView::default();
    for (file, v) in objects {
        let obj = object_name(&v);
        let mut err = |field: &str, value: String, reason: String| {
            errors.push(SourceError {
                file: file.clone(),
                error: FieldError::new(&obj, field, value, reason),
            });
        };
        match v.get("kind").and_then(Value::as_str) {
            Some("Namespace") => match serde_json::from_value::<k8s::Namespace>(v.clone()) {
                Ok(ns) => match ns.metadata.name {
                    Some(name) => view.cluster.namespaces.push(Namespace {
                        name,
                        labels: ns.metadata.labels.unwrap_or_default(),
                    }),
                    None => err("metadata.name", String::new(), "missing".into()),
                },
                Err(e) => err("", String::new(), e.to_string()),
            },
            Some("Pod") => match serde_json::from_value::<k8s::Pod>(v.clone()) {
                Ok(p) => match pod(&p) {
                    Ok(Some(p)) => view.cluster.pods.push(p),
                    Ok(None) => {}
                    Err((field, value, reason)) => err(&field, value, reason),
                },
                Err(e) => err("", String::new(), e.to_string()),
            },
            Some("NetworkPolicy") => {
                match serde_json::from_value::<k8s::NetworkPolicy>(v.clone()) {
                    Ok(np) => match validate::policy(&np) {
                        Ok(p) => view.policies.push(p),
                        Err(errs) => errors.extend(errs.into_iter().map(|e| SourceError {
                            file: file.clone(),
                            error: e,
                        })),
                    },
                    Err(e) => err("spec", String::new(), e.to_string()),
                }
            }
            // Other kinds (Deployments, Services…) may share the files; they do not matter here.
            _ => {}
        }
    }
    view
}

type PodError = (String, String, String);

/// A Pod object → the model; `None` for pods without an address yet or on the host network
/// (policy does not apply to host-network pods: concept page "Network Policies").
fn pod(p: &k8s::Pod) -> Result<Option<Pod>, PodError> {
    let e = |f: &str, v: String, r: &str| (f.to_string(), v, r.to_string());
    let name = p
        .metadata
        .name
        .clone()
        .ok_or_else(|| e("metadata.name", String::new(), "missing"))?;
    let namespace = p
        .metadata
        .namespace
        .clone()
        .ok_or_else(|| e("metadata.namespace", String::new(), "missing"))?;
    if p.spec.host_network {
        return Ok(None);
    }
    let mut texts: Vec<&str> = p.status.pod_ips.iter().map(|i| i.ip.as_str()).collect();
    if texts.is_empty() {
        texts.extend(p.status.pod_ip.as_deref());
    }
    let mut ips = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        ips.push(t.parse().map_err(|_| {
            e(
                &format!("status.podIPs[{i}].ip"),
                t.to_string(),
                "not an IP address",
            )
        })?);
    }
    if ips.is_empty() {
        return Ok(None);
    }
    let mut ports = Vec::new();
    for (ci, c) in p.spec.containers.iter().enumerate() {
        for (pi, cp) in c.ports.iter().enumerate() {
            let at = format!("spec.containers[{ci}].ports[{pi}]");
            let port = u16::try_from(cp.container_port)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    e(
                        &format!("{at}.containerPort"),
                        cp.container_port.to_string(),
                        "must be 1-65535",
                    )
                })?;
            let proto = cp.protocol.as_deref().unwrap_or("TCP");
            let protocol = Protocol::parse(proto).ok_or_else(|| {
                e(
                    &format!("{at}.protocol"),
                    proto.to_string(),
                    "must be TCP, UDP or SCTP",
                )
            })?;
            ports.push(NamedPort {
                name: cp.name.clone(),
                port,
                protocol,
            });
        }
    }
    Ok(Some(Pod {
        namespace,
        name,
        labels: p.metadata.labels.clone().unwrap_or_default(),
        ips,
        ports,
        node: p.spec.node_name.clone(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn list_documents() {
        let d = super::documents("apiVersion: v1\nkind: List\nitems:\n- kind: Namespace\n  metadata: {name: x}\n---\nkind: Pod\nmetadata: {name: p}\n").unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        let dir = std::env::temp_dir().join(format!("aksh4-src{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: x\n    labels: {kubernetes.io/metadata.name: x, ns: x}\n").unwrap();
        let v = super::PolicySource::load(&super::ManifestDir::new(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(v.unwrap().cluster.namespaces.len(), 1);
    }
}
