//! ARM templates: resolve `[parameters('x')]`, `[variables('y')]`, `concat`, `format`,
//! `resourceId` ... from defaults and an optional parameters file (docs/plan.md), then read
//! the resources with the Azure readers.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::azure;
use super::value::{get_ci, Obj, UNRESOLVED};
use super::InputError;
use crate::model::{Cluster, Pool, Vnet};

pub struct Template {
    pub file: String,
    pub value: Value,
}

pub struct Found {
    pub cluster: Option<Cluster>,
    pub pools: Vec<(Option<String>, Pool)>,
    pub vnets: Vec<Vnet>,
    /// The template's `outputs`, evaluated (what `reference(deployment).outputs` reads).
    pub outputs: Map<String, Value>,
}

/// A resource still to read: its path, its raw value and its parent's (type, name).
type Pending = (String, Value, Option<(String, String)>);

struct Ctx<'a> {
    params: HashMap<String, Value>,
    variables: Option<&'a Value>,
    depth: u32,
    /// Nested deployments of this template by lower-cased name: what `reference()` of one
    /// returns (`{"outputs": {"x": {"value": ...}}}`).
    deployments: HashMap<String, Value>,
}

pub fn is_template(v: &Value) -> bool {
    let schema = get_ci(v, "$schema")
        .and_then(|(_, s)| s.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    schema.contains("deploymenttemplate")
        || (get_ci(v, "resources").is_some_and(|(_, r)| r.is_array())
            && get_ci(v, "contentVersion").is_some())
}

pub fn is_parameters_file(v: &Value) -> bool {
    let schema = get_ci(v, "$schema")
        .and_then(|(_, s)| s.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    schema.contains("deploymentparameters")
        || (get_ci(v, "parameters").is_some()
            && get_ci(v, "contentVersion").is_some()
            && get_ci(v, "resources").is_none())
}

/// `parameters.x.value` of a parameters file.
pub fn parameter_values(v: &Value) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    if let Some((_, Value::Object(m))) = get_ci(v, "parameters") {
        for (k, p) in m {
            if let Some((_, val)) = get_ci(p, "value") {
                out.insert(k.to_ascii_lowercase(), val.clone());
            }
        }
    }
    out
}

pub fn read(t: &Template, overrides: &HashMap<String, Value>) -> Result<Found, InputError> {
    read_nested(t, overrides, 0)
}

/// A nested deployment (`Microsoft.Resources/deployments` with an inline `template`, what
/// Bicep modules compile to): its parameters are evaluated in the outer template, its template
/// is read as a template of its own. Depth-limited.
fn nested_deployment(
    t: &Template,
    raw: &Value,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Option<Found>, InputError> {
    let Some(props) = get_ci(raw, "properties").map(|(_, p)| p) else {
        return Ok(None);
    };
    let Some((_, inner)) = get_ci(props, "template") else {
        return Ok(None);
    };
    let mut params = HashMap::new();
    if let Some((_, Value::Object(m))) = get_ci(props, "parameters") {
        for (k, p) in m {
            if let Some((_, v)) = get_ci(p, "value") {
                // An unknown value stays unknown inside (not the inner default): reading it
                // fails with the outer expression, which names the line to fix.
                params.insert(k.to_ascii_lowercase(), resolve(v, ctx));
            }
        }
    }
    let sub = Template {
        file: t.file.clone(),
        value: inner.clone(),
    };
    read_nested(&sub, &params, depth + 1).map(Some)
}

/// Merge a nested deployment's resources into the outer template's.
fn merge(t: &Template, found: &mut Found, f: Found) -> Result<(), InputError> {
    if let Some(c) = f.cluster {
        if found.cluster.is_some() {
            return Err(InputError::Shape {
                file: t.file.clone(),
                message: "a second managed cluster in one template; plan one cluster at a time"
                    .into(),
            });
        }
        found.cluster = Some(c);
    }
    found.pools.extend(f.pools);
    found.vnets.extend(f.vnets);
    Ok(())
}

fn is_deployment(raw: &Value) -> bool {
    get_ci(raw, "type")
        .and_then(|(_, s)| s.as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Resources/deployments"))
}

/// The nested deployments (Bicep modules compiled to ARM) before the other resources, so
/// `reference()` of one (a subnet ID from a VNet module's outputs) resolves. A second pass
/// when there are several: one may read another declared after it. Depth-limited.
fn deployments(
    t: &Template,
    resources: &[Value],
    ctx: &mut Ctx,
    depth: usize,
    found: &mut Found,
) -> Result<(), InputError> {
    let deps: Vec<&Value> = resources.iter().filter(|r| is_deployment(r)).collect();
    if deps.is_empty() || depth >= 8 {
        return Ok(());
    }
    let passes = if deps.len() > 1 && depth < 2 { 2 } else { 1 };
    let mut results = Vec::new();
    let seen = super::value::unresolved_count();
    for _ in 0..passes {
        results.clear();
        super::value::forget_unresolved_after(seen);
        for raw in &deps {
            let name = get_ci(raw, "name").map(|(_, n)| resolve(n, ctx));
            let Some(f) = nested_deployment(t, raw, ctx, depth)? else {
                continue;
            };
            if let Some(Value::String(n)) = name.filter(|n| !text_unresolved(n)) {
                let outputs: Map<String, Value> = f
                    .outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::json!({ "value": v })))
                    .collect();
                ctx.deployments.insert(
                    n.to_ascii_lowercase(),
                    serde_json::json!({ "outputs": outputs }),
                );
            }
            results.push(f);
        }
    }
    for f in results {
        merge(t, found, f)?;
    }
    Ok(())
}

fn text_unresolved(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.starts_with(UNRESOLVED))
}

