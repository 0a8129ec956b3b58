//! Which cluster store a node operation uses (docs/node.md, "Store URLs"): a
//! directory is the embedded store, an `etcd://`/`etcds://` URL the etcd store,
//! completed by TLS files and credentials, with etcdctl's environment names as
//! fallbacks, and a deadline for the whole operation.

use std::path::PathBuf;
use std::time::Duration;

use aksnet_store::spec::Secret;
use aksnet_store::{EmbeddedStore, EtcdConfig, Store, StoreSpec};

use crate::NodeError;

/// etcdctl's environment names (etcd's etcdctl/README.md, "global flags"), read
/// when the matching option is absent.
const ENV_CACERT: &str = "ETCDCTL_CACERT";
const ENV_CERT: &str = "ETCDCTL_CERT";
const ENV_KEY: &str = "ETCDCTL_KEY";
const ENV_USER: &str = "ETCDCTL_USER";
const ENV_PASSWORD: &str = "ETCDCTL_PASSWORD";

/// Where the cluster store is and how to reach it.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub store: StoreSpec,
    /// etcds://: the CA bundle (PEM) of the etcd servers [env ETCDCTL_CACERT].
    pub etcd_cacert: Option<PathBuf>,
    /// etcds://: the client certificate (PEM) [env ETCDCTL_CERT].
    pub etcd_cert: Option<PathBuf>,
    /// etcds://: the client certificate's key (PEM) [env ETCDCTL_KEY].
    pub etcd_key: Option<PathBuf>,
    /// `USER` or `USER:PASSWORD` [env ETCDCTL_USER].
    pub etcd_user: Option<String>,
    /// A file holding the etcd password [else env ETCDCTL_PASSWORD].
    pub etcd_password_file: Option<PathBuf>,
    /// Deadline for the whole operation against etcd, retries included.
    pub store_timeout: Duration,
}

impl StoreOptions {
    /// How messages name the store.
    pub fn describe(&self) -> String {
        match &self.store {
            StoreSpec::Embedded(dir) => dir.display().to_string(),
            StoreSpec::Etcd(c) => c.url(),
        }
    }

    /// The etcd config: the URL's, completed by the options, then etcdctl's
    /// environment. TLS files from the environment apply only to etcds:// (an
    /// etcdctl environment for another cluster must not break a plain etcd:// URL);
    /// TLS options with etcd:// are an error (the store says so).
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
}

/// Opens the store `o` names.
pub fn open_store(o: &StoreOptions) -> Result<Box<dyn Store>, NodeError> {
    match &o.store {
        StoreSpec::Embedded(dir) => Ok(Box::new(EmbeddedStore::new(dir))),
        #[cfg(feature = "etcd")]
        StoreSpec::Etcd(url) => Ok(Box::new(aksnet_store::EtcdStore::connect(
            o.etcd_config(url)?,
        )?)),
        #[cfg(not(feature = "etcd"))]
        StoreSpec::Etcd(url) => {
            o.etcd_config(url)?;
            Err(NodeError::EtcdNotCompiled { value: url.url() })
        }
    }
}
