//! The ADD result (SPEC.md section 5 "Result Types") held in its 1.1.0 form and
//! rendered in the format of the version the runtime asked for.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::version::CniVersion;

/// An interface the attachment created or uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// 1.1.0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Empty/absent for host interfaces, `CNI_NETNS` for container ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// 1.1.0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// 1.1.0 only.
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// One address of the attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// "4"/"6": present before 1.0.0 only; accepted on input, derived on output.
    #[serde(default, skip_serializing)]
    pub version: Option<String>,
    /// Address with the prefix length of its network, e.g. `10.244.1.5/24`.
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// The remaining fields are 1.1.0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// The result of ADD (also `prevResult` on CHECK and DEL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

impl CniResult {
    /// Parses a `prevResult` of any supported version (0.3.x/0.4.0 carry
    /// `ips[].version`, which is ignored; 1.x fields are optional).
    pub fn from_value(v: &Value) -> Result<Self, serde_json::Error> {
        CniResult::deserialize(v)
    }

    /// The result as the JSON of `version`: `ips[].version` added before 1.0.0,
    /// the 1.1.0-only fields dropped before 1.1.0 (SPEC.md, version history;
    /// docs/cni-clients.md#network-configuration, #result).
    pub fn to_version(&self, version: CniVersion) -> Value {
        let mut r = self.clone();
        r.cni_version = version.as_str().to_string();
        if version < CniVersion::V1_1_0 {
            for i in &mut r.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            for rt in &mut r.routes {
                rt.mtu = None;
                rt.advmss = None;
                rt.priority = None;
                rt.table = None;
                rt.scope = None;
            }
        }
        let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
        if version.ips_carry_version() {
            if let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut) {
                for (ip, cfg) in ips.iter_mut().zip(&r.ips) {
                    if let Some(obj) = ip.as_object_mut() {
                        let fam = if cfg.address.addr().is_ipv4() {
                            "4"
                        } else {
                            "6"
                        };
                        obj.insert("version".into(), Value::String(fam.into()));
                    }
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            cni_version: "1.1.0".into(),
            interfaces: vec![
                Interface {
                    name: "cbr0".into(),
                    mac: Some("aa:bb:cc:dd:ee:ff".into()),
                    mtu: Some(1500),
                    ..Default::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:01".into()),
                    mtu: Some(1500),
                    sandbox: Some("/run/netns/p1".into()),
                    ..Default::default()
                },
            ],
            ips: vec![
                IpConfig {
                    version: None,
                    address: "10.244.1.5/24".parse().unwrap(),
                    gateway: Some("10.244.1.1".parse().unwrap()),
                    interface: Some(1),
                },
                IpConfig {
                    version: None,
                    address: "fd00::5/64".parse().unwrap(),
                    gateway: None,
                    interface: Some(1),
                },
            ],
            routes: vec![Route {
                scope: Some(0),
                ..Route::new(
                    "0.0.0.0/0".parse().unwrap(),
                    Some("10.244.1.1".parse().unwrap()),
                )
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn v040_has_ip_versions_and_no_11_fields() {
        let v = sample().to_version(CniVersion::V0_4_0);
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["ips"][1]["version"], "6");
        assert!(v["interfaces"][0].get("mtu").is_none());
        assert!(v["routes"][0].get("scope").is_none());
        assert!(v.get("dns").is_none());
    }

    #[test]
    fn v100_has_no_ip_versions() {
        let v = sample().to_version(CniVersion::V1_0_0);
        assert!(v["ips"][0].get("version").is_none());
        assert!(v["interfaces"][1].get("mtu").is_none());
        assert_eq!(v["interfaces"][1]["sandbox"], "/run/netns/p1");
    }

    #[test]
    fn v110_keeps_everything() {
        let v = sample().to_version(CniVersion::V1_1_0);
        assert_eq!(v["interfaces"][0]["mtu"], 1500);
        assert_eq!(v["routes"][0]["scope"], 0);
        assert_eq!(v["ips"][0]["address"], "10.244.1.5/24");
        assert_eq!(v["ips"][0]["interface"], 1);
    }

    #[test]
    fn every_version_round_trips_through_prev_result() {
        for s in crate::SUPPORTED_VERSIONS {
            let ver = CniVersion::parse(s).unwrap();
            let v = sample().to_version(ver);
            let back = CniResult::from_value(&v).unwrap();
            assert_eq!(back.ips.len(), 2, "{s}");
            assert_eq!(back.ips[0].address, sample().ips[0].address);
            assert_eq!(back.cni_version, s);
        }
    }

    #[test]
    fn prev_result_from_reference_plugin_shape() {
        // What the Debian bridge plugin prints at 0.4.0 (docs/cni-clients.md#result).
        let v: Value = serde_json::from_str(
            r#"{"cniVersion":"0.4.0","interfaces":[{"name":"cni0","mac":"1a:2b:3c:4d:5e:6f"},
            {"name":"eth0","mac":"aa:aa:aa:aa:aa:ab","sandbox":"/var/run/netns/t1"}],
            "ips":[{"version":"4","interface":1,"address":"10.244.7.2/24","gateway":"10.244.7.1"}],
            "routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#,
        )
        .unwrap();
        let r = CniResult::from_value(&v).unwrap();
        assert_eq!(r.ips[0].interface, Some(1));
        assert_eq!(r.routes[0].gw, None);
    }
}
