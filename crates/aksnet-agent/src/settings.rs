//! The agent's own settings (flags of `aksnet agent`, docs/agent.md) and the per-mode defaults
//! (docs/azure.md#snat-defaults-per-mode):
//!
//! | mode | non-masquerade default | pod sources default |
//! |---|---|---|
//! | nodesubnet | the VNet's prefixes (aks-engine `GetNonMasqueradeCIDR()`, Azure/AKS#1207) | the VNet's prefixes (pods take node-subnet addresses) |
//! | kubenet | the cluster pod CIDR (aks-engine `ClusterSubnet`, Azure/AKS#2653) | the cluster pod CIDR |
//! | overlay | the cluster pod CIDR (ACN's `azure-ip-masq-agent-config-reconciled.yaml`; the Overlay article: traffic leaving the pod CIDR is SNATed to the node IP) | the cluster pod CIDR |
//! | podsubnet | the IPv4 space minus Azure DNS 168.63.129.16 and IMDS 169.254.169.254 (ACN's `azure-dns-imds-ip-masq-agent-config.yaml`) | `--pod-cidr` (the pod subnet), required |
//!
//! The defaults are merged with the files like AKS's reconciled ConfigMap
//! (`azure-ip-masq-agent-config-reconciled`) is merged with the user's: user files add ranges
//! (a peered VNet, on-premises) but an empty or wrong user file cannot drop VNet reachability
//! (Azure/AKS#2653).

use std::path::PathBuf;
use std::time::Duration;

use aksnet_core::azure::{ipv4_space_without, AZURE_DNS, AZURE_IMDS};
use ipnet::IpNet;

use crate::masq_config::MasqFragment;