/// `reference(name or deployment ID)` of a nested deployment among the template's.
fn reference(vals: &[Value], ctx: &Ctx) -> Result<Value, String> {
    let r = vals.first().map(as_text).unwrap_or_default();
    let name = r.rsplit('/').next().unwrap_or(&r).to_ascii_lowercase();
    ctx.deployments.get(&name).cloned().ok_or_else(|| {
        format!("reference('{r}'): not a deployment the inputs define (only nested deployments' outputs are known)")
    })
}

/// A template's parameter values: the defaults, then the given values (lower-cased keys).
fn template_params(t: &Template, overrides: &HashMap<String, Value>) -> HashMap<String, Value> {
    let mut params = HashMap::new();
    if let Some((_, Value::Object(m))) = get_ci(&t.value, "parameters") {
        for (k, p) in m {
            if let Some((_, d)) = get_ci(p, "defaultValue") {
                params.insert(k.to_ascii_lowercase(), d.clone());
            }
        }
    }
    for (k, v) in overrides {
        params.insert(k.clone(), v.clone());
    }
    params
}

fn read_nested(
    t: &Template,
    overrides: &HashMap<String, Value>,
    depth: usize,
) -> Result<Found, InputError> {
    let mut ctx = Ctx {
        params: template_params(t, overrides),
        variables: get_ci(&t.value, "variables").map(|(_, v)| v),
        depth: 0,
        deployments: HashMap::new(),
    };
    let mut found = Found {
        cluster: None,
        pools: Vec::new(),
        vnets: Vec::new(),
        outputs: Map::new(),
    };
    let mut kids = Children::default();
    let resources = match get_ci(&t.value, "resources") {
        Some((_, Value::Array(a))) => a.clone(),
        // languageVersion 2.0: resources keyed by symbolic name.
        Some((_, Value::Object(m))) => m.values().cloned().collect(),
        _ => Vec::new(),
    };
    deployments(t, &resources, &mut ctx, depth, &mut found)?;
    let mut stack: Vec<Pending> = resources
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("resources[{i}]"), r, None))
        .collect();
    while let Some((path, raw, parent)) = stack.pop() {
        let raw_ty = get_ci(&raw, "type")
            .and_then(|(_, s)| s.as_str())
            .unwrap_or("");
        if raw_ty.eq_ignore_ascii_case("Microsoft.Resources/deployments") {
            // Read before the other resources (`deployments`).
            continue;
        }
        let v = resolve(&raw, &mut ctx);
        let (full_ty, full_name) = full_type_and_name(&v, &parent);
        if let Some((_, Value::Array(children))) = get_ci(&raw, "resources") {
            for (i, c) in children.iter().enumerate() {
                stack.push((
                    format!("{path}.resources[{i}]"),
                    c.clone(),
                    Some((full_ty.clone(), full_name.clone())),
                ));
            }
        }
        let lt = full_ty.to_ascii_lowercase();
        let segs: Vec<&str> = full_name.split('/').collect();
        let last = segs.last().copied().unwrap_or("").to_string();
        let named = with_name(&v, &last);
        let o = Obj::new(&named, path.clone(), &t.file);
        read_resource(&o, &raw, &lt, &segs, &mut found, &mut kids)?;
    }
    attach_children(&mut found, kids);
    if let Some((_, Value::Object(outs))) = get_ci(&t.value, "outputs") {
        for (k, o) in outs {
            if let Some((_, v)) = get_ci(o, "value") {
                found.outputs.insert(k.clone(), resolve(v, &mut ctx));
            }
        }
    }
    Ok(found)
}

