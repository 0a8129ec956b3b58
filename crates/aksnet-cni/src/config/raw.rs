//! The request configuration's shape, as serde derives it: every key the plugin
//! reads, with its JSON type. A wrong type is reported by `decode` with the
//! field's path (`serde_path_to_error`) and the value found there; the rules a
//! type cannot express (ranges, paths, names) are checked by the caller.
//!
//! Keys are those of the CNI spec (SPEC.md section 3, "Network configuration"),
//! its conventions (CONVENTIONS.md: `runtimeConfig`, `args.cni.ips`), the
//! reference `bridge` and `host-local` plugins whose conflists aksnet-cni
//! accepts as drop-ins, and the plugin's own (crates/aksnet-cni/README.md).

use serde::Deserialize;
use serde_json::Value;

use super::{bad, show};
use crate::error::PluginError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawConfig {
    pub name: Option<String>,
    pub mode: Option<String>,
    pub bridge: Option<String>,
    pub is_gateway: Option<bool>,
    pub mtu: Option<i64>,
    pub hairpin_mode: Option<bool>,
    pub promisc_mode: Option<bool>,
    pub ip_masq: Option<bool>,
    pub async_delete: Option<bool>,
    pub data_dir: Option<String>,
    pub uplink: Option<String>,
    pub log_file: Option<String>,
    pub log_max_bytes: Option<u64>,
    pub ipam: Option<RawIpam>,
    pub dns: Option<aksnet_cniproto::Dns>,
    pub runtime_config: Option<RawRuntimeConfig>,
    pub args: Option<RawArgs>,
    /// Kept as JSON: its shape depends on its own `cniVersion` (`CniResult::from_value`).
    pub prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<RawAttachment>>,
    /// The name the 1.1.0 spec tag used for the same list.
    #[serde(rename = "cni.dev/attachments")]
    pub attachments: Option<Vec<RawAttachment>>,
}

/// `ipam`: host-local's `ranges` (or its older single-range shorthand), `routes`, `dataDir`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawIpam {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub ranges: Option<Vec<Vec<RawRange>>>,
    /// host-local's older single-range shorthand: `ipam.subnet`, `rangeStart`, …
    pub subnet: Option<String>,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
    pub routes: Option<Vec<RawRoute>>,
    pub data_dir: Option<String>,
}

/// One range; `subnet` is required, which the caller checks to name the field.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawRange {
    pub subnet: Option<String>,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRoute {
    pub dst: Option<String>,
    pub gw: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRuntimeConfig {
    pub ips: Option<Vec<String>>,
    pub mac: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawArgs {
    pub cni: Option<RawArgsCni>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawArgsCni {
    pub ips: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// Derives the configuration from `root`; a type error names its path, the value there
/// (or "(missing)") and serde's description of what was expected.
pub(super) fn decode(root: &Value) -> Result<RawConfig, PluginError> {
    serde_path_to_error::deserialize(root).map_err(|e| {
        let path = e.path().to_string();
        let value = lookup(root, e.path()).map_or_else(|| "(missing)".to_string(), show);
        bad(path, value, e.inner().to_string())
    })
}

/// The value at `path` in `root`, if there is one.
fn lookup<'a>(root: &'a Value, path: &serde_path_to_error::Path) -> Option<&'a Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(root, |v, seg| match seg {
        Segment::Seq { index } => v.get(index),
        Segment::Map { key } => v.get(key.as_str()),
        Segment::Enum { variant } => v.get(variant.as_str()),
        Segment::Unknown => None,
    })
}

/// The top-level keys `RawConfig` reads, as serde derive lists them: the derive is
/// the one home of the key list (a key added there is known everywhere).
pub(super) fn field_names() -> &'static [&'static str] {
    let names = std::cell::Cell::new(&[][..]);
    // The derive hands its field list to `deserialize_struct`, which stops there.
    let _ = RawConfig::deserialize(FieldNames(&names));
    names.get()
}

struct FieldNames<'a>(&'a std::cell::Cell<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(serde::de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}
