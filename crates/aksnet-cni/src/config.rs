//! The request configuration on stdin (SPEC.md section 3) parsed into what the
//! two modes need. Every error names the field and the value.
//!
//! Fields are documented in crates/aksnet-cni/README.md.

use std::net::IpAddr;
use std::path::PathBuf;

use aksnet_cniproto::{CniResult, CniVersion, Route};
use aksnet_core::allocator::{Pool, Range, ValidPool};
use aksnet_core::naming::POD_MTU;
use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::error::PluginError;
use raw::{RawConfig, RawIpam, RawRange};

mod raw;

/// The node's data directory unless `dataDir` says otherwise (issue 2, item 3); the
/// attachments' state of this default lives in `/run/aksnet` (`aksnet_ipam::state_dir`).
pub const DEFAULT_DATA_DIR: &str = aksnet_ipam::DEFAULT_DATA_DIR;
/// kubenet's bridge on AKS (docs/azure.md#kubenet).
pub const DEFAULT_BRIDGE: &str = "cbr0";

/// Top-level keys the plugin accepts without reading them, besides those of
/// `raw::RawConfig` (`cniVersion` is read before it). Anything else is logged and
/// ignored: runtimes add keys of their own (SPEC.md section 3 says unknown keys
/// must be preserved, and a plugin should not reject them).
const ACCEPTED_KEYS: &[&str] = &[
    "cniVersion",
    "cniVersions",
    "type",
    "isDefaultGateway",
    "capabilities",
];

