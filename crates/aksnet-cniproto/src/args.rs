//! The `CNI_*` environment (SPEC.md section 2 "Parameters") and `CNI_ARGS`
//! (CONVENTIONS.md "CNI_ARGS"), validated the way libcni's skel does
//! (docs/cni-clients.md#environment).

use std::net::IpAddr;
use std::path::PathBuf;

use thiserror::Error;

/// The verb in `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "GC" => Self::Gc,
            "STATUS" => Self::Status,
            "VERSION" => Self::Version,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Gc => "GC",
            Self::Status => "STATUS",
            Self::Version => "VERSION",
        }
    }
}

/// An environment problem; always CNI error code 4 (or 4 for CNI_ARGS too).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvError {
    #[error("required environment variables [{}] missing", .0.join(","))]
    Missing(Vec<&'static str>),
    #[error("CNI_COMMAND {0:?} is not one of ADD, DEL, CHECK, GC, STATUS, VERSION")]
    UnknownCommand(String),
    #[error("CNI_CONTAINERID {0:?} is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]
    BadContainerId(String),
    #[error("CNI_IFNAME {name:?} is invalid: {why}")]
    BadIfname { name: String, why: &'static str },
    #[error("CNI_ARGS pair {0:?} is not KEY=VALUE")]
    BadArgsPair(String),
    #[error("CNI_ARGS key {0:?} is unknown (set IgnoreUnknown=1 to ignore unknown keys)")]
    UnknownArg(String),
    #[error("CNI_ARGS {key}={value:?} is not an IP address")]
    BadArgIp { key: String, value: String },
    #[error("{key} is {len} bytes long; at most {max} are accepted")]
    TooLong { key: String, len: usize, max: usize },
}

/// The longest values accepted for what the plugin stores with a reservation
/// (issue 10, item 7: unbounded values made the state file grow without limit).
/// Kubernetes' own limits where it has one: a namespace is a DNS label (63),
/// a pod name a DNS subdomain (253)
/// (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/).
/// The rest are generous bounds: a pod UID is a 36-character UUID, container
/// IDs of containerd, CRI-O and podman are 64 hex digits.
pub const MAX_ARG_LEN: &[(&str, usize)] = &[
    ("K8S_POD_NAMESPACE", 63),
    ("K8S_POD_NAME", 253),
    ("K8S_POD_UID", 128),
    ("K8S_POD_INFRA_CONTAINER_ID", 256),
    ("CNI_CONTAINERID", 1024),
];

fn check_len(key: &str, value: &str) -> Result<(), EnvError> {
    match MAX_ARG_LEN.iter().find(|(k, _)| *k == key) {
        Some((_, max)) if value.len() > *max => Err(EnvError::TooLong {
            key: key.to_string(),
            len: value.len(),
            max: *max,
        }),
        _ => Ok(()),
    }
}

/// Parsed `CNI_ARGS`: the keys runtimes actually send (docs/cni-clients.md#cni_args).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub ignore_unknown: bool,
    /// `IP=` (podman passes `--ip` here); a comma-separated list is accepted.
    pub ips: Vec<IpAddr>,
    /// `MAC=` (podman `--mac-address`).
    pub mac: Option<String>,
    pub k8s_pod_namespace: Option<String>,
    pub k8s_pod_name: Option<String>,
    pub k8s_pod_infra_container_id: Option<String>,
    pub k8s_pod_uid: Option<String>,
}

