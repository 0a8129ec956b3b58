//! The request configuration on stdin (SPEC.md section 3) parsed into what the
//! two modes need. Every error names the field and the value.
//!
//! Fields are documented in crates/aksnet-cni/README.md.

use std::net::IpAddr;
use std::path::PathBuf;

use aksnet_cniproto::{CniResult, CniVersion, Route};
use aksnet_core::allocator::{Pool, Range, ValidPool};
use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::error::PluginError;

/// The node's data directory unless `dataDir` says otherwise (issue 2, item 3); the
/// attachments' state of this default lives in `/run/aksnet` (`aksnet_ipam::state_dir`).
pub const DEFAULT_DATA_DIR: &str = aksnet_ipam::DEFAULT_DATA_DIR;
/// kubenet's bridge on AKS (docs/azure.md#kubenet).
pub const DEFAULT_BRIDGE: &str = "cbr0";

/// Keys the plugin understands at the top level. Anything else is logged and
/// ignored: runtimes add keys of their own (SPEC.md section 3 says unknown keys
/// must be preserved, and a plugin should not reject them).
const KNOWN_KEYS: &[&str] = &[
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "mode",
    "bridge",
    "isGateway",
    "isDefaultGateway",
    "mtu",
    "hairpinMode",
    "promiscMode",
    "ipMasq",
    "dataDir",
    "uplink",
    "asyncDelete",
    "logFile",
    "logMaxBytes",
    "ipam",
    "dns",
    "capabilities",
    "runtimeConfig",
    "args",
    "prevResult",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
];

/// A container attachment as GC names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Kubenet(KubenetConf),
    NodeSubnet(NodeSubnetConf),
    PodSubnet(crate::podsubnet::PodSubnetConf),
    Overlay(crate::overlay::OverlayConf),
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Kubenet(_) => "kubenet",
            Mode::NodeSubnet(_) => "nodesubnet",
            Mode::PodSubnet(_) => "podsubnet",
            Mode::Overlay(_) => "overlay",
        }
    }

    /// The mode's datapath: the one place the mode is matched on.
    pub(crate) fn datapath(&self) -> &dyn crate::mode::Datapath {
        match self {
            Mode::Kubenet(k) => k,
            Mode::NodeSubnet(n) => n,
            Mode::PodSubnet(p) => p,
            Mode::Overlay(o) => o,
        }
    }
}

/// kubenet: bridge + veth + host-local-style IPAM (docs/azure.md#kubenet).
#[derive(Debug, Clone)]
pub struct KubenetConf {
    pub bridge: String,
    pub is_gateway: bool,
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    /// Range sets: one address per set per attachment, validated.
    pub pool: ValidPool,
    /// Routes given to the container; `None` = a default route via the gateway.
    pub routes: Option<Vec<Route>>,
}

/// nodesubnet: Azure transparent mode (docs/architecture.md#datapath-contracts).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSubnetConf {
    /// MTU of both veth ends; `None` = the uplink's MTU.
    pub mtu: Option<u32>,
    /// The uplink whose MTU pods copy; `None` = the device of the default route.
    pub uplink: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub version: CniVersion,
    pub name: String,
    pub mode: Mode,
    pub ip_masq: bool,
    /// DEL cuts the pod off and releases its address synchronously, and leaves
    /// the kernel's slow device teardown to a detached helper (see
    /// `crate::remove_host_veth`). `false` waits for it.
    pub async_delete: bool,
    pub data_dir: PathBuf,
    /// `runtimeConfig.ips` / `args.cni.ips` (the latter wins, CONVENTIONS.md).
    pub requested_ips: Vec<IpAddr>,
    pub requested_mac: Option<String>,
    pub dns: aksnet_cniproto::Dns,
    pub prev_result: Option<CniResult>,
    /// GC's `cni.dev/valid-attachments` (or the 1.1.0 tag's `cni.dev/attachments`);
    /// `None` when neither key is present.
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Unknown top-level keys, reported on stderr.
    pub ignored_keys: Vec<String>,
}

