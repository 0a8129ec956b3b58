//! Every catalogue rule: at least one plan that triggers it, and clean plans of every model
//! that trigger nothing (the "does not trigger" side for every rule).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

use aksnet_plan::model::Plugin;
use aksnet_plan::{input, plan, PlanOptions, Report, WhatIf, RULES};
use serde_json::{json, Value};

fn node_subnet() -> Value {
    json!({
        "apiVersion": "aksnet/v1",
        "cluster": {
            "name": "t", "tier": "standard", "kubernetesVersion": "1.33", "identity": "UserAssigned",
            "network": {"plugin": "azure", "serviceCidr": "10.200.0.0/16", "dnsServiceIp": "10.200.0.10"},
            "pools": [{"name": "system", "mode": "System", "count": 3, "maxPods": 30, "subnet": "nodes", "maxSurge": "1"}]
        },
        "vnet": {"name": "vnet", "resourceGroup": "rg", "addressSpace": ["172.16.0.0/16"],
                 "subnets": [{"name": "nodes", "prefix": "172.16.0.0/22"}]}
    })
}

fn kubenet() -> Value {
    let mut v = node_subnet();
    v["cluster"]["network"] = json!({"plugin": "kubenet", "podCidr": "10.244.0.0/16", "serviceCidr": "10.200.0.0/16", "dnsServiceIp": "10.200.0.10"});
    v["cluster"]["pools"][0]["maxPods"] = json!(110);
    v["vnet"]["subnets"][0]["routeTable"] = json!("rt");
    v
}

fn overlay() -> Value {
    let mut v = node_subnet();
    v["cluster"]["network"] = json!({"plugin": "azure", "pluginMode": "overlay", "podCidr": "10.244.0.0/16", "serviceCidr": "10.200.0.0/16", "dnsServiceIp": "10.200.0.10"});
    v["cluster"]["pools"][0]["maxPods"] = json!(250);
    v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/20");
    v
}

fn pod_subnet() -> Value {
    let mut v = node_subnet();
    v["cluster"]["pools"][0]["podSubnet"] = json!("pods");
    v["cluster"]["pools"][0]["maxPods"] = json!(31);
    v["vnet"]["subnets"] = json!([{"name": "nodes", "prefix": "172.16.0.0/24"}, {"name": "pods", "prefix": "172.16.4.0/22"}]);
    v
}

fn run(v: &Value, w: WhatIf) -> Report {
    let text = serde_json::to_string(v).unwrap();
    let input =
        input::load_texts(&[(PathBuf::from("case.json"), text)]).unwrap_or_else(|e| panic!("{e}"));
    plan(
        &input,
        &PlanOptions {
            what_if: w,
            growth: None,
        },
    )
}

fn rules_of(r: &Report) -> BTreeSet<&'static str> {
    r.findings.iter().map(|f| f.rule.as_str()).collect()
}

fn migrate() -> WhatIf {
    WhatIf {
        migrate_to_overlay: true,
        pod_cidr: Some("10.250.0.0/16".into()),
        ..WhatIf::default()
    }
}

