//! The generated ruleset per mode as golden files (tests/golden/*.nft, reviewed like code), the
//! settings rules, and reconcile behaviour against the recording fake backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use aksnet_agent::masq_config::merge;
use aksnet_agent::reconcile::load_config;
use aksnet_agent::{
    desired_table, reconcile_once, uninstall, AgentSettings, Mode, Outcome, SettingsError,
};
use aksnet_nft::render::render_table;
use aksnet_nft::{FakeNft, Family, NftBackend};
use ipnet::IpNet;

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("AKSNET_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (AKSNET_BLESS=1 creates it)", path.display()));
    assert_eq!(actual, expected, "golden file {} differs", path.display());
}

/// AKS Node Subnet: VNet 10.224.0.0/12 (the AKS default VNet), no config file.
fn nodesubnet(dir: &Path) -> AgentSettings {
    let mut s = AgentSettings::new(Mode::NodeSubnet);
    s.vnet_cidrs = nets(&["10.224.0.0/12"]);
    s.config_dir = dir.to_path_buf();
    s
}

/// AKS kubenet: cluster pod CIDR 10.244.0.0/16 (the AKS default), node pod CIDR 10.244.1.0/24.
fn kubenet(dir: &Path) -> AgentSettings {
    let mut s = AgentSettings::new(Mode::Kubenet);
    s.cluster_pod_cidrs = nets(&["10.244.0.0/16"]);
    s.vnet_cidrs = nets(&["10.224.0.0/12"]);
    s.config_dir = dir.to_path_buf();
    s
}

/// AKS Overlay: pod CIDR 192.168.0.0/16 (the Overlay article's example).
fn overlay(dir: &Path) -> AgentSettings {
    let mut s = AgentSettings::new(Mode::Overlay);
    s.cluster_pod_cidrs = nets(&["192.168.0.0/16"]);
    s.config_dir = dir.to_path_buf();
    s
}

/// AKS Pod Subnet: pods in 10.241.0.0/16.
fn podsubnet(dir: &Path) -> AgentSettings {
    let mut s = AgentSettings::new(Mode::PodSubnet);
    s.pod_cidrs = nets(&["10.241.0.0/16"]);
    s.config_dir = dir.to_path_buf();
    s
}

fn render_for(settings: &AgentSettings) -> String {
    let config = load_config(settings).unwrap();
    let t = desired_table(settings, &config);
    t.validate().unwrap();
    render_table(&t)
}

#[test]
fn golden_nodesubnet_defaults() {
    let dir = tempfile::tempdir().unwrap();
    golden(
        "nodesubnet-defaults.nft",
        &render_for(&nodesubnet(dir.path())),
    );
}

#[test]
fn golden_kubenet_defaults() {
    let dir = tempfile::tempdir().unwrap();
    golden("kubenet-defaults.nft", &render_for(&kubenet(dir.path())));
}

#[test]
fn golden_overlay_defaults() {
    let dir = tempfile::tempdir().unwrap();
    golden("overlay-defaults.nft", &render_for(&overlay(dir.path())));
}

/// Everything but Azure DNS and IMDS is non-masquerade; masqLinkLocal stays true so no
/// blanket link-local return hides IMDS.
#[test]
fn golden_podsubnet_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text = render_for(&podsubnet(dir.path()));
    assert!(!text.contains("169.254.0.0/16"), "{text}");
    golden("podsubnet-defaults.nft", &text);
}

#[test]
fn overlay_and_podsubnet_name_their_required_flag() {
    let d = Path::new("/nonexistent");
    let mut s = overlay(d);
    s.cluster_pod_cidrs.clear();
    assert_eq!(
        s.validate(),
        Err(SettingsError::Missing {
            flag: "cluster-pod-cidr",
            mode: "overlay"
        })
    );
    let mut s = podsubnet(d);
    s.pod_cidrs.clear();
    assert_eq!(
        s.validate(),
        Err(SettingsError::Missing {
            flag: "pod-cidr",
            mode: "podsubnet"
        })
    );
}

/// Node Subnet with a user file adding a peered VNet and on-premises range (Azure/AKS#1207),
/// masqLinkLocal false, --random-fully, IPv6 enabled, pod sources narrowed to the node's pool.
#[test]
fn golden_nodesubnet_user_config_ipv6_random_fully() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ip-masq-agent"),
        "nonMasqueradeCIDRs:\n  - 10.100.0.0/16\n  - 192.168.10.0/24\n  - fd00:10::/48\nmasqLinkLocal: false\nmasqLinkLocalIPv6: false\n",
    )
    .unwrap();
    let mut s = nodesubnet(dir.path());
    s.masq_link_local = false;
    s.random_fully = true;
    s.enable_ipv6 = true;
    s.vnet_cidrs = nets(&["10.224.0.0/12", "fd00:224::/48"]);
    s.pod_cidrs = nets(&["10.224.0.0/24", "fd00:224::/64"]);
    golden("nodesubnet-user-ipv6.nft", &render_for(&s));
}

/// Overlapping and adjacent CIDRs across files are aggregated: interval sets refuse overlaps.
#[test]
fn overlapping_cidrs_are_aggregated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ip-masq-a"),
        "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 192.168.0.0/24, 192.168.1.0/24]\n",
    )
    .unwrap();
    let s = kubenet(dir.path());
    let t = desired_table(&s, &load_config(&s).unwrap());
    let set = t
        .sets
        .iter()
        .find(|x| x.name == "non-masquerade-v4")
        .unwrap();
    assert_eq!(set.elements, nets(&["10.0.0.0/8", "192.168.0.0/23"]));
    t.validate().unwrap();
}