fn bad(field: impl Into<String>, value: impl Into<String>, why: impl Into<String>) -> PluginError {
    PluginError::Config {
        field: field.into(),
        value: value.into(),
        why: why.into(),
    }
}

/// `logFile` (read again by `crate::verblog`, which must not fail a call):
/// absolute without `..`, or `""` for no log; `logMaxBytes` at least 4 KiB.
fn check_log_settings(obj: &Map<String, Value>) -> Result<(), PluginError> {
    if let Some(path) = get_str(obj, "logFile", "")? {
        let p = std::path::Path::new(path);
        let parent = p.components().any(|c| c == std::path::Component::ParentDir);
        if !path.is_empty() && (!p.is_absolute() || parent) {
            return Err(bad(
                "logFile",
                path,
                "must be an absolute path without `..`, or \"\" for no log",
            ));
        }
    }
    match obj.get("logMaxBytes") {
        None => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| n >= 4096) => Ok(()),
        Some(v) => Err(bad(
            "logMaxBytes",
            show(v),
            "must be a whole number of bytes, at least 4096",
        )),
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

fn get_bool(
    obj: &Map<String, Value>,
    key: &str,
    default: bool,
    prefix: &str,
) -> Result<bool, PluginError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(bad(
            format!("{prefix}{key}"),
            show(v),
            "must be true or false",
        )),
    }
}

fn get_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Option<&'a str>, PluginError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(bad(format!("{prefix}{key}"), show(v), "must be a string")),
    }
}

fn get_mtu(obj: &Map<String, Value>) -> Result<Option<u32>, PluginError> {
    match obj.get("mtu") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(None),
            // 68 is IPv4's minimum MTU (RFC 791); 65535 the veth maximum.
            Some(m) if (68..=65535).contains(&m) => Ok(Some(m as u32)),
            _ => Err(bad(
                "mtu",
                show(v),
                "must be an integer from 68 to 65535 (0 = default)",
            )),
        },
    }
}

fn parse_ip(field: &str, v: &Value) -> Result<IpAddr, PluginError> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(field, show(v), "is not an IP address"))
}