impl CniArgs {
    /// Parses `K=V;K=V`. Unknown keys are an error unless `IgnoreUnknown` is true
    /// (the same rule as the reference plugins' `types.LoadArgs`).
    pub fn parse(s: &str) -> Result<Self, EnvError> {
        let mut out = CniArgs::default();
        let mut unknown = Vec::new();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| EnvError::BadArgsPair(pair.to_string()))?;
            check_len(k, v)?;
            match k {
                "IgnoreUnknown" => {
                    out.ignore_unknown = matches!(v.to_ascii_lowercase().as_str(), "1" | "true")
                }
                "IP" => {
                    for part in v.split(',').filter(|p| !p.is_empty()) {
                        // Accept "10.0.0.5" and "10.0.0.5/24" (the prefix is the pool's).
                        let addr = part.split('/').next().unwrap_or(part);
                        let ip = addr.parse().map_err(|_| EnvError::BadArgIp {
                            key: k.to_string(),
                            value: v.to_string(),
                        })?;
                        out.ips.push(ip);
                    }
                }
                "MAC" => out.mac = Some(v.to_string()),
                "K8S_POD_NAMESPACE" => out.k8s_pod_namespace = non_empty(v),
                "K8S_POD_NAME" => out.k8s_pod_name = non_empty(v),
                "K8S_POD_INFRA_CONTAINER_ID" => out.k8s_pod_infra_container_id = non_empty(v),
                "K8S_POD_UID" => out.k8s_pod_uid = non_empty(v),
                other => unknown.push(other.to_string()),
            }
        }
        if let Some(first) = unknown.into_iter().next() {
            if !out.ignore_unknown {
                return Err(EnvError::UnknownArg(first));
            }
        }
        Ok(out)
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

/// Everything a verb needs from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdArgs {
    pub command: Command,
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<PathBuf>,
}

impl CmdArgs {
    /// Reads and validates the `CNI_*` variables through `get` (the process
    /// environment in the binary, a map in tests).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let get_ne = |k: &str| get(k).filter(|v| !v.is_empty());
        let command_s = get_ne("CNI_COMMAND").ok_or(EnvError::Missing(vec!["CNI_COMMAND"]))?;
        let command = Command::parse(&command_s).ok_or(EnvError::UnknownCommand(command_s))?;

