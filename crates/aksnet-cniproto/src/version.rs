//! Spec versions this plugin speaks, and the VERSION verb's answer.

use std::fmt;

use serde::Serialize;

/// The versions `aksnet-cni` implements, oldest first (SPEC.md "Version").
/// 0.1.0/0.2.0 are not offered: their result format (`ip4`/`ip6` objects) is
/// obsolete and no runtime we target emits it (docs/cni-clients.md#result).
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A supported spec version, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl CniVersion {
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// Parses a `cniVersion` string; `None` for versions we do not implement.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "0.3.0" => Self::V0_3_0,
            "0.3.1" => Self::V0_3_1,
            "0.4.0" => Self::V0_4_0,
            "1.0.0" => Self::V1_0_0,
            "1.1.0" => Self::V1_1_0,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// CHECK and DEL's `prevResult` exist from 0.4.0 on (SPEC.md, version history).
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// GC and STATUS exist from 1.1.0 on.
    pub fn has_gc_and_status(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Results before 1.0.0 carry `ips[].version` ("4"/"6"); podman 4.3 needs it
    /// with its 0.4.0 conflists (docs/cni-clients.md#podman).
    pub fn ips_carry_version(self) -> bool {
        self < Self::V1_0_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The VERSION verb's result (SPEC.md section 2, "VERSION").
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResult<'a> {
    pub cni_version: &'a str,
    pub supported_versions: &'a [&'a str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_round_trips_in_order() {
        let parsed: Vec<_> = SUPPORTED_VERSIONS
            .iter()
            .map(|s| CniVersion::parse(s).expect("supported"))
            .collect();
        for (v, s) in parsed.iter().zip(SUPPORTED_VERSIONS) {
            assert_eq!(v.as_str(), s);
        }
        assert!(parsed.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*parsed.last().expect("non-empty"), CniVersion::LATEST);
    }

    #[test]
    fn unknown_versions_are_refused() {
        for v in ["0.1.0", "0.2.0", "1.2.0", "", "1.1", "v1.0.0"] {
            assert_eq!(CniVersion::parse(v), None, "{v}");
        }
    }

    #[test]
    fn feature_gates() {
        assert!(!CniVersion::V0_3_1.has_check());
        assert!(CniVersion::V0_4_0.has_check());
        assert!(!CniVersion::V1_0_0.has_gc_and_status());
        assert!(CniVersion::V1_1_0.has_gc_and_status());
        assert!(CniVersion::V0_4_0.ips_carry_version());
        assert!(!CniVersion::V1_0_0.ips_carry_version());
    }
}
