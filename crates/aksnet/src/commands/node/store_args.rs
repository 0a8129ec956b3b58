//! The cluster store flags shared by `node join|leave|list` (docs/node.md, "Store
//! URLs"): `--store` (a directory or an `etcd://`/`etcds://` URL), TLS files and
//! credentials for etcd, and the whole-command deadline. Which store they open
//! (and etcdctl's environment names as fallbacks) is `aksnet_node::backend`'s.

use std::path::PathBuf;
use std::time::Duration;

use aksnet_node::StoreOptions;
use aksnet_store::{parse_store, Store, StoreSpec};

use super::{NodeError, DEFAULT_STORE_DIR};

#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// Cluster store: a directory (the embedded store),
    /// etcd://[user[:password]@]host:port[,host:port...][/prefix/], or etcds://... for
    /// etcd over TLS (etcd needs the `etcd` build feature).
    #[arg(long, value_name = "DIR|URL", default_value = DEFAULT_STORE_DIR, value_parser = parse_store_flag)]
    pub store: StoreSpec,
    /// etcds://: the CA bundle (PEM) that signs the etcd servers' certificates
    /// [env ETCDCTL_CACERT].
    #[arg(long, value_name = "FILE")]
    pub etcd_cacert: Option<PathBuf>,
    /// etcds://: client certificate (PEM) for etcd's --client-cert-auth [env ETCDCTL_CERT].
    #[arg(long, value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// etcds://: the client certificate's key (PEM) [env ETCDCTL_KEY].
    #[arg(long, value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
    /// etcd authentication: USER or USER:PASSWORD [env ETCDCTL_USER].
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub etcd_user: Option<String>,
    /// A file holding the etcd password (its trailing newline is dropped) [else env
    /// ETCDCTL_PASSWORD].
    #[arg(long, value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,
    /// Deadline for the whole command against etcd, retries included (e.g. 10s,
    /// 1500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub store_timeout: Duration,
}

fn parse_store_flag(s: &str) -> Result<StoreSpec, String> {
    parse_store(s).map_err(|e| e.to_string())
}

/// `10s`, `1500ms`, `2m`, or a bare number of seconds; 0 is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 10s, 1500ms or 1m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{s:?}: unit {unit:?} is not ms, s or m")),
    };
    if d.is_zero() {
        return Err(format!("{s:?}: the deadline must be longer than 0"));
    }
    Ok(d)
}

impl StoreArgs {
    /// How messages name the store.
    pub fn describe(&self) -> String {
        self.options().describe()
    }

    /// The store the flags name, for `aksnet_node`.
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            store: self.store.clone(),
            etcd_cacert: self.etcd_cacert.clone(),
            etcd_cert: self.etcd_cert.clone(),
            etcd_key: self.etcd_key.clone(),
            etcd_user: self.etcd_user.clone(),
            etcd_password_file: self.etcd_password_file.clone(),
            store_timeout: self.store_timeout,
        }
    }

    /// Opens the store the flags name.
    pub fn open(&self) -> Result<Box<dyn Store>, NodeError> {
        aksnet_node::open_store(&self.options())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_name_the_value() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "x", "10h", "0s", "-1s"] {
            assert!(
                parse_duration(bad)
                    .unwrap_err()
                    .contains(&format!("{bad:?}")),
                "{bad}"
            );
        }
    }
}