fn parse_net(field: &str, v: &Value, strict: bool) -> Result<IpNet, PluginError> {
    let net: IpNet = v
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(field, show(v), "is not a CIDR (address/prefix)"))?;
    if strict && net != net.trunc() {
        return Err(bad(
            field,
            show(v),
            format!("has host bits set (the network is {})", net.trunc()),
        ));
    }
    Ok(net)
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$` and no path separators: the name is a file name.
fn validate_network_name(name: &str) -> Result<(), PluginError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "name",
            name,
            "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ (SPEC.md section 1)",
        ))
    }
}

impl PluginConfig {
    /// Parses the stdin bytes. Version errors come first so that a runtime that
    /// speaks another version gets code 1, not a config error.
    pub fn parse(stdin: &[u8]) -> Result<Self, PluginError> {
        let root: Value = serde_json::from_slice(stdin).map_err(|e| PluginError::Decode {
            what: "network configuration on stdin",
            source: e,
        })?;
        let obj = root
            .as_object()
            .ok_or_else(|| bad("(stdin)", show(&root), "must be a JSON object"))?;
        let version = parse_version(obj)?;
        let name =
            get_str(obj, "name", "")?.ok_or_else(|| bad("name", "(missing)", "is required"))?;
        validate_network_name(name)?;
        let mode = parse_mode(obj)?;
        let data_dir = parse_data_dir(obj)?;
        check_log_settings(obj)?;
        let (requested_ips, requested_mac) = parse_requested(obj)?;
        let ignored_keys = obj
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(PluginConfig {
            version,
            name: name.to_string(),
            mode,
            ip_masq: get_bool(obj, "ipMasq", false, "")?,
            async_delete: get_bool(obj, "asyncDelete", true, "")?,
            data_dir,
            requested_ips,
            requested_mac,
            dns: parse_dns(obj)?,
            prev_result: parse_prev_result(obj)?,
            valid_attachments: parse_valid_attachments(obj)?,
            ignored_keys,
        })
    }
}

/// `cniVersion`: required, and one this plugin speaks (else CNI code 1).
fn parse_version(obj: &Map<String, Value>) -> Result<CniVersion, PluginError> {
    let version_s = match obj.get("cniVersion") {
        Some(Value::String(s)) => s.as_str(),
        Some(v) => return Err(bad("cniVersion", show(v), "must be a string")),
        None => return Err(bad("cniVersion", "(missing)", "is required")),
    };
    CniVersion::parse(version_s).ok_or_else(|| PluginError::Version {
        given: version_s.to_string(),
    })
}

/// `mode` and the settings of its datapath.
fn parse_mode(obj: &Map<String, Value>) -> Result<Mode, PluginError> {
    let mode_s = get_str(obj, "mode", "")?.ok_or_else(|| {
        bad(
            "mode",
            "(missing)",
            "is required: \"kubenet\", \"nodesubnet\", \"podsubnet\" or \"overlay\"",
        )
    })?;
    Ok(match mode_s {
        "kubenet" | "bridge" => Mode::Kubenet(parse_kubenet(obj)?),
        // "transparent" is azure-vnet's name for the same datapath (docs/azure.md#transparent-mode).
        "nodesubnet" | "transparent" => Mode::NodeSubnet(parse_routed(obj)?),
        // Pod Subnet: the same routed datapath, addresses of the pod subnet.
        "podsubnet" => Mode::PodSubnet(crate::podsubnet::PodSubnetConf {
            routed: parse_routed(obj)?,
        }),
        // Overlay: the same routed datapath, addresses of the node's /24.
        "overlay" => Mode::Overlay(crate::overlay::OverlayConf {
            routed: parse_routed(obj)?,
        }),
        other => {
            return Err(bad(
                "mode",
                other,
                "is not supported: use \"kubenet\", \"nodesubnet\", \"podsubnet\" or \"overlay\"",
            ))
        }
    })
}

/// `dataDir` (or `ipam.dataDir`): absolute, without `..`.
fn parse_data_dir(obj: &Map<String, Value>) -> Result<PathBuf, PluginError> {
    let ipam = obj.get("ipam").and_then(Value::as_object);
    let data_dir = match get_str(obj, "dataDir", "")? {
        Some(d) => Some(d),
        None => match ipam {
            Some(i) => get_str(i, "dataDir", "ipam.")?,
            None => None,
        },
    };
    let data_dir = PathBuf::from(data_dir.unwrap_or(DEFAULT_DATA_DIR));
    if !data_dir.is_absolute() {
        return Err(bad(
            "dataDir",
            data_dir.display().to_string(),
            "must be an absolute path",
        ));
    }
    // A `..` could lead the state anywhere on the node (issue 10, item 7).
    if data_dir
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(bad(
            "dataDir",
            data_dir.display().to_string(),
            "must not contain `..`",
        ));
    }
    Ok(data_dir)
}

/// The addresses and MAC the runtime asks for: `runtimeConfig.ips`/`mac`, and
/// `args.cni.ips`, which wins over everything (CONVENTIONS.md "args").
fn parse_requested(obj: &Map<String, Value>) -> Result<(Vec<IpAddr>, Option<String>), PluginError> {
    let mut requested_ips = Vec::new();
    let mut requested_mac = None;
    if let Some(rc) = obj.get("runtimeConfig").and_then(Value::as_object) {
        if let Some(ips) = rc.get("ips") {
            requested_ips = parse_ip_list("runtimeConfig.ips", ips)?;
        }
        if let Some(mac) = rc.get("mac") {
            requested_mac = Some(
                mac.as_str()
                    .ok_or_else(|| bad("runtimeConfig.mac", show(mac), "must be a string"))?
                    .to_string(),
            );
        }
    }
    if let Some(ips) = obj
        .get("args")
        .and_then(|a| a.get("cni"))
        .and_then(|c| c.get("ips"))
    {
        requested_ips = parse_ip_list("args.cni.ips", ips)?;
    }
    Ok((requested_ips, requested_mac))
}

fn parse_dns(obj: &Map<String, Value>) -> Result<aksnet_cniproto::Dns, PluginError> {
    match obj.get("dns") {
        None | Some(Value::Null) => Ok(aksnet_cniproto::Dns::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| bad("dns", show(v), format!("is not a DNS object: {e}"))),
    }
}

fn parse_prev_result(obj: &Map<String, Value>) -> Result<Option<CniResult>, PluginError> {
    match obj.get("prevResult") {
        None | Some(Value::Null) => Ok(None),
        Some(v) if v.as_object().is_some_and(|o| o.is_empty()) => Ok(None),
        Some(v) => CniResult::from_value(v)
            .map(Some)
            .map_err(|e| PluginError::Decode {
                what: "prevResult",
                source: e,
            }),
    }
}

/// GC's `cni.dev/valid-attachments` (or the 1.1.0 tag's `cni.dev/attachments`).
fn parse_valid_attachments(
    obj: &Map<String, Value>,
) -> Result<Option<Vec<Attachment>>, PluginError> {
    match obj
        .get("cni.dev/valid-attachments")
        .or_else(|| obj.get("cni.dev/attachments"))
    {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_attachments(v).map(Some),
    }
}

/// The version the plugin answers with even when the config cannot be parsed
/// (for error objects): the config's `cniVersion` when it is readable.
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_string)
}

fn parse_ip_list(field: &str, v: &Value) -> Result<Vec<IpAddr>, PluginError> {
    let arr = v
        .as_array()
        .ok_or_else(|| bad(field, show(v), "must be a list of addresses"))?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            let s = e
                .as_str()
                .ok_or_else(|| bad(format!("{field}[{i}]"), show(e), "must be a string"))?;
            // "10.1.2.3/24" (CONVENTIONS.md) or a bare address.
            s.split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| bad(format!("{field}[{i}]"), s, "is not an IP address"))
        })
        .collect()
}

fn parse_attachments(v: &Value) -> Result<Vec<Attachment>, PluginError> {
    let field = "cni.dev/valid-attachments";
    let arr = v
        .as_array()
        .ok_or_else(|| bad(field, show(v), "must be a list of {containerID, ifname}"))?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            let id = e.get("containerID").and_then(Value::as_str);
            let ifname = e.get("ifname").and_then(Value::as_str);
            match (id, ifname) {
                (Some(id), Some(ifname)) => Ok(Attachment {
                    container_id: id.to_string(),
                    ifname: ifname.to_string(),
                }),
                _ => Err(bad(
                    format!("{field}[{i}]"),
                    show(e),
                    "needs string keys containerID and ifname",
                )),
            }
        })
        .collect()
}

/// The routed per-pod veth datapath's settings (nodesubnet, podsubnet, overlay).
fn parse_routed(obj: &Map<String, Value>) -> Result<NodeSubnetConf, PluginError> {
    Ok(NodeSubnetConf {
        mtu: get_mtu(obj)?,
        uplink: get_str(obj, "uplink", "")?.map(str::to_string),
    })
}

fn parse_kubenet(obj: &Map<String, Value>) -> Result<KubenetConf, PluginError> {
    let bridge = get_str(obj, "bridge", "")?
        .unwrap_or(DEFAULT_BRIDGE)
        .to_string();
    aksnet_cniproto::args::validate_ifname(&bridge)
        .map_err(|e| bad("bridge", &bridge, e.to_string()))?;
    let ipam = match obj.get("ipam") {
        Some(Value::Object(m)) => m,
        Some(v) => return Err(bad("ipam", show(v), "must be an object")),
        None => {
            return Err(bad(
                "ipam",
                "(missing)",
                "kubenet mode needs ipam.ranges (the node's pod CIDR)",
            ))
        }
    };
    if let Some(t) = get_str(ipam, "type", "ipam.")? {
        // The IPAM is built in; accepting host-local's name keeps bridge+host-local
        // conflists a drop-in. Delegating to another IPAM is not supported.
        if !matches!(t, "host-local" | "aksnet") {
            return Err(bad(
                "ipam.type",
                t,
                "is not supported: aksnet-cni has its own IPAM; use \"aksnet\", \"host-local\" or leave it out",
            ));
        }
    }
    let pool = Pool::Ranges(parse_ranges(ipam)?)
        .validate()
        .map_err(PluginError::Pool)?;
    let routes = match ipam.get("routes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .enumerate()
                .map(|(i, r)| {
                    let f = format!("ipam.routes[{i}]");
                    let dst = r
                        .get("dst")
                        .ok_or_else(|| bad(format!("{f}.dst"), "(missing)", "is required"))?;
                    let dst = parse_net(&format!("{f}.dst"), dst, false)?;
                    let gw = match r.get("gw") {
                        None | Some(Value::Null) => None,
                        Some(g) => Some(parse_ip(&format!("{f}.gw"), g)?),
                    };
                    Ok(Route::new(dst, gw))
                })
                .collect::<Result<Vec<_>, PluginError>>()?,
        ),
        Some(v) => return Err(bad("ipam.routes", show(v), "must be a list of {dst, gw}")),
    };
    Ok(KubenetConf {
        bridge,
        is_gateway: get_bool(obj, "isGateway", true, "")?,
        mtu: get_mtu(obj)?,
        hairpin_mode: get_bool(obj, "hairpinMode", false, "")?,
        promisc_mode: get_bool(obj, "promiscMode", false, "")?,
        pool,
        routes,
    })
}

/// Parses one range's syntax; the rules (inside the subnet, start <= end, room
/// to allocate) are the allocator's `Pool::validate`, so they live in one place.
fn parse_range(field: &str, r: &Map<String, Value>) -> Result<Range, PluginError> {
    let subnet = r
        .get("subnet")
        .ok_or_else(|| bad(format!("{field}.subnet"), "(missing)", "is required"))?;
    let subnet = parse_net(&format!("{field}.subnet"), subnet, false)?;
    let opt_ip = |k: &str| -> Result<Option<IpAddr>, PluginError> {
        match r.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => parse_ip(&format!("{field}.{k}"), v).map(Some),
        }
    };
    Ok(Range {
        subnet,
        range_start: opt_ip("rangeStart")?,
        range_end: opt_ip("rangeEnd")?,
        gateway: opt_ip("gateway")?,
    })
}

fn parse_ranges(ipam: &Map<String, Value>) -> Result<Vec<Vec<Range>>, PluginError> {
    match ipam.get("ranges") {
        Some(Value::Array(sets)) => {
            if sets.is_empty() {
                return Err(bad("ipam.ranges", "[]", "needs at least one range set"));
            }
            sets.iter()
                .enumerate()
                .map(|(i, set)| {
                    let set = set.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                        bad(
                            format!("ipam.ranges[{i}]"),
                            show(set),
                            "must be a non-empty list of ranges",
                        )
                    })?;
                    set.iter()
                        .enumerate()
                        .map(|(j, r)| {
                            let f = format!("ipam.ranges[{i}][{j}]");
                            let r = r
                                .as_object()
                                .ok_or_else(|| bad(&f, show(r), "must be an object with subnet"))?;
                            parse_range(&f, r)
                        })
                        .collect()
                })
                .collect()
        }
        Some(v) => Err(bad("ipam.ranges", show(v), "must be a list of range sets")),
        // host-local's older single-range shorthand: ipam.subnet/rangeStart/rangeEnd/gateway.
        None if ipam.contains_key("subnet") => Ok(vec![vec![parse_range("ipam", ipam)?]]),
        None => Err(bad(
            "ipam.ranges",
            "(missing)",
            "is required: e.g. [[{\"subnet\": \"10.244.1.0/24\"}]] (the node's pod CIDR)",
        )),
    }
}

#[cfg(test)]
mod tests;
