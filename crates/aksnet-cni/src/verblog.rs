//! One structured line per plugin call, appended to a bounded, rotated log
//! file (issue 14, item 3). A runtime keeps none of a plugin's output once the
//! call succeeded (libcni discards stderr; containerd logs only failures), so
//! without this an operator has no trace of what happened to a pod.
//!
//! Each line is a JSON object:
//! `{"time":"2026-12-02T20:31:00.123Z","verb":"ADD","network":"kubenet",
//!   "container":"3f2a…","ifname":"eth0","pod":"default/web-0",
//!   "addresses":["10.244.1.5/24"],"durationMs":2.41,"result":"ok"}`;
//! a failure has `"result":"error","code":100,"error":"…"`.
//!
//! Settings (network configuration): `logFile` (default
//! `/var/log/aksnet/aksnet-cni.log`, or the environment's
//! `AKSNET_CNI_LOG_FILE`; `""` turns the log off) and
//! `logMaxBytes` (default 10 MiB). When the file passes `logMaxBytes` it is
//! renamed to `<logFile>.1` (replacing the previous one), so the log never
//! takes more than twice that. Writing the log never changes a call's outcome.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::PluginError;

pub const DEFAULT_LOG_FILE: &str = "/var/log/aksnet/aksnet-cni.log";
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 << 20;
/// Replaces the default log file for calls whose configuration names none
/// (`""`: no log). For a node whose runtime passes its environment through,
/// and for test harnesses, which must not write to /var/log.
pub const LOG_FILE_ENV: &str = "AKSNET_CNI_LOG_FILE";

/// The keys of the network configuration this module reads, in one pass. They
/// are read on their own, so that a call whose configuration is otherwise
/// invalid is logged too (those are the calls an operator most needs to see).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    name: Option<String>,
    log_file: Option<String>,
    log_max_bytes: Option<u64>,
}

/// What one call did, for its log line.
pub struct Call<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub stdin: &'a [u8],
    pub outcome: Result<Option<&'a Value>, &'a PluginError>,
    pub elapsed: Duration,
}

/// Appends the call's line; every failure to do so is ignored.
pub fn record(call: &Call<'_>) {
    let settings: Settings = serde_json::from_slice(call.stdin).unwrap_or_default();
    // An invalid `logFile` fails the call (config.rs says why); its line goes
    // to the default file.
    let fallback = (call.env)(LOG_FILE_ENV);
    let path = match settings.log_file.as_deref().or(fallback.as_deref()) {
        Some("") => return,
        Some(p) if usable(Path::new(p)) => p,
        _ => DEFAULT_LOG_FILE,
    };
    let max = settings.log_max_bytes.unwrap_or(DEFAULT_LOG_MAX_BYTES);
    let mut line = line(call, settings.name).to_string();
    line.push('\n');
    let _ = append(Path::new(path), line.as_bytes(), max);
}

fn usable(p: &Path) -> bool {
    p.is_absolute() && !p.components().any(|c| c == std::path::Component::ParentDir)
}

fn line(call: &Call<'_>, network: Option<String>) -> Value {
    let env = |k: &str| (call.env)(k).filter(|v| !v.is_empty());
    let args = env("CNI_ARGS").unwrap_or_default();
    let arg = |key: &str| {
        args.split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let pod = match (arg("K8S_POD_NAMESPACE"), arg("K8S_POD_NAME")) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        _ => None,
    };
    let mut v = json!({
        "time": rfc3339_now(),
        "verb": env("CNI_COMMAND"),
        "network": network,
        "container": env("CNI_CONTAINERID"),
        "ifname": env("CNI_IFNAME"),
        "pod": pod,
        "durationMs": (call.elapsed.as_secs_f64() * 1e5).round() / 100.0,
    });
    match call.outcome {
        Ok(result) => {
            let addresses: Vec<Value> = result
                .and_then(|r| r.get("ips"))
                .and_then(Value::as_array)
                .map(|ips| {
                    ips.iter()
                        .filter_map(|i| i.get("address").cloned())
                        .collect()
                })
                .unwrap_or_default();
            if !addresses.is_empty() {
                v["addresses"] = Value::Array(addresses);
            }
            v["result"] = json!("ok");
        }
        Err(e) => {
            v["result"] = json!("error");
            v["code"] = json!(e.code().code());
            v["error"] = json!(e.to_string());
        }
    }
    v
}