/// A resource's type and name; a child written inside its parent (`subnets` inside a VNet)
/// gets the parent's as a prefix (`Microsoft.Network/virtualNetworks/subnets`, `vnet/nodes`).
fn full_type_and_name(v: &Value, parent: &Option<(String, String)>) -> (String, String) {
    let text = |k: &str| {
        get_ci(v, k)
            .and_then(|(_, s)| s.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (ty, name) = (text("type"), text("name"));
    match parent {
        Some((pt, pn)) if !ty.contains('/') => (format!("{pt}/{ty}"), format!("{pn}/{name}")),
        _ => (ty, name),
    }
}

/// Subnets and peerings written as resources of their own join their VNets.
fn attach_children(found: &mut Found, kids: Children) {
    for (vnet, s) in kids.subnets.into_iter().rev() {
        crate::model::attach_subnet(&mut found.vnets, vnet, s);
    }
    for (vnet, p) in kids.peerings {
        if let Some(v) = crate::model::vnet_named(&mut found.vnets, &vnet) {
            v.peerings.push(p);
        }
    }
}

/// Subnets and peerings declared as resources of their own, attached to their VNets after
/// every resource is read: (VNet name, value).
#[derive(Default)]
struct Children {
    subnets: Vec<(String, crate::model::Subnet)>,
    peerings: Vec<(String, crate::model::Peering)>,
}

/// One resolved resource of lower-cased type `lt` and name segments `segs`, read by the
/// Azure readers into `found` (or `kids`).
fn read_resource(
    o: &Obj,
    raw: &Value,
    lt: &str,
    segs: &[&str],
    found: &mut Found,
    kids: &mut Children,
) -> Result<(), InputError> {
    if lt == "microsoft.containerservice/managedclusters" {
        if found.cluster.is_some() {
            return Err(o.err(
                "type",
                "a second managed cluster in one template; plan one cluster at a time",
            ));
        }
        let mut c = azure::read_cluster(o)?;
        c.location = location_of(raw);
        for p in &mut c.pools {
            p.location = p.location.take().or_else(|| c.location.clone());
        }
        found.cluster = Some(c);
    } else if lt == "microsoft.containerservice/managedclusters/agentpools" {
        found.pools.push((segs.first().map(|s| s.to_string()), {
            let mut p = azure::read_pool(o)?;
            p.location = location_of(raw);
            p
        }));
    } else if lt == "microsoft.network/virtualnetworks" {
        let mut v = azure::read_vnet(o)?;
        v.location = location_of(raw);
        for s in &mut v.subnets {
            s.location = s.location.take().or_else(|| v.location.clone());
        }
        found.vnets.push(v);
    } else if lt == "microsoft.network/virtualnetworks/subnets" {
        kids.subnets.push((
            segs.first().copied().unwrap_or("").to_string(),
            azure::read_subnet(o)?,
        ));
    } else if lt == "microsoft.network/virtualnetworks/virtualnetworkpeerings" {
        kids.peerings.push((
            segs.first().copied().unwrap_or("").to_string(),
            azure::read_peering(o)?,
        ));
    }
    Ok(())
}

pub use super::value::LOCATION_KEY;

fn location_of(raw: &Value) -> Option<String> {
    raw.get(LOCATION_KEY)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn with_name(v: &Value, name: &str) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        let key = m
            .keys()
            .find(|k| k.eq_ignore_ascii_case("name"))
            .cloned()
            .unwrap_or_else(|| "name".into());
        m.insert(key, Value::String(name.to_string()));
    }
    v
}

/// Resolve every expression string in `v`; failures become `UNRESOLVED` markers that turn
/// into an error naming the key only if a reader needs that field.
fn resolve(v: &Value, ctx: &mut Ctx) -> Value {
    match v {
        Value::String(s) => match eval_string(s, ctx) {
            Ok(x) => x,
            // An unknown parameter passed in: the outer expression is the one to report.
            Err(e) if e.starts_with(UNRESOLVED) => Value::String(e),
            Err(e) => Value::String(format!("{UNRESOLVED}{s} ({e})")),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, ctx)).collect()),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                // Child resources are resolved on their own.
                if k.eq_ignore_ascii_case("resources") {
                    continue;
                }
                out.insert(k.clone(), resolve(x, ctx));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn eval_string(s: &str, ctx: &mut Ctx) -> Result<Value, String> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("[[") {
        return Ok(Value::String(format!("[{rest}")));
    }
    if t.starts_with('[') && t.ends_with(']') && t.len() >= 2 {
        let toks = lex(&t[1..t.len() - 1])?;
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let e = p.expr()?;
        if p.pos != p.toks.len() {
            return Err("unexpected text after the expression".into());
        }
        return eval(&e, ctx);
    }
    Ok(Value::String(s.to_string()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(i64),
    LParen,
    RParen,
    Comma,
    Dot,
    LBrack,
    RBrack,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '.' => {
                out.push(Tok::Dot);
                i += 1
            }
            '[' => {
                out.push(Tok::LBrack);
                i += 1
            }
            ']' => {
                out.push(Tok::RBrack);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < cs.len() && cs[i].is_ascii_digit() {
                    i += 1;
                }
                let n: String = cs[start..i].iter().collect();
                out.push(Tok::Num(n.parse().map_err(|_| format!("bad number {n}"))?));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(cs[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Call(String, Vec<Expr>),
    Prop(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Call/index nesting: bounded so that hostile input cannot exhaust the stack.
    depth: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn expr(&mut self) -> Result<Expr, String> {
        if self.depth >= super::limits::MAX_NESTING {
            return Err(format!(
                "expression nesting deeper than the limit of {} levels",
                super::limits::MAX_NESTING
            ));
        }
        self.depth += 1;
        let e = self.expr_inner();
        self.depth -= 1;
        e
    }
    fn expr_inner(&mut self) -> Result<Expr, String> {
        let mut e = match self.next() {
            Some(Tok::Str(s)) => Expr::Lit(Value::String(s)),
            Some(Tok::Num(n)) => Expr::Lit(Value::from(n)),
            Some(Tok::Ident(name)) => {
                if self.next() != Some(Tok::LParen) {
                    return Err(format!("expected '(' after {name}"));
                }
                let mut args = Vec::new();
                if self.peek() == Some(&Tok::RParen) {
                    self.pos += 1;
                } else {
                    loop {
                        args.push(self.expr()?);
                        match self.next() {
                            Some(Tok::Comma) => continue,
                            Some(Tok::RParen) => break,
                            _ => return Err(format!("expected ',' or ')' in {name}(...)")),
                        }
                    }
                }
                Expr::Call(name, args)
            }
            other => return Err(format!("unexpected {other:?}")),
        };
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Ident(p)) => e = Expr::Prop(Box::new(e), p),
                        _ => return Err("expected a property name after '.'".into()),
                    }
                }
                Some(Tok::LBrack) => {
                    self.pos += 1;
                    let i = self.expr()?;
                    if self.next() != Some(Tok::RBrack) {
                        return Err("expected ']'".into());
                    }
                    e = Expr::Index(Box::new(e), Box::new(i));
                }
                _ => return Ok(e),
            }
        }
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn eval(e: &Expr, ctx: &mut Ctx) -> Result<Value, String> {
    if ctx.depth > 32 {
        return Err(
            "expression nests too deeply (a parameter or variable refers to itself?)".into(),
        );
    }
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Prop(inner, p) => {
            let v = eval(inner, ctx)?;
            get_ci(&v, p)
                .map(|(_, x)| x.clone())
                .ok_or_else(|| format!("no property '{p}'"))
        }
        Expr::Index(inner, i) => {
            let v = eval(inner, ctx)?;
            let i = eval(i, ctx)?;
            match (&v, &i) {
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| a.get(n as usize))
                    .cloned()
                    .ok_or_else(|| "index out of range".into()),
                (Value::Object(_), Value::String(k)) => get_ci(&v, k)
                    .map(|(_, x)| x.clone())
                    .ok_or_else(|| format!("no property '{k}'")),
                _ => Err("cannot index".into()),
            }
        }
        Expr::Call(name, args) if name.eq_ignore_ascii_case("if") && args.len() == 3 => {
            // Only the chosen branch is evaluated: the other may be unknown.
            let c = eval(&args[0], ctx)?
                .as_bool()
                .ok_or("if() needs a boolean")?;
            eval(&args[if c { 1 } else { 2 }], ctx)
        }
        Expr::Call(name, args) => {
            let mut vals = Vec::new();
            for a in args {
                vals.push(eval(a, ctx)?);
            }
            call(name, &vals, ctx)
        }
    }
}

/// A function call of an ARM expression, its arguments evaluated.
fn call(name: &str, vals: &[Value], ctx: &mut Ctx) -> Result<Value, String> {
    let first = || vals.first().map(as_text).unwrap_or_default();
    match name.to_ascii_lowercase().as_str() {
        "parameters" => {
            let k = first().to_ascii_lowercase();
            let raw = ctx.params.get(&k).cloned().ok_or_else(|| {
                format!(
                    "parameter '{}' has no defaultValue and no value in a parameters file",
                    first()
                )
            })?;
            if text_unresolved(&raw) {
                return Err(as_text(&raw));
            }
            ctx.depth += 1;
            let v = resolve_strict(&raw, ctx);
            ctx.depth -= 1;
            v
        }
        "variables" => {
            let k = first();
            let raw = ctx
                .variables
                .and_then(|v| get_ci(v, &k))
                .map(|(_, x)| x.clone())
                .ok_or_else(|| format!("variable '{k}' is not defined"))?;
            ctx.depth += 1;
            let v = resolve_strict(&raw, ctx);
            ctx.depth -= 1;
            v
        }
        "concat" => {
            if vals.iter().all(|v| v.is_array()) && !vals.is_empty() {
                Ok(Value::Array(
                    vals.iter()
                        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                        .collect(),
                ))
            } else {
                Ok(Value::String(vals.iter().map(as_text).collect()))
            }
        }
        "format" => {
            let mut s = first();
            for (i, v) in vals.iter().enumerate().skip(1) {
                s = s.replace(&format!("{{{}}}", i - 1), &as_text(v));
            }
            Ok(Value::String(s))
        }
        "string" => Ok(Value::String(first())),
        "int" => first()
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("int('{}') is not a number", first())),
        "tolower" => Ok(Value::String(first().to_lowercase())),
        "toupper" => Ok(Value::String(first().to_uppercase())),
        "createarray" => Ok(Value::Array(vals.to_vec())),
        "if" => {
            let c = vals
                .first()
                .and_then(|v| v.as_bool())
                .ok_or("if() needs a boolean")?;
            vals.get(if c { 1 } else { 2 })
                .cloned()
                .ok_or_else(|| "if() needs three arguments".into())
        }
        "equals" => Ok(Value::Bool(vals.first() == vals.get(1))),
        "resourcegroup" => Ok(
            serde_json::json!({"name": "{resourceGroup}", "location": "{location}", "id": "/subscriptions/{subscription}/resourceGroups/{resourceGroup}"}),
        ),
        "subscription" => Ok(
            serde_json::json!({"subscriptionId": "{subscription}", "id": "/subscriptions/{subscription}"}),
        ),
        "resourceid" => resource_id(vals),
        "reference" => reference(vals, ctx),
        other => more_functions(other, vals),
    }
}