        // Which variables each verb requires (SPEC.md section 2; CNI_NETNS is
        // optional for DEL so that DEL works after the netns is gone, docs/cni-clients.md#del).
        let needs_attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        let mut missing = Vec::new();
        let container_id = get_ne("CNI_CONTAINERID");
        let ifname = get_ne("CNI_IFNAME");
        let netns = get_ne("CNI_NETNS");
        if needs_attachment {
            if container_id.is_none() {
                missing.push("CNI_CONTAINERID");
            }
            if ifname.is_none() {
                missing.push("CNI_IFNAME");
            }
            if netns.is_none() && command != Command::Del {
                missing.push("CNI_NETNS");
            }
        }
        if !missing.is_empty() {
            return Err(EnvError::Missing(missing));
        }
        let container_id = container_id.unwrap_or_default();
        let ifname = ifname.unwrap_or_default();
        if needs_attachment {
            check_len("CNI_CONTAINERID", &container_id)?;
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        let args = match get("CNI_ARGS") {
            Some(s) if needs_attachment => CniArgs::parse(&s)?,
            _ => CniArgs::default(),
        };
        let path = get("CNI_PATH")
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(CmdArgs {
            command,
            container_id,
            netns: netns.map(PathBuf::from),
            ifname,
            args,
            path,
        })
    }
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$` (SPEC.md section 2, CNI_CONTAINERID).
pub fn validate_container_id(id: &str) -> Result<(), EnvError> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EnvError::BadContainerId(id.to_string()))
    }
}

/// The kernel's and skel's rules for an interface name: non-empty, at most 15
/// bytes (IFNAMSIZ-1), not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), EnvError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 15 {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("it is . or ..")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("it contains '/', ':' or whitespace")
    } else {
        None
    };
    match why {
        Some(why) => Err(EnvError::BadIfname {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn add_needs_id_ifname_netns() {
        let e = CmdArgs::from_env(env(&[("CNI_COMMAND", "ADD")])).unwrap_err();
        assert_eq!(
            e,
            EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS"])
        );
        assert_eq!(
            e.to_string(),
            "required environment variables [CNI_CONTAINERID,CNI_IFNAME,CNI_NETNS] missing"
        );
    }

    #[test]
    fn del_does_not_need_netns() {
        let a = CmdArgs::from_env(env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap();
        assert_eq!(a.command, Command::Del);
        assert_eq!(a.netns, None);
    }

    #[test]
    fn gc_status_version_need_nothing() {
        for c in ["GC", "STATUS", "VERSION"] {
            assert!(CmdArgs::from_env(env(&[("CNI_COMMAND", c)])).is_ok(), "{c}");
        }
    }

    #[test]
    fn libcni_version_probe_is_accepted() {
        // libcni sends these dummies with VERSION (docs/cni-clients.md#environment).
        let a = CmdArgs::from_env(env(&[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_CONTAINERID", ""),
            ("CNI_NETNS", "dummy"),
            ("CNI_IFNAME", "dummy"),
            ("CNI_PATH", "dummy"),
        ]))
        .unwrap();
        assert_eq!(a.command, Command::Version);
    }

    #[test]
    fn unknown_command() {
        assert!(matches!(
            CmdArgs::from_env(env(&[("CNI_COMMAND", "ATTACH")])),
            Err(EnvError::UnknownCommand(_))
        ));
    }

    #[test]
    fn container_id_rules() {
        for ok in ["a", "default-k1", "abc_1.2-3", "0"] {
            assert!(validate_container_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "_a", "a b", "a/b", "é"] {
            assert!(validate_container_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ifname_rules() {
        for ok in ["eth0", "net1", "a", "123456789012345"] {
            assert!(validate_ifname(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "1234567890123456"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cni_args_podman_shape() {
        let a =
            CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=c1;MAC=02:00:00:00:00:01;IP=10.88.0.7")
                .unwrap();
        assert!(a.ignore_unknown);
        assert_eq!(a.k8s_pod_name.as_deref(), Some("c1"));
        assert_eq!(a.ips, vec!["10.88.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.mac.as_deref(), Some("02:00:00:00:00:01"));
    }

    #[test]
    fn cni_args_kubelet_shape() {
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1",
        )
        .unwrap();
        assert_eq!(a.k8s_pod_namespace.as_deref(), Some("default"));
        assert_eq!(a.k8s_pod_uid.as_deref(), Some("u1"));
    }

    #[test]
    fn cni_args_errors() {
        assert_eq!(
            CniArgs::parse("FOO=1"),
            Err(EnvError::UnknownArg("FOO".into()))
        );
        assert!(CniArgs::parse("FOO=1;IgnoreUnknown=1").is_ok());
        assert_eq!(
            CniArgs::parse("novalue"),
            Err(EnvError::BadArgsPair("novalue".into()))
        );
        assert!(matches!(
            CniArgs::parse("IP=10.0.0.300"),
            Err(EnvError::BadArgIp { .. })
        ));
        assert_eq!(
            CniArgs::parse("IP=10.0.0.1/24,fd00::5").unwrap().ips.len(),
            2
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod length_tests {
    use super::*;

    #[test]
    fn stored_values_are_bounded() {
        let long = format!("K8S_POD_NAME={}", "p".repeat(254));
        assert!(matches!(
            CniArgs::parse(&long),
            Err(EnvError::TooLong { ref key, len: 254, max: 253 }) if key == "K8S_POD_NAME"
        ));
        assert!(CniArgs::parse(&format!("K8S_POD_NAME={}", "p".repeat(253))).is_ok());
        assert!(CniArgs::parse(&format!("K8S_POD_NAMESPACE={}", "n".repeat(64))).is_err());
        let env = |k: &str| match k {
            "CNI_COMMAND" => Some("ADD".to_string()),
            "CNI_CONTAINERID" => Some("c".repeat(1025)),
            "CNI_IFNAME" => Some("eth0".to_string()),
            "CNI_NETNS" => Some("/x".to_string()),
            _ => None,
        };
        assert!(matches!(
            CmdArgs::from_env(env),
            Err(EnvError::TooLong { .. })
        ));
    }
}