#[test]
fn settings_are_validated_with_flag_and_value() {
    let d = Path::new("/nonexistent");
    let mut s = nodesubnet(d);
    s.vnet_cidrs.clear();
    assert_eq!(
        s.validate(),
        Err(SettingsError::Missing {
            flag: "vnet-cidr",
            mode: "nodesubnet"
        })
    );
    let mut s = kubenet(d);
    s.cluster_pod_cidrs.clear();
    assert_eq!(
        s.validate(),
        Err(SettingsError::Missing {
            flag: "cluster-pod-cidr",
            mode: "kubenet"
        })
    );
    let mut s = kubenet(d);
    s.pod_cidrs = vec!["10.244.1.5/24".parse().unwrap()];
    assert_eq!(
        s.validate(),
        Err(SettingsError::NotAligned {
            flag: "pod-cidr",
            value: "10.244.1.5/24".into(),
            aligned: "10.244.1.0/24".into()
        })
    );
    let mut s = kubenet(d);
    s.cluster_pod_cidrs.push("fd00::/48".parse().unwrap());
    assert_eq!(
        s.validate(),
        Err(SettingsError::Ipv6Disabled {
            flag: "cluster-pod-cidr",
            value: "fd00::/48".into()
        })
    );
    let mut s = kubenet(d);
    s.table_name = "no spaces".into();
    assert!(matches!(
        s.validate(),
        Err(SettingsError::BadTableName { .. })
    ));
    assert!("azure".parse::<Mode>().is_err());
    assert_eq!("overlay".parse::<Mode>(), Ok(Mode::Overlay));
    assert_eq!("podsubnet".parse::<Mode>(), Ok(Mode::PodSubnet));
}

#[test]
fn reconcile_writes_once_then_reports_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let s = kubenet(dir.path());
    let fake = FakeNft::new();
    let r1 = reconcile_once(&fake, &s).unwrap();
    assert_eq!(r1.outcome, Outcome::Applied);
    assert_eq!(fake.writes(), 1);
    let r2 = reconcile_once(&fake, &s).unwrap();
    assert_eq!(r2.outcome, Outcome::Unchanged);
    assert_eq!(r2.table_handle, r1.table_handle);
    assert_eq!(fake.writes(), 1);
    // A config change rewrites.
    std::fs::write(
        dir.path().join("ip-masq-agent"),
        "nonMasqueradeCIDRs: [198.51.100.0/24]\n",
    )
    .unwrap();
    assert_eq!(reconcile_once(&fake, &s).unwrap().outcome, Outcome::Applied);
    assert_eq!(fake.writes(), 2);
}

#[test]
fn bad_config_leaves_the_table_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = kubenet(dir.path());
    let fake = FakeNft::new();
    reconcile_once(&fake, &s).unwrap();
    let before = fake.get_table(Family::Inet, "aksnet").unwrap().unwrap();
    std::fs::write(
        dir.path().join("ip-masq-agent"),
        "nonMasqueradeCIDRs: [10.0.0.1/8]\n",
    )
    .unwrap();
    let err = reconcile_once(&fake, &s).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("ip-masq-agent")
            && msg.contains("nonMasqueradeCIDRs[0]")
            && msg.contains("10.0.0.1/8"),
        "{msg}"
    );
    assert_eq!(fake.writes(), 1);
    assert_eq!(
        fake.get_table(Family::Inet, "aksnet").unwrap().unwrap(),
        before
    );
    // Fixing the file applies the next good config.
    std::fs::write(
        dir.path().join("ip-masq-agent"),
        "nonMasqueradeCIDRs: [10.0.0.0/8]\n",
    )
    .unwrap();
    assert_eq!(reconcile_once(&fake, &s).unwrap().outcome, Outcome::Applied);
}

#[test]
fn nft_failure_is_exit_3_and_keeps_the_old_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = kubenet(dir.path());
    let fake = FakeNft::new();
    reconcile_once(&fake, &s).unwrap();
    let before = fake.get_table(Family::Inet, "aksnet").unwrap().unwrap();
    std::fs::write(
        dir.path().join("ip-masq-agent"),
        "nonMasqueradeCIDRs: [10.0.0.0/8]\n",
    )
    .unwrap();
    fake.fail_next_apply("Error: Could not process rule");
    let err = reconcile_once(&fake, &s).unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        fake.get_table(Family::Inet, "aksnet").unwrap().unwrap(),
        before
    );
}

#[test]
fn uninstall_removes_only_our_table() {
    let dir = tempfile::tempdir().unwrap();
    let a = kubenet(dir.path());
    let mut b = kubenet(dir.path());
    b.table_name = "aksnt-other".into();
    let fake = FakeNft::new();
    reconcile_once(&fake, &a).unwrap();
    reconcile_once(&fake, &b).unwrap();
    assert!(uninstall(&fake, &a).unwrap());
    assert!(!uninstall(&fake, &a).unwrap());
    assert!(fake.get_table(Family::Inet, "aksnet").unwrap().is_none());
    assert!(fake
        .get_table(Family::Inet, "aksnt-other")
        .unwrap()
        .is_some());
}

#[test]
fn defaults_fragment_is_merged_with_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ip-masq-agent"),
        "nonMasqueradeCIDRs: []\nmasqLinkLocal: false\n",
    )
    .unwrap();
    let s = nodesubnet(dir.path());
    let c = load_config(&s).unwrap();
    // An empty user list cannot drop the VNet (Azure/AKS#2653); masqLinkLocal stays AKS's true.
    assert_eq!(c.non_masquerade_cidrs, nets(&["10.224.0.0/12"]));
    assert!(c.masq_link_local);
    assert_eq!(
        merge(&[s.defaults_fragment()]).non_masquerade_cidrs,
        nets(&["10.224.0.0/12"])
    );
}
