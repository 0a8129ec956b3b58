//! `az` CLI scripts (`.azcli`, `.sh`, and the `azurecli`/`bash` code blocks of Markdown, as the
//! AKS docs write them): the network flags of `az aks create/update`, `az aks nodepool
//! add/update`, `az network vnet create`, `az network vnet subnet create` and `az network
//! vnet peering create`. Shell variables (`NAME=value`, `export`), `$NAME`/`${NAME}`, line
//! continuations and `$(az ... show ... --query id -o tsv)` for VNets and subnets resolve
//! where the script defines them; anything else becomes an "unresolved" value naming the file
//! and line. Each command becomes the ARM-shaped JSON the Azure readers already take.
//! docs/plan.md, "az CLI scripts".

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::azure::synthetic_subnet_id;
use super::value::UNRESOLVED;

/// What a script describes, as ARM-shaped documents.
#[derive(Debug, Default)]
pub struct Found {
    pub cluster: Option<Value>,
    /// Further `az aks create` commands (the docs often show alternatives): counted, ignored.
    pub other_clusters: usize,
    pub pools: Vec<Value>,
    pub vnets: Vec<Value>,
    /// CLI defaults the reader applied: (field, value, reason).
    pub defaults: Vec<(String, String, String)>,
}

/// The code blocks of a Markdown file that hold shell or az commands, in order, with the line
/// each starts on.
pub fn markdown_blocks(text: &str) -> Vec<(usize, String)> {
    const LANGS: &[&str] = &[
        "azurecli",
        "azurecli-interactive",
        "azure-cli",
        "bash",
        "sh",
        "shell",
        "console",
        "azcli",
    ];
    enum State {
        Outside,
        Shell(usize, String),
        Other,
    }
    let mut out = Vec::new();
    let mut st = State::Outside;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        st = match (st, fence) {
            (State::Outside, Some(lang)) => {
                let lang = lang.trim().to_ascii_lowercase();
                if LANGS.contains(&lang.as_str()) {
                    State::Shell(i + 2, String::new())
                } else {
                    State::Other
                }
            }
            (State::Shell(start, body), Some(_)) => {
                out.push((start, body));
                State::Outside
            }
            (State::Other, Some(_)) => State::Outside,
            (State::Shell(start, mut body), None) => {
                body.push_str(line);
                body.push('\n');
                State::Shell(start, body)
            }
            (other, None) => other,
        };
    }
    out
}

/// Logical lines: continuations (`\` at the end) joined, comments removed, with the line
/// each starts on.
fn logical_lines(first_line: usize, text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = first_line;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if cur.is_empty() {
            start = first_line + i;
        }
        let t = line.trim_end();
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        if !cur.trim().is_empty() {
            out.push((start, std::mem::take(&mut cur)));
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push((start, cur));
    }
    out
}

fn strip_comment(line: &str) -> String {
    let (mut sq, mut dq) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !dq => sq = !sq,
            '"' if !sq => dq = !dq,
            '#' if !sq && !dq && prev.is_whitespace() => return line[..i].to_string(),
            _ => {}
        }
        prev = c;
    }
    if line.trim_start().starts_with('#') {
        return String::new();
    }
    line.to_string()
}