/// `resourceId([subscriptionId], [resourceGroup], type, name...)`: the ID the resource gets.
fn resource_id(vals: &[Value]) -> Result<Value, String> {
    let texts: Vec<String> = vals.iter().map(as_text).collect();
    let ti = texts
        .iter()
        .position(|t| t.contains('/') && t.contains('.'))
        .ok_or("resourceId() needs a resource type")?;
    let ty = &texts[ti];
    let names = &texts[ti + 1..];
    let pre = &texts[..ti];
    let (sub, rg) = match pre.len() {
        0 => ("{subscription}".to_string(), "{resourceGroup}".to_string()),
        1 => ("{subscription}".to_string(), pre[0].clone()),
        _ => (pre[0].clone(), pre[1].clone()),
    };
    let mut segs = ty.split('/');
    let ns = segs.next().unwrap_or("");
    let types: Vec<&str> = segs.collect();
    let mut id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}");
    for (t, n) in types.iter().zip(names.iter()) {
        id.push_str(&format!("/{t}/{n}"));
    }
    Ok(Value::String(id))
}

fn num(v: Option<&Value>) -> Result<f64, String> {
    v.and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
    .ok_or_else(|| "expected a number".into())
}

/// Comparisons, logic and collection functions (docs/plan.md, ARM templates).
fn more_functions(name: &str, vals: &[Value]) -> Result<Value, String> {
    let b = |i: usize| vals.get(i).and_then(Value::as_bool).unwrap_or(false);
    Ok(match name {
        "greater" => Value::Bool(num(vals.first())? > num(vals.get(1))?),
        "less" => Value::Bool(num(vals.first())? < num(vals.get(1))?),
        "greaterorequals" => Value::Bool(num(vals.first())? >= num(vals.get(1))?),
        "lessorequals" => Value::Bool(num(vals.first())? <= num(vals.get(1))?),
        "and" => Value::Bool(vals.iter().all(|v| v.as_bool() == Some(true))),
        "or" => Value::Bool(vals.iter().any(|v| v.as_bool() == Some(true))),
        "not" => Value::Bool(!b(0)),
        "bool" => Value::Bool(
            vals.first()
                .map(as_text)
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        ),
        "empty" => Value::Bool(match vals.first() {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(m)) => m.is_empty(),
            _ => false,
        }),
        "length" => Value::from(match vals.first() {
            Some(Value::String(s)) => s.chars().count(),
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            _ => return Err("length() of a non-collection".into()),
        } as u64),
        "contains" => Value::Bool(match vals.first() {
            Some(Value::String(s)) => s.contains(&vals.get(1).map(as_text).unwrap_or_default()),
            Some(Value::Array(a)) => a.contains(vals.get(1).unwrap_or(&Value::Null)),
            Some(Value::Object(m)) => m.contains_key(&vals.get(1).map(as_text).unwrap_or_default()),
            _ => false,
        }),
        other => return collection_functions(other, vals),
    })
}

