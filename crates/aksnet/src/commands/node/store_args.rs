//! The cluster store flags shared by `node join|leave|list` (docs/node.md, "Store
//! URLs"): `--store` (a directory or an `etcd://`/`etcds://` URL), TLS files and
//! credentials for etcd with etcdctl's environment names as fallbacks, and the
//! whole-command deadline.

use std::path::PathBuf;
use std::time::Duration;

use aksnet_store::spec::Secret;
use aksnet_store::{parse_store, EmbeddedStore, EtcdConfig, Store, StoreSpec};

use super::{NodeError, DEFAULT_STORE_DIR};

/// etcdctl's environment names (etcd's etcdctl/README.md, "global flags"), read
/// when the matching flag is absent.
const ENV_CACERT: &str = "ETCDCTL_CACERT";
const ENV_CERT: &str = "ETCDCTL_CERT";
const ENV_KEY: &str = "ETCDCTL_KEY";
const ENV_USER: &str = "ETCDCTL_USER";
const ENV_PASSWORD: &str = "ETCDCTL_PASSWORD";

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
        match &self.store {
            StoreSpec::Embedded(dir) => dir.display().to_string(),
            StoreSpec::Etcd(c) => c.url(),
        }
    }

    /// The etcd config: the URL's, completed by the flags, then etcdctl's
    /// environment. TLS files from the environment apply only to etcds:// (an
    /// etcdctl environment for another cluster must not break a plain etcd:// URL);
    /// TLS flags with etcd:// are an error (the store says so).
    fn etcd_config(&self, url: &EtcdConfig) -> Result<EtcdConfig, NodeError> {
        let mut c = url.clone();
        let env = |name| std::env::var_os(name).map(PathBuf::from);
        let tls_env = |name| if c.tls { env(name) } else { None };
        c.ca_file = self.etcd_cacert.clone().or_else(|| tls_env(ENV_CACERT));
        c.cert_file = self.etcd_cert.clone().or_else(|| tls_env(ENV_CERT));
        c.key_file = self.etcd_key.clone().or_else(|| tls_env(ENV_KEY));
        let user_flag = self
            .etcd_user
            .clone()
            .or_else(|| std::env::var(ENV_USER).ok().filter(|u| !u.is_empty()));
        if c.user.is_none() {
            if let Some(u) = user_flag {
                match u.split_once(':') {
                    Some((user, pw)) => {
                        c.user = Some(user.to_string());
                        c.password = Some(Secret(pw.to_string()));
                    }
                    None => c.user = Some(u),
                }
            }
        }
        if c.user.is_some() && c.password.is_none() {
            c.password = self.password()?;
        }
        c.deadline = self.store_timeout;
        c.attempt_timeout = c.attempt_timeout.min(self.store_timeout);
        Ok(c)
    }

    fn password(&self) -> Result<Option<Secret>, NodeError> {
        match &self.etcd_password_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| NodeError::PasswordFile {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Some(Secret(
                    text.trim_end_matches(['\n', '\r']).to_string(),
                )))
            }
            None => Ok(std::env::var(ENV_PASSWORD).ok().map(Secret)),
        }
    }

    /// Opens the store the flags name.
    pub fn open(&self) -> Result<Box<dyn Store>, NodeError> {
        match &self.store {
            StoreSpec::Embedded(dir) => Ok(Box::new(EmbeddedStore::new(dir))),
            #[cfg(feature = "etcd")]
            StoreSpec::Etcd(url) => Ok(Box::new(aksnet_store::EtcdStore::connect(
                self.etcd_config(url)?,
            )?)),
            #[cfg(not(feature = "etcd"))]
            StoreSpec::Etcd(url) => {
                self.etcd_config(url)?;
                Err(NodeError::EtcdNotCompiled { value: url.url() })
            }
        }
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