/// Documentation placeholders (`<cluster-name>`, `<address prefix, example: 10.0.0.0/8>`)
/// become one unknown word each, so they are never read as values.
fn placeholders(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let starts_word = after.starts_with(|c: char| c.is_ascii_alphabetic());
        match after.find('>') {
            Some(j) if starts_word => {
                out.push_str(&rest[..i]);
                let inner: String = after[..j]
                    .chars()
                    .filter(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/')
                    })
                    .collect();
                out.push_str(&format!("{UNKNOWN}<{inner}>(a_documentation_placeholder)"));
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str(&rest[..=i]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Shell words, with quotes removed and `$(...)` kept whole.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            '\'' => {
                has = true;
                i += 1;
                while i < cs.len() && cs[i] != '\'' {
                    cur.push(cs[i]);
                    i += 1;
                }
            }
            '"' => {
                has = true;
                i += 1;
                while i < cs.len() && cs[i] != '"' {
                    if cs[i] == '\\' && i + 1 < cs.len() {
                        i += 1;
                    }
                    cur.push(cs[i]);
                    i += 1;
                }
            }
            '$' if cs.get(i + 1) == Some(&'(') => {
                has = true;
                let mut depth = 0;
                while i < cs.len() {
                    cur.push(cs[i]);
                    if cs[i] == '(' {
                        depth += 1;
                    } else if cs[i] == ')' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            c if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                has = false;
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
        i += 1;
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct Script<'a> {
    file: &'a str,
    vars: HashMap<String, String>,
    found: Found,
}

const UNKNOWN: &str = "\u{2}";

impl Script<'_> {
    /// Expand `$NAME`, `${NAME}` and `$(az ... --query id)`; an unknown part makes the whole
    /// word unknown (marked with UNKNOWN and the reason).
    fn expand(&self, w: &str) -> String {
        if let Some(inner) = w.strip_prefix("$(").and_then(|x| x.strip_suffix(')')) {
            return self.substitute(inner);
        }
        let mut out = String::new();
        let cs: Vec<char> = w.chars().collect();
        let mut i = 0;
        while i < cs.len() {
            if cs[i] == '$' && i + 1 < cs.len() {
                let (name, next) = if cs[i + 1] == '{' {
                    let end = cs[i + 2..]
                        .iter()
                        .position(|c| *c == '}')
                        .map(|p| p + i + 2);
                    match end {
                        Some(e) => (cs[i + 2..e].iter().collect::<String>(), e + 1),
                        None => (String::new(), cs.len()),
                    }
                } else {
                    let n: String = cs[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    let len = n.chars().count();
                    (n, i + 1 + len)
                };
                if name.is_empty() {
                    out.push('$');
                    i += 1;
                    continue;
                }
                match self.vars.get(&name) {
                    Some(v) => out.push_str(v),
                    None => return format!("{UNKNOWN}{w} (${name} is not set in the script)"),
                }
                i = next;
            } else {
                out.push(cs[i]);
                i += 1;
            }
        }
        out
    }

    /// `$(az network vnet subnet show -g RG --vnet-name V -n S --query id -o tsv)` and the
    /// VNet equivalent give the ID such a resource has; anything else is unknown.
    fn substitute(&self, inner: &str) -> String {
        let ws: Vec<String> = words(inner).iter().map(|w| self.expand(w)).collect();
        let args = Args::new(&ws);
        let query = args.get(&["--query"]).unwrap_or_default();
        let cmd: Vec<&str> = ws.iter().take(5).map(String::as_str).collect();
        let is_id = query.trim_matches('"') == "id";
        let any_unknown = ws.iter().any(|w| w.starts_with(UNKNOWN));
        if is_id && !any_unknown {
            let rg = args.get(&["-g", "--resource-group"]);
            if cmd.starts_with(&["az", "network", "vnet", "subnet", "show"]) {
                if let (Some(v), Some(n)) =
                    (args.get(&["--vnet-name"]), args.get(&["-n", "--name"]))
                {
                    return synthetic_subnet_id(rg.as_deref(), &v, &n);
                }
            }
            if cmd.starts_with(&["az", "network", "vnet", "show"]) {
                if let Some(n) = args.get(&["-n", "--name"]) {
                    return format!(
                        "/subscriptions/{{subscription}}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{n}",
                        rg.unwrap_or_else(|| "{resourceGroup}".into())
                    );
                }
            }
        }
        format!("{UNKNOWN}$({inner}) (a command substitution the plan cannot run)")
    }

    fn line(&mut self, line: usize, text: &str) {
        let text = placeholders(text);
        for cmd in text.split("&&").flat_map(|c| c.split(';')) {
            let ws = words(cmd);
            let Some(first) = ws.first() else { continue };
            let first = if first == "export" {
                ws.get(1).cloned().unwrap_or_default()
            } else {
                first.clone()
            };
            if let Some((name, value)) = first.split_once('=') {
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    let raw_value = if ws[0] == "export" { &ws[1] } else { &ws[0] };
                    let v = raw_value.split_once('=').map(|x| x.1).unwrap_or(value);
                    let expanded = self.expand(v);
                    self.vars.insert(name.to_string(), expanded);
                    continue;
                }
            }
            if first == "az" {
                let expanded: Vec<String> = ws.iter().map(|w| self.expand(w)).collect();
                self.az(line, &expanded);
            }
        }
    }

    /// A value for the ARM document: the word, or an unresolved marker naming file:line.
    fn val(&self, line: usize, w: &str) -> Value {
        if !w.starts_with(UNKNOWN) && w.contains(UNKNOWN) {
            // A placeholder inside a word (`/subscriptions/<subscription-id>/...`).
            return Value::String(format!(
                "{UNRESOLVED}{} at {}:{line} (a documentation placeholder)",
                clean(w),
                self.file
            ));
        }
        match w.strip_prefix(UNKNOWN) {
            Some(why) => {
                let (expr, reason) = why
                    .split_once(" (")
                    .or_else(|| why.split_once("(a_documentation"))
                    .map(|(e, r)| {
                        (
                            e,
                            r.replace("_documentation_placeholder", " documentation placeholder"),
                        )
                    })
                    .unwrap_or((why, "unknown)".into()));
                Value::String(format!(
                    "{UNRESOLVED}{expr} at {}:{line} ({reason}",
                    self.file
                ))
            }
            None => Value::String(w.to_string()),
        }
    }

    fn az(&mut self, line: usize, ws: &[String]) {
        let words: Vec<&str> = ws.iter().map(String::as_str).collect();
        let a = Args::new(ws);
        match words.get(1..4) {
            Some(["aks", "create", ..]) | Some(["aks", "update", ..]) => {
                if words[2] == "create" && self.found.cluster.is_some() {
                    self.found.other_clusters += 1;
                    return;
                }
                let update = words[2] == "update";
                self.cluster(line, &a, update);
            }
            Some(["aks", "nodepool", "add"]) | Some(["aks", "nodepool", "update"]) => {
                let pool = self.pool(line, &a, None);
                self.merge_pool(pool);
            }
            Some(["network", "vnet", "create"]) => self.vnet(line, &a),
            Some(["network", "vnet", "subnet"]) if words.get(4) == Some(&"create") => {
                self.subnet(line, &a)
            }
            Some(["network", "vnet", "peering"]) if words.get(4) == Some(&"create") => {
                self.peering(&a)
            }
            _ => {}
        }
    }
}

/// Flags and their values (`--flag value`, `--flag=value`, several values for list flags).
struct Args {
    flags: Vec<(String, Vec<String>)>,
}

impl Args {
    fn new(ws: &[String]) -> Args {
        let mut flags: Vec<(String, Vec<String>)> = Vec::new();
        for w in ws {
            if w.starts_with('-')
                && !w.starts_with(UNKNOWN)
                && w.len() > 1
                && !w[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                match w.split_once('=') {
                    Some((f, v)) => flags.push((f.to_string(), vec![v.to_string()])),
                    None => flags.push((w.clone(), Vec::new())),
                }
            } else if let Some(last) = flags.last_mut() {
                last.1.push(w.clone());
            }
        }
        Args { flags }
    }
    fn all(&self, names: &[&str]) -> Option<&Vec<String>> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| names.contains(&f.as_str()))
            .map(|(_, v)| v)
    }
    fn get(&self, names: &[&str]) -> Option<String> {
        self.all(names).and_then(|v| v.first().cloned())
    }
    fn has(&self, names: &[&str]) -> bool {
        self.all(names).is_some()
    }
}

/// A word with the placeholder markers removed.
fn clean(w: &str) -> String {
    w.replace("(a_documentation_placeholder)", "")
        .replace(UNKNOWN, "")
}

/// A word as the script wrote it, for names: unknown parts stay as written.
fn shown(w: &str) -> String {
    if !w.starts_with(UNKNOWN) && w.contains(UNKNOWN) {
        return clean(w);
    }
    match w.strip_prefix(UNKNOWN) {
        Some(why) => why
            .split_once(" (")
            .or_else(|| why.split_once("(a_documentation"))
            .map(|(e, _)| e.to_string())
            .unwrap_or_else(|| why.to_string()),
        None => w.to_string(),
    }
}

/// `az aks create/update` flags of `networkProfile`: (key, flags, a list).
const NETWORK_FLAGS: &[(&str, &[&str], bool)] = &[
    ("networkPlugin", &["--network-plugin"], false),
    ("networkPluginMode", &["--network-plugin-mode"], false),
    ("networkPolicy", &["--network-policy"], false),
    ("networkDataplane", &["--network-dataplane"], false),
    ("podCidrs", &["--pod-cidrs", "--pod-cidr"], true),
    ("serviceCidrs", &["--service-cidrs", "--service-cidr"], true),
    ("dnsServiceIP", &["--dns-service-ip"], false),
    ("ipFamilies", &["--ip-families"], true),
    ("outboundType", &["--outbound-type"], false),
    ("loadBalancerSku", &["--load-balancer-sku"], false),
];

fn set(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.to_string(), v);
    }
}