/// More of the functions (split by kind).
fn collection_functions(name: &str, vals: &[Value]) -> Result<Value, String> {
    Ok(match name {
        "first" => match vals.first() {
            Some(Value::Array(a)) => a.first().cloned().unwrap_or(Value::Null),
            other => Value::String(
                other
                    .map(as_text)
                    .unwrap_or_default()
                    .chars()
                    .take(1)
                    .collect(),
            ),
        },
        "last" => match vals.first() {
            Some(Value::Array(a)) => a.last().cloned().unwrap_or(Value::Null),
            other => Value::String(
                other
                    .map(as_text)
                    .unwrap_or_default()
                    .chars()
                    .last()
                    .map(String::from)
                    .unwrap_or_default(),
            ),
        },
        "split" => Value::Array(
            vals.first()
                .map(as_text)
                .unwrap_or_default()
                .split(&vals.get(1).map(as_text).unwrap_or_default())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        other => return object_functions(other, vals),
    })
}

/// More of the functions (split by kind).
fn object_functions(name: &str, vals: &[Value]) -> Result<Value, String> {
    Ok(match name {
        "union" => {
            if vals.iter().all(Value::is_object) {
                let mut m = Map::new();
                for v in vals {
                    if let Value::Object(x) = v {
                        m.extend(x.clone());
                    }
                }
                Value::Object(m)
            } else {
                let mut out: Vec<Value> = Vec::new();
                for v in vals
                    .iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
        }
        "coalesce" => vals
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        "array" => match vals.first() {
            Some(Value::Array(a)) => Value::Array(a.clone()),
            Some(v) => Value::Array(vec![v.clone()]),
            None => Value::Array(Vec::new()),
        },
        "createobject" => {
            let mut m = Map::new();
            for pair in vals.chunks(2) {
                if let [k, v] = pair {
                    m.insert(as_text(k), v.clone());
                }
            }
            Value::Object(m)
        }
        "take" | "skip" => {
            let n = num(vals.get(1))? as usize;
            match vals.first() {
                Some(Value::Array(a)) if name == "take" => {
                    Value::Array(a.iter().take(n).cloned().collect())
                }
                Some(Value::Array(a)) => Value::Array(a.iter().skip(n).cloned().collect()),
                other => {
                    let s = other.map(as_text).unwrap_or_default();
                    Value::String(if name == "take" {
                        s.chars().take(n).collect()
                    } else {
                        s.chars().skip(n).collect()
                    })
                }
            }
        }
        "json" => serde_json::from_str(&vals.first().map(as_text).unwrap_or_default())
            .map_err(|_| "json() of invalid JSON".to_string())?,
        other => return Err(format!("function {other}() is not supported")),
    })
}

fn resolve_strict(v: &Value, ctx: &mut Ctx) -> Result<Value, String> {
    match v {
        Value::String(s) => eval_string(s, ctx),
        Value::Array(a) => a
            .iter()
            .map(|x| resolve_strict(x, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(k.clone(), resolve_strict(x, ctx)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str, params: &[(&str, Value)], vars: Value) -> Result<Value, String> {
        let mut ctx = Ctx {
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            variables: Some(&vars),
            depth: 0,
            deployments: HashMap::new(),
        };
        eval_string(s, &mut ctx)
    }

    #[test]
    fn expressions_resolve() {
        let vars = serde_json::json!({"vnetName": "[concat(parameters('prefix'), '-vnet')]"});
        assert_eq!(
            ev("[parameters('n')]", &[("n", Value::from(3))], vars.clone()).unwrap(),
            Value::from(3)
        );
        assert_eq!(
            ev(
                "[variables('vnetName')]",
                &[("prefix", "aks".into())],
                vars.clone()
            )
            .unwrap(),
            Value::from("aks-vnet")
        );
        let id = ev("[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnetName'), 'nodes')]", &[("prefix", "aks".into())], vars.clone()).unwrap();
        assert_eq!(id, Value::from("/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.Network/virtualNetworks/aks-vnet/subnets/nodes"));
        assert_eq!(
            ev("[[literal]", &[], vars.clone()).unwrap(),
            Value::from("[literal]")
        );
        assert!(ev("[parameters('missing')]", &[], vars.clone())
            .unwrap_err()
            .contains("missing"));
        assert!(ev("[reference('x').foo]", &[], vars)
            .unwrap_err()
            .contains("reference"));
    }
}