type Case = (&'static str, fn() -> Value, fn(&mut Value), fn() -> WhatIf);

fn none() -> WhatIf {
    WhatIf::default()
}

fn cases() -> Vec<Case> {
    vec![
        (
            "S1",
            node_subnet,
            |v| v["cluster"]["network"]["serviceCidr"] = json!("10.200.0.0/33"),
            none,
        ),
        (
            "X1",
            node_subnet,
            |v| v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/40"),
            none,
        ),
        (
            "X2",
            node_subnet,
            |v| v["cluster"]["pools"][0]["subnet"] = json!("missing"),
            none,
        ),
        (
            "R1",
            node_subnet,
            |v| {
                v["cluster"]["network"]["serviceCidr"] = json!("172.30.0.0/16");
                v["cluster"]["network"]["dnsServiceIp"] = json!("172.30.0.10");
            },
            none,
        ),
        (
            "R2",
            node_subnet,
            |v| {
                v["cluster"]["network"]["serviceCidr"] = json!("20.0.0.0/16");
                v["cluster"]["network"]["dnsServiceIp"] = json!("20.0.0.10");
            },
            none,
        ),
        (
            "R3",
            overlay,
            |v| v["cluster"]["network"]["podCidr"] = json!("20.0.0.0/16"),
            none,
        ),
        (
            "R4",
            node_subnet,
            |v| v["vnet"]["addressSpace"] = json!(["172.16.0.0/16", "127.0.0.0/8"]),
            none,
        ),
        (
            "R4a",
            node_subnet,
            |v| v["vnet"]["addressSpace"] = json!(["172.16.0.0/16", "20.1.0.0/16"]),
            none,
        ),
        (
            "R5",
            node_subnet,
            |v| {
                v.as_object_mut().unwrap().remove("vnet");
                v["cluster"]["pools"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("subnet");
                v["cluster"]["network"]["serviceCidr"] = json!("10.224.0.0/16");
                v["cluster"]["network"]["dnsServiceIp"] = json!("10.224.0.10");
            },
            none,
        ),
        (
            "S2",
            node_subnet,
            |v| {
                v["cluster"]["network"]["serviceCidr"] = json!("172.16.0.0/20");
                v["cluster"]["network"]["dnsServiceIp"] = json!("172.16.0.10");
            },
            none,
        ),
        (
            "S3",
            node_subnet,
            |v| {
                v["cluster"]["network"]["serviceCidr"] = json!("172.16.128.0/20");
                v["cluster"]["network"]["dnsServiceIp"] = json!("172.16.128.10");
            },
            none,
        ),
        (
            "S4",
            node_subnet,
            |v| v["peers"] = json!(["10.200.0.0/16"]),
            none,
        ),
        (
            "S5",
            kubenet,
            |v| v["cluster"]["network"]["podCidr"] = json!("10.200.0.0/16"),
            none,
        ),
        (
            "S6",
            node_subnet,
            |v| {
                v["cluster"]["network"]["serviceCidr"] = json!("10.0.0.0/11");
                v["cluster"]["network"]["dnsServiceIp"] = json!("10.0.0.10");
            },
            none,
        ),
        (
            "S6a",
            node_subnet,
            |v| {
                v["cluster"]["network"]["serviceCidr"] = json!("10.0.0.0/12");
                v["cluster"]["network"]["dnsServiceIp"] = json!("10.0.0.10");
            },
            none,
        ),
        (
            "S7",
            node_subnet,
            |v| v["cluster"]["network"]["serviceCidr"] = json!("10.200.0.1/16"),
            none,
        ),
        (
            "S8",
            node_subnet,
            |v| v["cluster"]["kubernetesVersion"] = json!("1.30"),
            none,
        ),
        (
            "S10",
            node_subnet,
            |v| {
                v["vnet"]["addressSpace"] = json!(["10.1.0.0/16"]);
                v["vnet"]["subnets"][0]["prefix"] = json!("10.1.0.0/22");
                // No service CIDR given: the default 10.0.0.0/16 lands beside 10.1.0.0/16.
                let n = v["cluster"]["network"].as_object_mut().unwrap();
                n.remove("serviceCidr");
                n.remove("dnsServiceIp");
            },
            none,
        ),
        (
            "D1",
            node_subnet,
            |v| v["cluster"]["network"]["dnsServiceIp"] = json!("10.0.0.10"),
            none,
        ),
        (
            "D2",
            node_subnet,
            |v| v["cluster"]["network"]["dnsServiceIp"] = json!("10.200.0.0"),
            none,
        ),
        (
            "D3",
            node_subnet,
            |v| v["cluster"]["network"]["dnsServiceIp"] = json!("10.200.0.1"),
            none,
        ),
        (
            "D4",
            node_subnet,
            |v| {
                v["vnet"]["addressSpace"] = json!(["172.16.0.0/16", "10.200.0.0/24"]);
                v["vnet"]["subnets"] = json!([{"name": "nodes", "prefix": "172.16.0.0/22"}, {"name": "api", "prefix": "10.200.0.0/28", "delegations": ["Microsoft.ContainerService/managedClusters"]}]);
                v["cluster"]["apiServerSubnet"] = json!("api");
            },
            none,
        ),
        (
            "D5",
            node_subnet,
            |v| v["cluster"]["network"]["dnsServiceIp"] = json!("10.200.0.20"),
            none,
        ),
        (
            "D6",
            node_subnet,
            |v| v["cluster"]["network"]["dnsServiceIp"] = json!("fd00::10"),
            none,
        ),
        (
            "D7",
            overlay,
            |v| {
                v["cluster"]["network"]
                    .as_object_mut()
                    .unwrap()
                    .remove("plugin");
                v["cluster"]["network"]
                    .as_object_mut()
                    .unwrap()
                    .remove("pluginMode");
            },
            none,
        ),
        (
            "P1",
            node_subnet,
            |v| v["cluster"]["network"]["podCidr"] = json!("10.244.0.0/16"),
            none,
        ),
        (
            "P2",
            overlay,
            |v| v["cluster"]["network"]["podCidr"] = json!("10.244.0.0/24"),
            none,
        ),
        (
            "P3",
            overlay,
            |v| v["cluster"]["network"]["podCidr"] = json!("172.16.0.0/19"),
            none,
        ),
        (
            "P3a",
            overlay,
            |v| v["cluster"]["network"]["podCidr"] = json!("172.16.128.0/17"),
            none,
        ),
        (
            "P4",
            overlay,
            |v| v["onPrem"] = json!(["10.244.0.0/16"]),
            none,
        ),
        (
            "P6",
            overlay,
            |_| {},
            || WhatIf {
                pod_cidr: Some("10.245.0.0/16".into()),
                ..WhatIf::default()
            },
        ),
        (
            "N1",
            node_subnet,
            |v| v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/26"),
            none,
        ),
        (
            "N2",
            kubenet,
            |v| {
                v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/24");
                v["cluster"]["pools"][0]["count"] = json!(300);
            },
            none,
        ),
        (
            "N3",
            node_subnet,
            |v| {
                v["cluster"]["live"] = json!(true);
                v["vnet"]["subnets"][0]["usedIps"] = json!(1015);
            },
            none,
        ),
        (
            "N4",
            node_subnet,
            |v| v["vnet"]["subnets"][0]["delegations"] = json!(["Microsoft.Sql/managedInstances"]),
            none,
        ),
        (
            "N5",
            node_subnet,
            |v| v["vnet"]["subnets"][0]["otherIps"] = json!(10),
            none,
        ),
        (
            "N6",
            kubenet,
            |v| {
                v["vnet"]["subnets"] = json!([{"name": "nodes", "prefix": "172.16.0.0/22", "routeTable": "rt1"}, {"name": "more", "prefix": "172.16.4.0/22", "routeTable": "rt2"}]);
                v["cluster"]["pools"] = json!([{"name": "system", "mode": "System", "count": 3, "subnet": "nodes", "maxSurge": "1"}, {"name": "user", "mode": "User", "count": 3, "subnet": "more", "maxSurge": "1"}]);
            },
            none,
        ),
        (
            "N7",
            pod_subnet,
            |v| v["cluster"]["pools"][0]["podSubnet"] = json!("nodes"),
            none,
        ),
        (
            "N8",
            overlay,
            |v| {
                let long = "s".repeat(64);
                v["vnet"]["subnets"][0]["name"] = json!(long);
                v["cluster"]["pools"][0]["subnet"] = json!(long);
            },
            none,
        ),
        (
            "N9",
            node_subnet,
            |v| {
                v["vnet"]["subnets"] = json!([{"name": "nodes", "prefix": "172.16.0.0/22"}, {"name": "api", "prefix": "172.16.8.0/29"}]);
                v["cluster"]["apiServerSubnet"] = json!("api");
            },
            none,
        ),
        (
            "N10",
            node_subnet,
            |v| {
                v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/16");
                v["cluster"]["pools"][0]["count"] = json!(900);
                v["cluster"]["pools"][0]["maxPods"] = json!(250);
            },
            none,
        ),
        (
            "N11",
            node_subnet,
            |v| v["cluster"]["appGatewaySubnetCidr"] = json!("10.50.0.0/24"),
            none,
        ),
        (
            "N12",
            node_subnet,
            |v| v["vnet"]["subnets"][0]["nsg"] = json!("nsg-aks"),
            none,
        ),
        (
            "N13",
            node_subnet,
            |v| v["onPrem"] = json!(["172.16.0.0/12"]),
            none,
        ),
        (
            "M1",
            node_subnet,
            |v| v["cluster"]["pools"][0]["maxPods"] = json!(300),
            none,
        ),
        (
            "M2",
            node_subnet,
            |v| {
                v["cluster"]["pools"][0]["maxPods"] = json!(10);
                v["cluster"]["pools"][0]["count"] = json!(2);
            },
            none,
        ),
        (
            "M2a",
            node_subnet,
            |v| {
                v["cluster"]["pools"][0] = json!({"name": "system", "mode": "System", "count": 3, "minCount": 1, "maxCount": 5, "autoscale": true, "maxPods": 10, "subnet": "nodes", "maxSurge": "1"});
            },
            none,
        ),
        (
            "M4",
            node_subnet,
            |v| {
                let arr = v["cluster"]["pools"].as_array_mut().unwrap();
                arr.push(json!({"name": "win", "mode": "User", "osType": "Windows", "count": 3, "maxPods": 30, "subnet": "nodes", "maxSurge": "1"}));
            },
            none,
        ),
        (
            "M5",
            node_subnet,
            |_| {},
            || WhatIf {
                plugin: Some(Plugin::Kubenet),
                ..WhatIf::default()
            },
        ),
        (
            "M6",
            pod_subnet,
            |v| {
                v["cluster"]["pools"][0]["podIpAllocationMode"] = json!("StaticBlock");
                v["cluster"]["pools"][0]["maxPods"] = json!(30);
            },
            none,
        ),
        (
            "C1",
            kubenet,
            |v| {
                v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/22");
                v["cluster"]["pools"][0]["count"] = json!(401);
            },
            none,
        ),
        (
            "C2",
            overlay,
            |v| {
                v["cluster"]["tier"] = json!("free");
                v["cluster"]["pools"][0]["count"] = json!(600);
                let arr = v["cluster"]["pools"].as_array_mut().unwrap();
                arr.push(json!({"name": "user", "mode": "User", "count": 600, "subnet": "nodes"}));
            },
            none,
        ),
        (
            "C3",
            overlay,
            |v| v["cluster"]["pools"][0]["count"] = json!(1001),
            none,
        ),
        (
            "C4",
            overlay,
            |v| {
                v["cluster"]["tier"] = json!("free");
                v["cluster"]["network"]["podCidr"] = json!("10.0.0.0/13");
                v["cluster"]["network"]["serviceCidr"] = json!("10.200.0.0/16");
                v["cluster"]["pools"][0]["count"] = json!(500);
                v["cluster"]["pools"][0]["maxSurge"] = json!("10%");
                let arr = v["cluster"]["pools"].as_array_mut().unwrap();
                arr.push(json!({"name": "user", "mode": "User", "count": 500, "subnet": "nodes", "maxSurge": "10%"}));
            },
            none,
        ),
        (
            "C5",
            node_subnet,
            |v| {
                v["cluster"]["pools"][0] = json!({"name": "system", "mode": "System", "count": 3, "minCount": 5, "maxCount": 3, "autoscale": true, "subnet": "nodes", "maxSurge": "1"});
            },
            none,
        ),
        (
            "C6",
            node_subnet,
            |v| v["cluster"]["pools"][0]["mode"] = json!("User"),
            none,
        ),
        (
            "C7",
            overlay,
            |v| {
                v["cluster"]["network"]["policy"] = json!("azure");
                v["cluster"]["network"]["podCidr"] = json!("10.0.0.0/14");
                v["cluster"]["pools"][0]["count"] = json!(300);
            },
            none,
        ),
        (
            "C8",
            kubenet,
            |v| {
                v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/22");
                v["cluster"]["pools"][0]["count"] = json!(390);
                v["cluster"]["pools"][0]["maxSurge"] = json!("20");
            },
            none,
        ),
        (
            "U1",
            node_subnet,
            |v| v["cluster"]["pools"][0]["maxSurge"] = json!("lots"),
            none,
        ),
        (
            "U3",
            node_subnet,
            |v| v["cluster"]["pools"][0]["maxSurge"] = json!("0"),
            none,
        ),
        (
            "U4",
            node_subnet,
            |v| {
                v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/24");
                v["cluster"]["pools"][0]["count"] = json!(8);
            },
            none,
        ),
        (
            "U5",
            overlay,
            |v| {
                v["cluster"]["network"]["podCidr"] = json!("10.0.0.0/13");
                v["cluster"]["pools"][0]["count"] = json!(600);
                v["cluster"]["pools"][0]["maxSurge"] = json!("33%");
            },
            none,
        ),
        (
            "U6",
            node_subnet,
            |v| {
                let arr = v["cluster"]["pools"].as_array_mut().unwrap();
                arr.push(json!({"name": "spot", "mode": "User", "count": 3, "maxPods": 30, "subnet": "nodes", "spot": true}));
            },
            none,
        ),
        (
            "V1",
            overlay,
            |v| v["cluster"]["network"]["ipFamilies"] = json!(["IPv6"]),
            none,
        ),
        (
            "V2",
            overlay,
            |v| {
                v["cluster"]["network"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
                v["cluster"]["network"]["serviceCidrs"] = json!(["fd00::/108", "10.200.0.0/16"]);
                v["cluster"]["network"]
                    .as_object_mut()
                    .unwrap()
                    .remove("serviceCidr");
            },
            none,
        ),
        (
            "V3",
            overlay,
            |v| {
                v["cluster"]["network"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
                v["cluster"]["network"]["serviceCidrs"] = json!(["10.200.0.0/16", "fd00::/64"]);
                v["cluster"]["network"]
                    .as_object_mut()
                    .unwrap()
                    .remove("serviceCidr");
            },
            none,
        ),
        (
            "V5",
            node_subnet,
            |v| v["cluster"]["network"]["ipFamilies"] = json!(["IPv4", "IPv6"]),
            none,
        ),
        (
            "V6",
            overlay,
            |v| {
                v["cluster"]["network"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
                v["cluster"]["network"]["serviceCidrs"] = json!(["fd00::/108", "10.200.0.0/16"]);
                v["cluster"]["network"]
                    .as_object_mut()
                    .unwrap()
                    .remove("serviceCidr");
            },
            none,
        ),
        (
            "V7",
            overlay,
            |v| {
                v["cluster"]["network"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
                v["cluster"]["kubernetesVersion"] = json!("1.20.7");
            },
            none,
        ),
        (
            "B1",
            node_subnet,
            |v| v["cluster"]["network"]["dockerBridgeCidr"] = json!("172.16.0.1/16"),
            none,
        ),
        (
            "B2",
            node_subnet,
            |v| v["cluster"]["network"]["dockerBridgeCidr"] = json!("172.17.0.1/16"),
            none,
        ),
        (
            "PS1",
            pod_subnet,
            |v| v["vnet"]["subnets"][1]["prefix"] = json!("172.16.4.0/28"),
            none,
        ),
        (
            "PS2",
            pod_subnet,
            |v| {
                v["vnet"]["subnets"][1]["prefix"] = json!("172.16.4.0/24");
                v["cluster"]["pools"][0]["maxPods"] = json!(250);
            },
            none,
        ),
        (
            "PS3",
            pod_subnet,
            |v| v["cluster"]["pools"][0]["podIpAllocationMode"] = json!("Bogus"),
            none,
        ),
        (
            "PS4",
            pod_subnet,
            |v| {
                v["cluster"]["pools"][0]["podIpAllocationMode"] = json!("StaticBlock");
                v["cluster"]["kubernetesVersion"] = json!("1.27");
            },
            none,
        ),
        (
            "O1",
            kubenet,
            |v| {
                let arr = v["cluster"]["pools"].as_array_mut().unwrap();
                arr.push(json!({"name": "win", "mode": "User", "osType": "Windows", "count": 3, "subnet": "nodes", "maxSurge": "1"}));
            },
            none,
        ),
        (
            "O2",
            node_subnet,
            |v| v["cluster"]["network"]["loadBalancerSku"] = json!("basic"),
            none,
        ),
        (
            "O3",
            node_subnet,
            |v| {
                v.as_object_mut().unwrap().remove("vnet");
                v["cluster"]["pools"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("subnet");
                v["cluster"]["network"]["outboundType"] = json!("userDefinedRouting");
            },
            none,
        ),
        (
            "O4",
            overlay,
            |v| v["cluster"]["pools"][0]["availabilitySet"] = json!(true),
            none,
        ),
        (
            "MG1",
            kubenet,
            |v| v["cluster"]["kubernetesVersion"] = json!("1.26"),
            migrate,
        ),
        ("MG2", overlay, |_| {}, migrate),
        (
            "MG3",
            node_subnet,
            |v| v["cluster"]["network"]["policy"] = json!("azure"),
            migrate,
        ),
        (
            "MG3a",
            kubenet,
            |v| v["cluster"]["network"]["policy"] = json!("calico"),
            migrate,
        ),
        (
            "MG4",
            node_subnet,
            |_| {},
            || WhatIf {
                migrate_to_overlay: true,
                ..WhatIf::default()
            },
        ),
        (
            "MG5",
            kubenet,
            |v| v["cluster"]["identity"] = json!("SystemAssigned"),
            || WhatIf {
                migrate_to_overlay: true,
                pod_cidr: Some("10.244.0.0/15".into()),
                ..WhatIf::default()
            },
        ),
        ("MG6", node_subnet, |_| {}, migrate),
        ("K1", kubenet, |_| {}, none),
        (
            "NAP1",
            node_subnet,
            |v| v["cluster"]["nodeAutoProvisioning"] = json!(true),
            none,
        ),
        (
            "H1",
            node_subnet,
            // 7 × 31 = 217 of a /24's 251 addresses: 34 left, one more node.
            |v| {
                v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/24");
                v["cluster"]["pools"][0]["count"] = json!(6);
            },
            none,
        ),
        ("V8", arm_dual_stack_no_plugin, |_| {}, none),
        ("IN1", arm_template_unresolved, |_| {}, none),
        ("IN2", vnet_only, |_| {}, none),
    ]
}

/// An ARM GET of a dual-stack cluster that names no network plugin.
fn arm_dual_stack_no_plugin() -> Value {
    json!({
        "name": "ds", "type": "Microsoft.ContainerService/managedClusters",
        "properties": {
            "kubernetesVersion": "1.33",
            "networkProfile": {"ipFamilies": ["IPv4", "IPv6"]},
            "agentPoolProfiles": [{"name": "system", "mode": "System", "count": 3}]
        }
    })
}

/// An ARM template whose service CIDR is a parameter without a value.
fn arm_template_unresolved() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"svc": {"type": "string"}},
        "resources": [{
            "type": "Microsoft.ContainerService/managedClusters", "apiVersion": "2024-05-01",
            "name": "[uniqueString(resourceGroup().id)]",
            "properties": {
                "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay", "serviceCidr": "[parameters('svc')]"},
                "agentPoolProfiles": [{"name": "system", "mode": "System", "count": 3}]
            }
        }]
    })
}

/// A spec file with a VNet and no cluster.
fn vnet_only() -> Value {
    json!({
        "apiVersion": "aksnet/v1",
        "vnet": {"name": "vnet", "addressSpace": ["172.16.0.0/16"],
                 "subnets": [{"name": "nodes", "prefix": "172.16.0.0/24"}]}
    })
}

#[test]
fn clean_plans_of_every_model_have_no_findings() {
    for (name, base) in [
        ("node subnet", node_subnet as fn() -> Value),
        ("kubenet", kubenet),
        ("overlay", overlay),
        ("pod subnet", pod_subnet),
    ] {
        let r = run(&base(), WhatIf::default());
        // kubenet always carries its retirement note (K1).
        let rest: Vec<_> = r.findings.iter().filter(|f| f.rule != "K1").collect();
        assert!(rest.is_empty(), "{name}: {rest:#?}");
        assert!(
            r.cluster.accepted_at_create && r.cluster.safe_to_upgrade,
            "{name}"
        );
    }
}

#[test]
fn every_rule_triggers_on_its_case() {
    for (id, base, edit, what_if) in cases() {
        let mut v = base();
        edit(&mut v);
        let r = run(&v, what_if());
        assert!(
            rules_of(&r).contains(id),
            "{id} did not trigger; got {:?}",
            r.findings
        );
        let f = r.findings.iter().find(|f| f.rule == id).unwrap();
        let cat = RULES.iter().find(|x| x.id == id).unwrap();
        assert_eq!(f.severity, cat.severity);
        assert_eq!(f.code, cat.code);
        assert!(!f.field.is_empty() && !f.message.is_empty(), "{id}");
    }
}

#[test]
fn every_catalogue_rule_has_a_case() {
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.0).collect();
    let missing: Vec<&str> = RULES
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a triggering case: {missing:?}"
    );
}

