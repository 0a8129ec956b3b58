//! The agent's files against planted symlinks, a zero umask and odd entries in its config
//! directory (issue 10, items 5 and 7).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::Command;

use aksnet_agent::reconcile::{reconcile_once, write_status, Status};
use aksnet_agent::{AgentSettings, Mode};
use aksnet_nft::FakeNft;

fn settings(dir: &Path) -> AgentSettings {
    let mut s = AgentSettings::new(Mode::NodeSubnet);
    s.vnet_cidrs = vec!["10.224.0.0/12".parse().unwrap()];
    s.config_dir = dir.to_path_buf();
    s
}

fn status(dir: &Path) -> Status {
    let s = settings(dir);
    Status::from_result(&s, &reconcile_once(&FakeNft::default(), &s))
}

#[test]
fn status_is_never_written_through_a_planted_temp_link() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    // The old fixed temp name and this process's first unique ones.
    symlink(&victim, tmp.path().join("status.json.tmp")).unwrap();
    let pid = std::process::id();
    for seq in 0..8 {
        symlink(
            &victim,
            tmp.path().join(format!(".status.json.{pid}.{seq}.tmp")),
        )
        .unwrap();
    }
    let path = tmp.path().join("status.json");
    let st = status(&tmp.path().join("config"));
    for _ in 0..4 {
        let _ = write_status(&path, &st);
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        meta.mode() & 0o7777,
        0o644,
        "the status file is world-readable"
    );

    // A link at the status path itself is refused and left alone.
    fs::remove_file(&path).unwrap();
    symlink(&victim, &path).unwrap();
    let e = write_status(&path, &st).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn status_mode_is_0644_under_umask_000() {
    if let Some(dir) = std::env::var_os("AKSH1_AGENT_UMASK_CHILD") {
        let dir = Path::new(&dir);
        write_status(&dir.join("status.json"), &status(&dir.join("config"))).unwrap();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ok = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" --exact status_mode_is_0644_under_umask_000")
        .arg(std::env::current_exe().unwrap())
        .env("AKSH1_AGENT_UMASK_CHILD", tmp.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let m = fs::metadata(tmp.path().join("status.json")).unwrap().mode();
    assert_eq!(m & 0o7777, 0o644);
}

#[test]
fn directories_fifos_and_devices_named_ip_masq_are_reported_in_the_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("ip-masq-agent"),
        "nonMasqueradeCIDRs: [10.0.0.0/8]\n",
    )
    .unwrap();
    fs::create_dir(dir.join("ip-masq-dir")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("ip-masq-fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    symlink("/dev/null", dir.join("ip-masq-device")).unwrap();
    let st = status(dir);
    assert!(st.ok, "{:?}", st.error);
    let json = serde_json::to_value(&st).unwrap();
    let skipped = json["skippedFiles"]
        .as_array()
        .unwrap_or_else(|| panic!("no skippedFiles in {json}"));
    let got: Vec<(String, String)> = skipped
        .iter()
        .map(|s| {
            (
                s["file"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "ip-masq-device".into(),
                "a character device, not a regular file".into()
            ),
            (
                "ip-masq-dir".into(),
                "a directory, not a regular file".into()
            ),
            ("ip-masq-fifo".into(), "a FIFO, not a regular file".into()),
        ],
        "{json}"
    );
    assert_eq!(
        json["configSources"].as_array().unwrap().len(),
        2,
        "defaults and ip-masq-agent: {json}"
    );
}