/// Whether `key` is one the plugin reads (`read`: the derive's field names) or accepts.
fn is_known_key(key: &str, read: &[&str]) -> bool {
    ACCEPTED_KEYS.contains(&key) || read.contains(&key)
}

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
fn check_log_settings(raw: &RawConfig) -> Result<(), PluginError> {
    if let Some(path) = raw.log_file.as_deref() {
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
    match raw.log_max_bytes {
        Some(n) if n < 4096 => Err(bad(
            "logMaxBytes",
            n.to_string(),
            "must be a whole number of bytes, at least 4096",
        )),
        _ => Ok(()),
    }
}

/// A JSON value for an error message, cut to 80 characters.
pub(crate) fn show(v: &Value) -> String {
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

/// `mtu`: absent, null or 0 is the default.
fn parse_mtu(raw: &RawConfig) -> Result<Option<u32>, PluginError> {
    let Some(given) = raw.mtu.filter(|m| *m != 0) else {
        return Ok(None);
    };
    match u32::try_from(given) {
        Ok(m) if POD_MTU.contains(&m) => Ok(Some(m)),
        _ => Err(bad(
            "mtu",
            given.to_string(),
            format!(
                "must be an integer from {} to {} (0 = default)",
                POD_MTU.start(),
                POD_MTU.end()
            ),
        )),
    }
}

fn parse_ip(field: &str, s: &str) -> Result<IpAddr, PluginError> {
    s.parse().map_err(|_| bad(field, s, "is not an IP address"))
}

fn parse_net(field: &str, s: &str) -> Result<IpNet, PluginError> {
    s.parse()
        .map_err(|_| bad(field, s, "is not a CIDR (address/prefix)"))
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

/// `cniVersion`, read before anything else so that a runtime that speaks another
/// version gets code 1, not a config error.
fn parse_version(obj: &Map<String, Value>) -> Result<CniVersion, PluginError> {
    let given = match obj.get("cniVersion") {
        Some(Value::String(s)) => s.as_str(),
        Some(v) => return Err(bad("cniVersion", show(v), "must be a string")),
        None => return Err(bad("cniVersion", "(missing)", "is required")),
    };
    CniVersion::parse(given).ok_or_else(|| PluginError::Version {
        given: given.to_string(),
    })
}

impl PluginConfig {
    /// Parses the stdin bytes: JSON, the version, the shape (serde derive), then the rules.
    pub fn parse(stdin: &[u8]) -> Result<Self, PluginError> {
        let root: Value = serde_json::from_slice(stdin).map_err(|e| PluginError::Decode {
            what: "network configuration on stdin",
            source: e,
        })?;
        let obj = root
            .as_object()
            .ok_or_else(|| bad("(stdin)", show(&root), "must be a JSON object"))?;
        let version = parse_version(obj)?;
        let raw = raw::decode(&root)?;
        let name = raw
            .name
            .clone()
            .ok_or_else(|| bad("name", "(missing)", "is required"))?;
        validate_network_name(&name)?;
        let mode = parse_mode(&raw)?;
        let data_dir = parse_data_dir(&raw)?;
        check_log_settings(&raw)?;
        let (requested_ips, requested_mac) = parse_requested(&raw)?;
        let prev_result = parse_prev_result(raw.prev_result.as_ref())?;
        // The derive's field names, asked for once per call rather than once per key.
        let read = raw::field_names();
        let ignored_keys = obj
            .keys()
            .filter(|k| !is_known_key(k, read))
            .cloned()
            .collect();
        Ok(PluginConfig {
            version,
            name,
            mode,
            ip_masq: raw.ip_masq.unwrap_or(false),
            async_delete: raw.async_delete.unwrap_or(true),
            data_dir,
            requested_ips,
            requested_mac,
            dns: raw.dns.unwrap_or_default(),
            prev_result,
            // The spec's key wins over the 1.1.0 tag's.
            valid_attachments: raw
                .valid_attachments
                .or(raw.attachments)
                .map(|list| list.into_iter().map(Attachment::from).collect()),
            ignored_keys,
        })
    }
}

impl From<raw::RawAttachment> for Attachment {
    fn from(a: raw::RawAttachment) -> Self {
        Attachment {
            container_id: a.container_id,
            ifname: a.ifname,
        }
    }
}

fn parse_mode(raw: &RawConfig) -> Result<Mode, PluginError> {
    const MODES: &str = "\"kubenet\", \"nodesubnet\", \"podsubnet\" or \"overlay\"";
    let mode = raw
        .mode
        .as_deref()
        .ok_or_else(|| bad("mode", "(missing)", format!("is required: {MODES}")))?;
    Ok(match mode {
        "kubenet" | "bridge" => Mode::Kubenet(parse_kubenet(raw)?),
        // "transparent" is azure-vnet's name for the same datapath (docs/azure.md#transparent-mode).
        "nodesubnet" | "transparent" => Mode::NodeSubnet(parse_routed(raw)?),
        // Pod Subnet: the same routed datapath, addresses of the pod subnet.
        "podsubnet" => Mode::PodSubnet(crate::podsubnet::PodSubnetConf {
            routed: parse_routed(raw)?,
        }),
        // Overlay: the same routed datapath, addresses of the node's /24.
        "overlay" => Mode::Overlay(crate::overlay::OverlayConf {
            routed: parse_routed(raw)?,
        }),
        other => return Err(bad("mode", other, format!("is not supported: use {MODES}"))),
    })
}

/// `dataDir`, or `ipam.dataDir` (host-local's key), or the default: absolute, no `..`.
fn parse_data_dir(raw: &RawConfig) -> Result<PathBuf, PluginError> {
    let given = raw
        .data_dir
        .as_deref()
        .or_else(|| raw.ipam.as_ref().and_then(|i| i.data_dir.as_deref()));
    let data_dir = PathBuf::from(given.unwrap_or(DEFAULT_DATA_DIR));
    let shown = || data_dir.display().to_string();
    if !data_dir.is_absolute() {
        return Err(bad("dataDir", shown(), "must be an absolute path"));
    }
    // A `..` could lead the state anywhere on the node (issue 10, item 7).
    if data_dir
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(bad("dataDir", shown(), "must not contain `..`"));
    }
    Ok(data_dir)
}

/// Addresses and MAC the runtime asks for: `runtimeConfig.ips`/`mac`, and
/// `args.cni.ips`, which wins over everything (CONVENTIONS.md "args").
fn parse_requested(raw: &RawConfig) -> Result<(Vec<IpAddr>, Option<String>), PluginError> {
    let rc = raw.runtime_config.as_ref();
    let mut ips = match rc.and_then(|r| r.ips.as_deref()) {
        Some(list) => parse_ip_list("runtimeConfig.ips", list)?,
        None => Vec::new(),
    };
    if let Some(list) = raw
        .args
        .as_ref()
        .and_then(|a| a.cni.as_ref())
        .and_then(|c| c.ips.as_deref())
    {
        ips = parse_ip_list("args.cni.ips", list)?;
    }
    Ok((ips, rc.and_then(|r| r.mac.clone())))
}

/// `prevResult` of any version; an empty object counts as none.
fn parse_prev_result(v: Option<&Value>) -> Result<Option<CniResult>, PluginError> {
    match v {
        None => Ok(None),
        Some(v) if v.as_object().is_some_and(|o| o.is_empty()) => Ok(None),
        Some(v) => CniResult::from_value(v)
            .map(Some)
            .map_err(|e| PluginError::Decode {
                what: "prevResult",
                source: e,
            }),
    }
}

/// The version the plugin answers with even when the config cannot be parsed
/// (for error objects): the config's `cniVersion` when it is readable.
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_string)
}

