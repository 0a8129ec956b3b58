//! Defaulting and validation: each invalid field is reported with its path and value, and the
//! API's defaults (policyTypes, protocol) are applied.
#![allow(clippy::unwrap_used)]

use aksnet_policy::k8s::NetworkPolicy;
use aksnet_policy::model::{PortMatch, Protocol};
use aksnet_policy::validate;

fn parse(yaml: &str) -> NetworkPolicy {
    serde_norway::from_str(yaml).unwrap()
}

fn errors(yaml: &str) -> Vec<(String, String)> {
    validate::policy(&parse(yaml))
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.value))
        .collect()
}

const HEAD: &str =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n";

#[test]
fn policy_types_default_follows_egress_rules() {
    let p = validate::policy(&parse(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  egress: [{{}}]\n"
    )))
    .unwrap();
    assert!(p.ingress.is_some() && p.egress.is_some());
    let p = validate::policy(&parse(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  egress: []\n"
    )))
    .unwrap();
    assert!(p.ingress.is_some() && p.egress.is_none());
    let p = validate::policy(&parse(&format!(
        "{HEAD}spec:\n  podSelector:\n  policyTypes: [Egress]\n"
    )))
    .unwrap();
    assert!(p.ingress.is_none() && p.egress == Some(vec![]));
}

#[test]
fn port_defaults_to_tcp_and_end_port_is_a_range() {
    let p = validate::policy(&parse(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  ingress:\n  - ports: [{{port: 80, endPort: 90}}, {{protocol: UDP}}]\n"
    )))
    .unwrap();
    let ports = p.ingress.unwrap()[0].ports.clone().unwrap();
    assert_eq!(ports[0].protocol, Protocol::Tcp);
    assert_eq!(ports[0].port, PortMatch::Range(80, 90));
    assert_eq!(ports[1].port, PortMatch::All);
}

#[test]
fn invalid_fields_are_named() {
    let cases = [
        ("  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]\n", "spec.ingress[0].from[0].ipBlock.except[0]"),
        ("  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]\n", "spec.ingress[0].from[0].ipBlock.except[0]"),
        ("  ingress:\n  - from: [{ipBlock: {cidr: banana}}]\n", "spec.ingress[0].from[0].ipBlock.cidr"),
        ("  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]\n", "spec.ingress[0].from[0].ipBlock"),
        ("  ingress:\n  - from: [{}]\n", "spec.ingress[0].from[0]"),
        ("  egress:\n  - ports: [{port: 0}]\n", "spec.egress[0].ports[0].port"),
        ("  egress:\n  - ports: [{port: 90, endPort: 80}]\n", "spec.egress[0].ports[0].endPort"),
        ("  egress:\n  - ports: [{port: web, endPort: 80}]\n", "spec.egress[0].ports[0].endPort"),
        ("  egress:\n  - ports: [{endPort: 80}]\n", "spec.egress[0].ports[0].endPort"),
        ("  egress:\n  - ports: [{port: Web_1}]\n", "spec.egress[0].ports[0].port"),
        ("  egress:\n  - ports: [{protocol: ICMP}]\n", "spec.egress[0].ports[0].protocol"),
        ("  policyTypes: [Ingress, Ingress]\n", "spec.policyTypes[1]"),
        ("  policyTypes: [Both]\n", "spec.policyTypes[0]"),
        ("  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: a, operator: In}]}}]\n", "spec.ingress[0].from[0].podSelector.matchExpressions[0].values"),
        ("  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}}]\n", "spec.ingress[0].from[0].podSelector.matchExpressions[0].values"),
        ("  ingress:\n  - from: [{namespaceSelector: {matchExpressions: [{key: a, operator: Gt, values: ['1']}]}}]\n", "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].operator"),
        ("  ingress:\n  - from: [{podSelector: {matchLabels: {'-bad': x}}}]\n", "spec.ingress[0].from[0].podSelector.matchLabels"),
    ];
    for (spec, field) in cases {
        let errs = errors(&format!("{HEAD}spec:\n  podSelector: {{}}\n{spec}"));
        assert!(
            errs.iter().any(|(f, _)| f == field),
            "{spec}: want {field}, got {errs:?}"
        );
    }
}

#[test]
fn unknown_spec_fields_are_refused() {
    let r: Result<NetworkPolicy, _> = serde_norway::from_str(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  ingress:\n  - from: [{{namespaceSelctor: {{}}}}]\n"
    ));
    assert!(r.unwrap_err().to_string().contains("namespaceSelctor"));
}

#[test]
fn missing_namespace_is_an_error() {
    let errs = errors("metadata: {name: p}\nspec: {podSelector: {}}\n");
    assert!(
        errs.iter().any(|(f, _)| f == "metadata.namespace"),
        "{errs:?}"
    );
}