/// The default config directory (the ip-masq-agent DaemonSet's mount point).
pub const DEFAULT_CONFIG_DIR: &str = "/etc/config/";
/// ip-masq-agent's default resync interval (`--resync-interval=60`).
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(60);
/// The default name of the one nftables table the agent owns (`table inet aksnet`).
pub const DEFAULT_TABLE: &str = "aksnet";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    NodeSubnet,
    Kubenet,
    Overlay,
    PodSubnet,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::NodeSubnet => "nodesubnet",
            Mode::Kubenet => "kubenet",
            Mode::Overlay => "overlay",
            Mode::PodSubnet => "podsubnet",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nodesubnet" => Ok(Mode::NodeSubnet),
            "kubenet" => Ok(Mode::Kubenet),
            "overlay" => Ok(Mode::Overlay),
            "podsubnet" => Ok(Mode::PodSubnet),
            other => Err(format!(
                "unknown mode {other:?}: expected nodesubnet, kubenet, overlay or podsubnet"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    pub mode: Mode,
    /// `--vnet-cidr`: the VNet's address prefixes (nodesubnet's non-masquerade default).
    pub vnet_cidrs: Vec<IpNet>,
    /// `--cluster-pod-cidr`: the cluster pod CIDR(s) (kubenet's and overlay's
    /// non-masquerade default).
    pub cluster_pod_cidrs: Vec<IpNet>,
    /// `--pod-cidr`: the source ranges to masquerade; empty means the mode's default.
    pub pod_cidrs: Vec<IpNet>,
    pub config_dir: PathBuf,
    /// `--random-fully`: `masquerade fully-random` (upstream v1's default; v2 lacks it).
    pub random_fully: bool,
    /// `--enable-ipv6`: accept IPv6 CIDRs and program the IPv6 chain.
    pub enable_ipv6: bool,
    /// `masqLinkLocal` of the built-in defaults fragment (AKS sets it true so IMDS sees the
    /// node's address, docs/azure.md#ip-masq-agent).
    pub masq_link_local: bool,
    pub table_name: String,
    pub resync_interval: Duration,
    pub status_file: Option<PathBuf>,
}

impl AgentSettings {
    /// Settings with every optional value at its default.
    pub fn new(mode: Mode) -> AgentSettings {
        AgentSettings {
            mode,
            vnet_cidrs: Vec::new(),
            cluster_pod_cidrs: Vec::new(),
            pod_cidrs: Vec::new(),
            config_dir: PathBuf::from(DEFAULT_CONFIG_DIR),
            random_fully: false,
            enable_ipv6: false,
            masq_link_local: true,
            table_name: DEFAULT_TABLE.to_string(),
            resync_interval: DEFAULT_RESYNC,
            status_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("--{flag} is required in mode {mode}")]
    Missing {
        flag: &'static str,
        mode: &'static str,
    },
    #[error("--{flag} {value}: not aligned to a CIDR block (did you mean {aligned}?)")]
    NotAligned {
        flag: &'static str,
        value: String,
        aligned: String,
    },
    #[error("--{flag} {value}: IPv6 CIDR given but --enable-ipv6 is not set")]
    Ipv6Disabled { flag: &'static str, value: String },
    #[error("--table {value:?}: must start with a letter and contain only letters, digits, '-' and '_' (at most 64 bytes)")]
    BadTableName { value: String },
    #[error("--resync-interval must be at least one second")]
    ResyncTooShort,
}

impl AgentSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let lists: [(&'static str, &Vec<IpNet>); 3] = [
            ("vnet-cidr", &self.vnet_cidrs),
            ("cluster-pod-cidr", &self.cluster_pod_cidrs),
            ("pod-cidr", &self.pod_cidrs),
        ];
        for (flag, list) in lists {
            for n in list {
                if n.trunc() != *n {
                    return Err(SettingsError::NotAligned {
                        flag,
                        value: n.to_string(),
                        aligned: n.trunc().to_string(),
                    });
                }
                if matches!(n, IpNet::V6(_)) && !self.enable_ipv6 {
                    return Err(SettingsError::Ipv6Disabled {
                        flag,
                        value: n.to_string(),
                    });
                }
            }
        }
        match self.mode {
            Mode::NodeSubnet if self.vnet_cidrs.is_empty() => {
                return Err(SettingsError::Missing {
                    flag: "vnet-cidr",
                    mode: "nodesubnet",
                })
            }
            Mode::Kubenet | Mode::Overlay if self.cluster_pod_cidrs.is_empty() => {
                return Err(SettingsError::Missing {
                    flag: "cluster-pod-cidr",
                    mode: self.mode.as_str(),
                })
            }
            // No default source range: every address but two is non-masquerade,
            // so the pods' own range must be named.
            Mode::PodSubnet if self.pod_cidrs.is_empty() => {
                return Err(SettingsError::Missing {
                    flag: "pod-cidr",
                    mode: "podsubnet",
                })
            }
            _ => {}
        }
        if aksnet_nft::model::validate_name("table name", &self.table_name).is_err() {
            return Err(SettingsError::BadTableName {
                value: self.table_name.clone(),
            });
        }
        if self.resync_interval < Duration::from_secs(1) {
            return Err(SettingsError::ResyncTooShort);
        }
        Ok(())
    }

    /// The mode's non-masquerade default.
    pub fn default_non_masquerade(&self) -> Vec<IpNet> {
        match self.mode {
            Mode::NodeSubnet => self.vnet_cidrs.clone(),
            Mode::Kubenet | Mode::Overlay => self.cluster_pod_cidrs.clone(),
            Mode::PodSubnet => ipv4_space_without(&[AZURE_DNS, AZURE_IMDS])
                .into_iter()
                .map(IpNet::V4)
                .collect(),
        }
    }

    /// The source ranges whose traffic is masqueraded.
    pub fn pod_sources(&self) -> Vec<IpNet> {
        if self.pod_cidrs.is_empty() {
            self.default_non_masquerade()
        } else {
            self.pod_cidrs.clone()
        }
    }

    /// The built-in fragment merged before the files (the role of AKS's reconciled ConfigMap).
    pub fn defaults_fragment(&self) -> MasqFragment {
        MasqFragment {
            source: format!("defaults({})", self.mode.as_str()),
            non_masquerade_cidrs: self.default_non_masquerade(),
            masq_link_local: self.masq_link_local,
            masq_link_local_ipv6: self.masq_link_local,
            resync_interval: None,
        }
    }
}
