//! The demo's NetworkPolicy act: a namespace goes default-deny, then one allow opens exactly
//! one path, shown live with real connections next to the model's verdicts (`lab netpol` on a
//! built-in probe file; docs/policy.md).

use std::io::Write;
use std::path::PathBuf;

use aksnet_policy::probe;

use crate::error::{LabError, Result};
use crate::exec::Binaries;
use crate::netpol::{netpol, NetpolOptions};
use crate::spec::Model;

/// prod/web and prod/api share node 1 (kubenet: bridged on cbr0), dev/client is on node 2.
const SCENARIO: &str = r#"{"steps": [
 {"name": "no policy: everything open",
  "cluster": {"namespaces": [{"name": "prod"}, {"name": "dev"}],
   "pods": [{"namespace": "prod", "name": "web", "labels": {"app": "web"}, "ip": "10.244.1.10"},
            {"namespace": "prod", "name": "api", "labels": {"app": "api"}, "ip": "10.244.1.11"},
            {"namespace": "dev", "name": "client", "labels": {"app": "client"}, "ip": "10.244.2.10"}]},
  "policies": [], "probes": [{"port": 80}],
  "expect": {"default": true}},
 {"name": "prod default-deny ingress",
  "policies": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": "prod"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}],
  "expect": {"rules": [{"to": "prod/*", "allowed": false}]}},
 {"name": "plus: allow prod/api -> prod/web on 80/TCP",
  "policies": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": "prod"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
               {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-from-api", "namespace": "prod"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 80}]}]}}],
  "expect": {"rules": [{"to": "prod/*", "allowed": false}, {"from": "prod/api", "to": "prod/web", "allowed": true}]}}
]}"#;

/// Runs the act in one model; `Ok(true)` when every connection behaved as the model says.
pub fn policy_act(
    prefix: &str,
    model: Model,
    state_dir: PathBuf,
    bins: &Binaries,
    out: &mut dyn Write,
) -> Result<bool> {
    let scenario =
        probe::parse("built-in demo scenario", SCENARIO).map_err(|e| LabError::State {
            path: state_dir.clone(),
            why: e.to_string(),
        })?;
    let _ = writeln!(
        out,
        "  NetworkPolicy ({}): pods prod/web and prod/api on one node, dev/client on another",
        model.title()
    );
    let opts = NetpolOptions {
        prefix: prefix.to_string(),
        model,
        state_dir,
    };
    let report = netpol(&scenario, &opts, bins, &mut std::io::sink())?;
    for s in &report.steps {
        let _ = writeln!(out, "    {}:", s.name);
        for r in &s.verdicts {
            let seen = match r.observed {
                Some(true) => "connected",
                Some(false) => "blocked",
                None => "not run",
            };
            let ok = if r.mismatch() { "MISMATCH" } else { "ok" };
            let _ = writeln!(
                out,
                "      {:<12} -> {:<10} {}/{}  policy says {:<5}  real connection {:<9} {ok}",
                r.from,
                r.to,
                r.port,
                r.protocol,
                if r.allowed { "allow" } else { "deny" },
                seen
            );
        }
    }
    Ok(report.mismatches() == 0)
}