#[test]
fn migration_of_a_ready_cluster_only_informs() {
    let r = run(&node_subnet(), migrate());
    assert_eq!(rules_of(&r), BTreeSet::from(["MG6"]), "{:?}", r.findings);
    assert_eq!(r.model, "Azure CNI Overlay");
    assert!(r.what_if.as_deref().unwrap().contains("Node Subnet"));
}

#[test]
fn control_plane_messages_have_the_captured_shape() {
    let mut v = node_subnet();
    v["cluster"]["network"]["serviceCidr"] = json!("10.0.0.0/16");
    v["cluster"]["network"]["dnsServiceIp"] = json!("10.0.0.10");
    v["vnet"]["addressSpace"] = json!(["10.0.0.0/16"]);
    v["vnet"]["subnets"] = json!([{"name": "nodes", "prefix": "10.0.239.0/24"}]);
    let r = run(&v, WhatIf::default());
    let s2 = r.findings.iter().find(|f| f.rule == "S2").unwrap();
    assert_eq!(s2.message, "The specified service CIDR 10.0.0.0/16 is conflicted with an existing subnet CIDR 10.0.239.0/24 (subnet nodes).");
    assert_eq!(s2.code, Some("ServiceCidrOverlapExistingSubnetsCidr"));
    assert_eq!(s2.field, "networkProfile.serviceCidr");

    let mut v = node_subnet();
    v["cluster"]["network"]["dnsServiceIp"] = json!("10.0.0.10");
    let r = run(&v, WhatIf::default());
    let d1 = r.findings.iter().find(|f| f.rule == "D1").unwrap();
    assert_eq!(
        d1.message,
        "The DNS service IP 10.0.0.10 is out of the range defined by service CIDR 10.200.0.0/16."
    );

    // rancher#20784: 3 nodes × 111 = 333 against a /24's 251.
    let mut v = node_subnet();
    v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/24");
    v["cluster"]["pools"][0]["maxPods"] = json!(110);
    let r = run(&v, WhatIf::default());
    let n1 = r.findings.iter().find(|f| f.rule == "N1").unwrap();
    assert!(n1.message.starts_with("Pre-allocated IPs 333 exceeds IPs available 251 in Subnet Cidr 172.16.0.0/24, Subnet Name nodes."), "{}", n1.message);
    assert_eq!(n1.code, Some("InsufficientSubnetSize"));

    // Azure/AKS-Construction#701: overlay, 5 nodes max on a /22 pod CIDR → 1280 > 1024.
    let mut v = overlay();
    v["cluster"]["network"]["podCidr"] = json!("10.240.100.0/22");
    v["cluster"]["pools"][0]["count"] = json!(5);
    let r = run(&v, WhatIf::default());
    let p2 = r.findings.iter().find(|f| f.rule == "P2").unwrap();
    assert!(p2.message.starts_with("Pre-allocated IPs 1280 exceeds IPs available 1024 in Subnet Cidr 10.240.100.0/22, Subnet Name networkProfile.podCIDR."), "{}", p2.message);

    // cloud-provider-azure#4184 wording.
    let mut v = kubenet();
    v["cluster"]["pools"][0]["count"] = json!(1000);
    v["vnet"]["subnets"][0]["prefix"] = json!("172.16.0.0/20");
    let r = run(&v, WhatIf::default());
    let c1 = r.findings.iter().find(|f| f.rule == "C1").unwrap();
    assert!(c1.message.starts_with(
        "Cluster's upper limit node count is 1000 which exceeds the limit for Kubenet 400."
    ));
}

#[test]
fn findings_are_sorted_errors_first() {
    let mut v = node_subnet();
    v["cluster"]["kubernetesVersion"] = json!("1.30");
    v["cluster"]["network"]["dnsServiceIp"] = json!("10.0.0.10");
    v["vnet"]["subnets"][0]["otherIps"] = json!(3);
    let r = run(&v, WhatIf::default());
    let sev: Vec<_> = r.findings.iter().map(|f| f.severity).collect();
    let mut sorted = sev.clone();
    sorted.sort();
    assert_eq!(sev, sorted);
    assert_eq!(r.summary.errors, 1);
    assert_eq!(r.summary.warnings, 1);
    assert_eq!(r.summary.infos, 1);
}
