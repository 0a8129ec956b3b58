//! The CNI error object (containernetworking/cni SPEC.md "Error", docs/cni-clients.md#errors).

use serde::Serialize;

/// Well-known error codes. 0–99 are reserved by the spec; 100+ are ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in network configuration.
    UnsupportedField,
    /// 3: container unknown or does not exist.
    UnknownContainer,
    /// 4: invalid or missing environment variables.
    InvalidEnv,
    /// 5: I/O failure.
    Io,
    /// 6: failed to decode content.
    Decode,
    /// 7: invalid network config.
    InvalidConfig,
    /// 11: try again later.
    TryAgainLater,
    /// 50: STATUS: the plugin cannot serve ADD.
    NotAvailable,
    /// 51: STATUS: not available, existing containers may be degraded.
    NotAvailableDegraded,
    /// 100: aksnet: no free address in the pool (Azure: "No available addresses").
    NoAddressAvailable,
    /// 101: aksnet: a kernel (netlink, sysctl, netns) operation failed.
    Kernel,
    /// 102: aksnet: the IPAM or node-pool state on disk cannot be used.
    State,
    /// 103: aksnet: CHECK found the attachment differs from prevResult.
    CheckFailed,
    /// 104: aksnet: the host interface ADD needs belongs to another live
    /// attachment (e.g. a second sandbox of a pod whose first is not deleted).
    AttachmentConflict,
}

impl ErrorCode {
    pub fn code(self) -> u32 {
        match self {
            Self::IncompatibleVersion => 1,
            Self::UnsupportedField => 2,
            Self::UnknownContainer => 3,
            Self::InvalidEnv => 4,
            Self::Io => 5,
            Self::Decode => 6,
            Self::InvalidConfig => 7,
            Self::TryAgainLater => 11,
            Self::NotAvailable => 50,
            Self::NotAvailableDegraded => 51,
            Self::NoAddressAvailable => 100,
            Self::Kernel => 101,
            Self::State => 102,
            Self::CheckFailed => 103,
            Self::AttachmentConflict => 104,
        }
    }
}

/// The error object printed on stdout with a non-zero exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CniError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            cni_version: None,
            code: code.code(),
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn with_version(mut self, v: &str) -> Self {
        self.cni_version = Some(v.to_string());
        self
    }

    /// JSON text of the error object (never fails: all fields are strings and numbers).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"code\":{},\"msg\":\"error serialising the error\"}}",
                self.code
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_spec_table() {
        assert_eq!(ErrorCode::IncompatibleVersion.code(), 1);
        assert_eq!(ErrorCode::InvalidEnv.code(), 4);
        assert_eq!(ErrorCode::Decode.code(), 6);
        assert_eq!(ErrorCode::InvalidConfig.code(), 7);
        assert_eq!(ErrorCode::TryAgainLater.code(), 11);
        assert_eq!(ErrorCode::NotAvailable.code(), 50);
        assert!(ErrorCode::NoAddressAvailable.code() >= 100);
    }

    #[test]
    fn json_shape() {
        let e =
            CniError::new(ErrorCode::InvalidEnv, "missing CNI_IFNAME", "").with_version("1.1.0");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["code"], 4);
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["msg"], "missing CNI_IFNAME");
        assert!(v.get("details").is_none());
    }
}