/// Appends `bytes` (one write, so that concurrent plugins' lines never mix),
/// then rotates the file if it passed `max`. The directory is created 0700
/// and the file 0600 (pod names are in it); a symlink is never followed.
fn append(path: &Path, bytes: &[u8], max: u64) -> std::io::Result<()> {
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    // The directory exists on every call but the first: open first, and
    // create the directory only when the open says it is missing.
    let mut file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            open()?
        }
        other => other?,
    };
    file.write_all(bytes)?;
    let ours = file.metadata()?;
    if ours.len() > max {
        // Rotate only the file we wrote to: another plugin may have rotated it
        // since we opened it, and its new file must not be renamed away.
        let now = fs::symlink_metadata(path)?;
        if now.ino() == ours.ino() && now.dev() == ours.dev() {
            fs::rename(path, rotated(path))?;
        }
    }
    Ok(())
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// UTC time as RFC 3339 with milliseconds (no time crate needed: civil date
/// from days since the epoch, Howard Hinnant's `civil_from_days`).
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn time_is_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(t.starts_with("20"), "{t}");
    }

    #[test]
    fn a_line_per_call_and_rotation_bounds_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sub/aksnet-cni.log");
        let stdin = json!({"name": "net1", "logFile": log, "logMaxBytes": 400}).to_string();
        let env = |k: &str| match k {
            "CNI_COMMAND" => Some("ADD".to_string()),
            "CNI_CONTAINERID" => Some("c1".to_string()),
            "CNI_IFNAME" => Some("eth0".to_string()),
            "CNI_ARGS" => Some("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p".to_string()),
            _ => None,
        };
        let result = json!({"ips": [{"address": "10.0.0.5/24"}]});
        let call = Call {
            env: &env,
            stdin: stdin.as_bytes(),
            outcome: Ok(Some(&result)),
            elapsed: Duration::from_micros(2410),
        };
        record(&call);
        let text = fs::read_to_string(&log).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["verb"], "ADD");
        assert_eq!(first["pod"], "ns/p");
        assert_eq!(first["network"], "net1");
        assert_eq!(first["addresses"], json!(["10.0.0.5/24"]));
        assert_eq!(first["durationMs"], 2.41);
        assert_eq!(first["result"], "ok");
        // Lines of text.len() bytes with a 400-byte cap: the log rotates, and
        // the two files together never pass twice the cap plus one line.
        let one = text.len() as u64;
        for _ in 0..20 {
            record(&call);
            let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            assert!(size(&log) + size(&rotated(&log)) <= 2 * (400 + one));
        }
        let mode = fs::metadata(rotated(&log)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_empty_log_file_turns_it_off_and_errors_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let env = |k: &str| (k == "CNI_COMMAND").then(|| "DEL".to_string());
        let off = json!({"logFile": ""}).to_string();
        let err = PluginError::NotReady("x".into());
        record(&Call {
            env: &env,
            stdin: off.as_bytes(),
            outcome: Err(&err),
            elapsed: Duration::ZERO,
        });
        let log = dir.path().join("l.log");
        let on = json!({"logFile": log}).to_string();
        record(&Call {
            env: &env,
            stdin: on.as_bytes(),
            outcome: Err(&err),
            elapsed: Duration::ZERO,
        });
        let v: Value = serde_json::from_str(fs::read_to_string(&log).unwrap().trim()).unwrap();
        assert_eq!(v["result"], "error");
        assert_eq!(v["code"], 50);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