impl Script<'_> {
    /// A name flag, shown as written when unknown (names only label the report).
    fn name(&self, a: &Args, names: &[&str]) -> Option<Value> {
        a.get(names).map(|w| Value::String(shown(&w)))
    }
    fn opt(&self, line: usize, a: &Args, names: &[&str]) -> Option<Value> {
        a.get(names).map(|w| self.val(line, &w))
    }
    fn list(&self, line: usize, a: &Args, names: &[&str]) -> Option<Value> {
        a.all(names).map(|v| {
            Value::Array(
                v.iter()
                    .flat_map(|w| w.split(',').map(str::to_string).collect::<Vec<_>>())
                    .filter(|w| !w.is_empty())
                    .map(|w| self.val(line, &w))
                    .collect(),
            )
        })
    }
    fn num(&self, line: usize, a: &Args, names: &[&str]) -> Option<Value> {
        a.get(names).map(|w| match w.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => self.val(line, &w),
        })
    }

    /// `networkProfile` from the network flags of `az aks create/update`.
    fn network_profile(&self, line: usize, a: &Args) -> Map<String, Value> {
        let mut np = Map::new();
        for (key, flags, list) in NETWORK_FLAGS {
            let v = if *list {
                self.list(line, a, flags)
            } else {
                self.opt(line, a, flags)
            };
            set(&mut np, key, v);
        }
        np
    }

    fn cluster(&mut self, line: usize, a: &Args, update: bool) {
        let np = self.network_profile(line, a);
        let mut props = Map::new();
        props.insert("networkProfile".into(), Value::Object(np));
        set(
            &mut props,
            "kubernetesVersion",
            self.opt(line, a, &["-k", "--kubernetes-version"]),
        );
        if let Some(m) = self.opt(line, a, &["--node-provisioning-mode"]) {
            props.insert("nodeProvisioningProfile".into(), json!({ "mode": m }));
        }
        if let Some(s) = self.opt(line, a, &["--apiserver-subnet-id"]) {
            props.insert("apiServerAccessProfile".into(), json!({ "subnetId": s }));
        }
        if let Some(s) = self.opt(line, a, &["--appgw-subnet-cidr"]) {
            props.insert(
                "addonProfiles".into(),
                json!({"ingressApplicationGateway": {"enabled": true, "config": {"subnetCIDR": s}}}),
            );
        }
        let mut doc = Map::new();
        set(&mut doc, "name", self.name(a, &["-n", "--name"]));
        if let Some(t) = self.opt(line, a, &["--tier"]) {
            doc.insert("sku".into(), json!({ "tier": t }));
        }
        if update {
            // `az aks update` changes the cluster created above; flags it gives win.
            if let Some(Value::Object(c)) = self.found.cluster.as_mut() {
                merge(c, &doc);
                if let Some(Value::Object(p)) = c.get_mut("properties") {
                    merge(p, &props);
                }
            }
            return;
        }
        doc.insert(
            super::arm::LOCATION_KEY.into(),
            json!(format!("{}:{line}", self.file)),
        );
        let default_pool = self.pool(line, a, Some("nodepool1"));
        props.insert("agentPoolProfiles".into(), Value::Array(vec![default_pool]));
        doc.insert("properties".into(), Value::Object(props));
        self.found.cluster = Some(Value::Object(doc));
    }

    /// A pool from `az aks create` (the default pool, `--nodepool-name`) or `nodepool add`.
    fn pool(&mut self, line: usize, a: &Args, default_name: Option<&str>) -> Value {
        let mut p = Map::new();
        let name = match default_name {
            Some(d) => a.get(&["--nodepool-name"]).unwrap_or_else(|| {
                self.found.defaults.push((
                    "agentPoolProfiles[0].name".into(),
                    d.into(),
                    "absent: az aks create's default node pool name".into(),
                ));
                d.to_string()
            }),
            None => a
                .get(&["-n", "--name", "--nodepool-name"])
                .unwrap_or_default(),
        };
        // A name only labels the report: an unknown one is shown as written.
        p.insert("name".into(), Value::String(shown(&name)));
        p.insert(
            super::arm::LOCATION_KEY.into(),
            json!(format!("{}:{line}", self.file)),
        );
        if default_name.is_some() {
            p.insert("mode".into(), json!("System"));
        } else {
            set(&mut p, "mode", self.opt(line, a, &["--mode"]));
        }
        set(&mut p, "count", self.num(line, a, &["-c", "--node-count"]));
        set(&mut p, "maxPods", self.num(line, a, &["-m", "--max-pods"]));
        set(&mut p, "minCount", self.num(line, a, &["--min-count"]));
        set(&mut p, "maxCount", self.num(line, a, &["--max-count"]));
        if a.has(&["--enable-cluster-autoscaler", "-e"]) {
            p.insert("enableAutoScaling".into(), json!(true));
        }
        set(
            &mut p,
            "vnetSubnetID",
            self.opt(line, a, &["--vnet-subnet-id"]),
        );
        set(
            &mut p,
            "podSubnetID",
            self.opt(line, a, &["--pod-subnet-id"]),
        );
        set(
            &mut p,
            "podIPAllocationMode",
            self.opt(line, a, &["--pod-ip-allocation-mode"]),
        );
        set(&mut p, "osType", self.opt(line, a, &["--os-type"]));
        set(
            &mut p,
            "scaleSetPriority",
            self.opt(line, a, &["--priority"]),
        );
        if let Some(s) = self.opt(line, a, &["--max-surge"]) {
            p.insert("upgradeSettings".into(), json!({ "maxSurge": s }));
        }
        Value::Object(p)
    }

    fn merge_pool(&mut self, pool: Value) {
        let name = pool.get("name").cloned();
        if let Some(existing) = self
            .found
            .pools
            .iter_mut()
            .find(|p| p.get("name") == name.as_ref())
        {
            if let (Value::Object(e), Value::Object(n)) = (existing, &pool) {
                merge(e, n);
            }
            return;
        }
        self.found.pools.push(pool);
    }

    fn vnet(&mut self, line: usize, a: &Args) {
        let mut subnets = Vec::new();
        if let Some(sn) = a.get(&["--subnet-name"]) {
            let prefixes = self
                .list(line, a, &["--subnet-prefixes", "--subnet-prefix"])
                .unwrap_or(json!([]));
            subnets.push(json!({"name": shown(&sn), "properties": {"addressPrefixes": prefixes}, super::arm::LOCATION_KEY: format!("{}:{line}", self.file)}));
        }
        let doc = json!({
            "name": self.name(a, &["-n", "--name"]).unwrap_or(json!("vnet")),
            "resourceGroup": self.opt(line, a, &["-g", "--resource-group"]),
            "type": "Microsoft.Network/virtualNetworks",
            super::arm::LOCATION_KEY: format!("{}:{line}", self.file),
            "properties": {
                "addressSpace": {"addressPrefixes": self.list(line, a, &["--address-prefixes", "--address-prefix"]).unwrap_or(json!([]))},
                "subnets": subnets,
            }
        });
        self.found.vnets.push(doc);
    }

    fn vnet_mut(&mut self, name: &str) -> Option<&mut Map<String, Value>> {
        self.found.vnets.iter_mut().find_map(|v| match v {
            Value::Object(m)
                if m.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name)) =>
            {
                Some(m)
            }
            _ => None,
        })
    }

    fn subnet(&mut self, line: usize, a: &Args) {
        let vnet = shown(&a.get(&["--vnet-name"]).unwrap_or_default());
        let mut props = Map::new();
        set(
            &mut props,
            "addressPrefixes",
            self.list(line, a, &["--address-prefixes", "--address-prefix"]),
        );
        if let Some(d) = a.get(&["--delegations"]) {
            props.insert(
                "delegations".into(),
                json!([{"properties": {"serviceName": d}}]),
            );
        }
        let s = json!({"name": self.name(a, &["-n", "--name"]), "properties": props, super::arm::LOCATION_KEY: format!("{}:{line}", self.file)});
        if self.vnet_mut(&vnet).is_none() {
            // A subnet of a VNet the script does not create: a VNet entry of that name.
            self.found.vnets.push(json!({
                "name": vnet, "type": "Microsoft.Network/virtualNetworks",
                "resourceGroup": self.opt(line, a, &["-g", "--resource-group"]),
                "properties": {"addressSpace": {"addressPrefixes": []}, "subnets": []}
            }));
        }
        if let Some(Value::Array(subs)) = self
            .vnet_mut(&vnet)
            .and_then(|m| m.get_mut("properties"))
            .and_then(|p| p.get_mut("subnets"))
        {
            subs.push(s);
        }
    }

    fn peering(&mut self, a: &Args) {
        let local = a.get(&["--vnet-name"]).unwrap_or_default();
        let remote = a
            .get(&["--remote-vnet", "--remote-vnet-id"])
            .unwrap_or_default();
        let remote_name = remote.rsplit('/').next().unwrap_or("").to_string();
        let prefixes = self
            .vnet_mut(&remote_name)
            .and_then(|m| m.get("properties"))
            .and_then(|p| p.get("addressSpace"))
            .and_then(|s| s.get("addressPrefixes"))
            .cloned()
            .unwrap_or(json!([]));
        let name = a.get(&["-n", "--name"]).unwrap_or_else(|| "peering".into());
        if let Some(Value::Object(p)) = self.vnet_mut(&local).and_then(|m| m.get_mut("properties"))
        {
            let entry = json!({"name": name, "properties": {"remoteAddressSpace": {"addressPrefixes": prefixes}}});
            match p.get_mut("virtualNetworkPeerings") {
                Some(Value::Array(a)) => a.push(entry),
                _ => {
                    p.insert("virtualNetworkPeerings".into(), json!([entry]));
                }
            }
        }
    }
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Read a script (or a Markdown file's code blocks).
pub fn read(file: &str, text: &str, markdown: bool) -> Found {
    let blocks = if markdown {
        markdown_blocks(text)
    } else {
        vec![(1, text.to_string())]
    };
    let mut s = Script {
        file,
        vars: HashMap::new(),
        found: Found::default(),
    };
    for (first, block) in blocks {
        for (line, l) in logical_lines(first, &block) {
            s.line(line, &l);
        }
    }
    s.found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docs_style_script_resolves_variables_and_subnet_ids() {
        let text = r#"
RG=myResourceGroup
VNET=myVnet
az network vnet create -g $RG -n $VNET --address-prefixes 10.0.0.0/8 \
    --subnet-name nodesubnet --subnet-prefixes 10.240.0.0/16 -o none
az network vnet subnet create -g $RG --vnet-name $VNET --name podsubnet --address-prefixes 10.241.0.0/16
SUBNET_ID=$(az network vnet subnet show --resource-group $RG --vnet-name $VNET --name nodesubnet --query id -o tsv)
az aks create --name c1 --resource-group $RG --network-plugin azure \
    --vnet-subnet-id $SUBNET_ID --pod-subnet-id "$MISSING" --node-count 3 --max-pods 50   # comment
"#;
        let f = read("s.sh", text, false);
        let c = f.cluster.unwrap();
        let p = &c["properties"]["agentPoolProfiles"][0];
        assert_eq!(p["count"], 3);
        assert_eq!(p["name"], "nodepool1");
        assert!(p["vnetSubnetID"]
            .as_str()
            .unwrap()
            .ends_with("virtualNetworks/myVnet/subnets/nodesubnet"));
        assert!(
            p["podSubnetID"].as_str().unwrap().contains("at s.sh:8"),
            "{}",
            p["podSubnetID"]
        );
        assert_eq!(f.vnets[0]["properties"]["subnets"][1]["name"], "podsubnet");
    }

    #[test]
    fn markdown_blocks_are_read_in_order() {
        let md =
            "# t\n```azurecli\nA=1\n```\ntext\n```json\n{\"x\": 1}\n```\n```bash\necho $A\n```\n";
        let b = markdown_blocks(md);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], (3, "A=1\n".to_string()));
        assert_eq!(b[1].1, "echo $A\n");
    }
}