/// "10.1.2.3/24" (CONVENTIONS.md) or a bare address, for each entry.
fn parse_ip_list(field: &str, list: &[String]) -> Result<Vec<IpAddr>, PluginError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| bad(format!("{field}[{i}]"), s, "is not an IP address"))
        })
        .collect()
}

/// The routed per-pod veth datapath's settings (nodesubnet, podsubnet, overlay).
fn parse_routed(raw: &RawConfig) -> Result<NodeSubnetConf, PluginError> {
    Ok(NodeSubnetConf {
        mtu: parse_mtu(raw)?,
        uplink: raw.uplink.clone(),
    })
}

fn parse_kubenet(raw: &RawConfig) -> Result<KubenetConf, PluginError> {
    let bridge = raw.bridge.as_deref().unwrap_or(DEFAULT_BRIDGE).to_string();
    aksnet_cniproto::args::validate_ifname(&bridge)
        .map_err(|e| bad("bridge", &bridge, e.to_string()))?;
    let ipam = raw.ipam.as_ref().ok_or_else(|| {
        bad(
            "ipam",
            "(missing)",
            "kubenet mode needs ipam.ranges (the node's pod CIDR)",
        )
    })?;
    if let Some(t) = ipam.kind.as_deref() {
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
    Ok(KubenetConf {
        bridge,
        is_gateway: raw.is_gateway.unwrap_or(true),
        mtu: parse_mtu(raw)?,
        hairpin_mode: raw.hairpin_mode.unwrap_or(false),
        promisc_mode: raw.promisc_mode.unwrap_or(false),
        pool,
        routes: parse_routes(ipam)?,
    })
}

/// `ipam.routes`: each needs `dst`; `gw` is optional.
fn parse_routes(ipam: &RawIpam) -> Result<Option<Vec<Route>>, PluginError> {
    let Some(routes) = &ipam.routes else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(routes.len());
    for (i, r) in routes.iter().enumerate() {
        let f = format!("ipam.routes[{i}]");
        let dst = r
            .dst
            .as_deref()
            .ok_or_else(|| bad(format!("{f}.dst"), "(missing)", "is required"))?;
        let dst = parse_net(&format!("{f}.dst"), dst)?;
        let gw = match r.gw.as_deref() {
            Some(g) => Some(parse_ip(&format!("{f}.gw"), g)?),
            None => None,
        };
        out.push(Route::new(dst, gw));
    }
    Ok(Some(out))
}

/// Parses one range's syntax; the rules (inside the subnet, start <= end, room
/// to allocate) are the allocator's `Pool::validate`, so they live in one place.
fn parse_range(field: &str, r: &RawRange) -> Result<Range, PluginError> {
    let subnet = r
        .subnet
        .as_deref()
        .ok_or_else(|| bad(format!("{field}.subnet"), "(missing)", "is required"))?;
    let opt_ip = |k: &str, v: &Option<String>| -> Result<Option<IpAddr>, PluginError> {
        v.as_deref()
            .map(|s| parse_ip(&format!("{field}.{k}"), s))
            .transpose()
    };
    Ok(Range {
        subnet: parse_net(&format!("{field}.subnet"), subnet)?,
        range_start: opt_ip("rangeStart", &r.range_start)?,
        range_end: opt_ip("rangeEnd", &r.range_end)?,
        gateway: opt_ip("gateway", &r.gateway)?,
    })
}

fn parse_ranges(ipam: &RawIpam) -> Result<Vec<Vec<Range>>, PluginError> {
    let Some(sets) = &ipam.ranges else {
        // host-local's older single-range shorthand: ipam.subnet/rangeStart/rangeEnd/gateway.
        if ipam.subnet.is_some() {
            let single = RawRange {
                subnet: ipam.subnet.clone(),
                range_start: ipam.range_start.clone(),
                range_end: ipam.range_end.clone(),
                gateway: ipam.gateway.clone(),
            };
            return Ok(vec![vec![parse_range("ipam", &single)?]]);
        }
        return Err(bad(
            "ipam.ranges",
            "(missing)",
            "is required: e.g. [[{\"subnet\": \"10.244.1.0/24\"}]] (the node's pod CIDR)",
        ));
    };
    if sets.is_empty() {
        return Err(bad("ipam.ranges", "[]", "needs at least one range set"));
    }
    let mut out = Vec::with_capacity(sets.len());
    for (i, set) in sets.iter().enumerate() {
        if set.is_empty() {
            return Err(bad(
                format!("ipam.ranges[{i}]"),
                "[]",
                "must be a non-empty list of ranges",
            ));
        }
        let ranges = set
            .iter()
            .enumerate()
            .map(|(j, r)| parse_range(&format!("ipam.ranges[{i}][{j}]"), r))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(ranges);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
