//! Terraform evaluation: variables (defaults, `.tfvars`, `.tfvars.json`), locals, resources and
//! data sources with `count`/`for_each`, `dynamic` blocks, and the functions AKS definitions use,
//! on top of the `hcl-rs` evaluator (operators, conditionals, `for`, splats, templates).
//! References between resources resolve in passes until nothing changes, so file order does
//! not matter. A value that cannot be evaluated (a variable without a value, an unknown
//! function, an attribute only known after apply) becomes an "unresolved" marker naming the
//! file, line and expression: it matters only where the planner needs that value.

use std::collections::HashMap;

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use serde_json::{Map, Value};

use super::azure::synthetic_subnet_id;
use super::hcl::{self as h, Expr, Item};
use super::value::{arg_array, UNRESOLVED};

/// Passes over resources: each pass resolves one more level of references between them.
const PASSES: usize = 8;

/// Passes over locals: locals may refer to each other in any order, up to this depth (64), or
/// 8 for configurations of more than 1,000 locals, where each pass is costly.
fn local_passes(n: usize) -> usize {
    if n > 1000 {
        PASSES
    } else {
        64
    }
}

/// A resource, data source or module block of the configuration.
#[derive(Debug, Clone)]
pub struct Res {
    /// "resource", "data" or "module".
    pub kind: &'static str,
    pub ty: String,
    pub name: String,
    pub file: String,
    pub line: usize,
    pub body: Vec<Item>,
}

/// One evaluated instance of a resource (`count`/`for_each` give several).
#[derive(Debug, Clone)]
pub struct Instance {
    /// `[0]`, `["key"]` or empty.
    pub index: String,
    pub value: Value,
}

#[derive(Default)]
pub struct Config {
    /// name → (default expression, file, line).
    pub vars: Vec<(String, Option<Expr>, String, usize)>,
    /// Values from `.tfvars` / `.tfvars.json`, by variable name.
    pub tfvars: HashMap<String, Value>,
    pub locals: Vec<(String, Expr, String, usize)>,
    pub resources: Vec<Res>,
}

/// The evaluated configuration: each resource's instances, in file order.
pub struct Evaluated {
    pub instances: Vec<(Res, Vec<Instance>)>,
    /// Every variable with a value (default or `.tfvars`), by name.
    pub vars: Map<String, Value>,
    /// Variables that have neither a default nor a value (name, file, line).
    pub unset_vars: Vec<(String, String, usize)>,
}

fn to_hcl(v: &Value) -> hcl::Value {
    hcl::to_value(v).unwrap_or(hcl::Value::Null)
}

fn to_json(v: &hcl::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `v` without unresolved markers (an attribute that could not be evaluated is absent from
/// what other expressions see, so a reference to it fails in turn).
fn known(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with(UNRESOLVED) => Value::Null,
        Value::Array(a) => Value::Array(a.iter().map(known).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !matches!(x, Value::String(s) if s.starts_with(UNRESOLVED)))
                .map(|(k, x)| (k.clone(), known(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn eval(e: &Expr, ctx: &Context) -> Result<Value, String> {
    e.evaluate(ctx).map(|v| to_json(&v)).map_err(|e| {
        let s = e.to_string();
        s.lines().next().unwrap_or("").to_string()
    })
}

fn marker(e: &Expr, file: &str, line: usize, why: &str) -> Value {
    Value::String(format!(
        "{UNRESOLVED}{} at {file}:{line} ({why})",
        h::text(e, 120)
    ))
}

/// An attribute's value. An object or tuple constructor that does not evaluate as a whole is
/// evaluated element by element, so one unknown element (a route table's ID beside a subnet's
/// prefixes) leaves its siblings known; the unknown element becomes a marker.
fn attr_value(e: &Expr, ctx: &Context, file: &str, line: usize) -> Value {
    let why = match eval(e, ctx) {
        Ok(v) => return v,
        Err(why) => why,
    };
    match e {
        Expr::Object(o) => Value::Object(
            o.iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        hcl::ObjectKey::Identifier(i) => i.as_str().to_string(),
                        hcl::ObjectKey::Expression(ke) => match eval(ke, ctx).ok()? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                        _ => return None,
                    };
                    Some((key, attr_value(v, ctx, file, line)))
                })
                .collect(),
        ),
        Expr::Array(a) => Value::Array(a.iter().map(|x| attr_value(x, ctx, file, line)).collect()),
        Expr::Parenthesis(inner) => attr_value(inner, ctx, file, line),
        _ => marker(e, file, line, &why),
    }
}

/// A block body as JSON: attributes evaluated (or markers), nested blocks as arrays of
/// objects, `dynamic` blocks expanded.
pub fn block_value(body: &[Item], ctx: &Context, file: &str) -> Value {
    let mut m = Map::new();
    let push = |m: &mut Map<String, Value>, ty: &str, v: Value| match m.get_mut(ty) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            m.insert(ty.to_string(), Value::Array(vec![v]));
        }
    };
    for i in body {
        match i {
            Item::Attr { name, expr, line } => {
                m.insert(name.clone(), attr_value(expr, ctx, file, *line));
            }
            Item::Block {
                ty, labels, body, ..
            } if ty == "dynamic" => {
                let Some(label) = labels.first() else {
                    continue;
                };
                for v in dynamic(label, body, ctx, file) {
                    if v.is_string() && !m.contains_key(label.as_str()) {
                        m.insert(label.clone(), v);
                    } else if !v.is_string() {
                        push(&mut m, label, v);
                    }
                }
            }
            Item::Block { ty, body, .. } => {
                let v = block_value(body, ctx, file);
                push(&mut m, ty, v);
            }
        }
    }
    Value::Object(m)
}

/// `dynamic "label" { for_each = ...  iterator = it  content { ... } }`: one block per element,
/// with `label.key`/`label.value` (or the iterator's name) bound in the content.
fn dynamic(label: &str, body: &[Item], ctx: &Context, file: &str) -> Vec<Value> {
    let attr = |n: &str| {
        body.iter().find_map(|i| match i {
            Item::Attr { name, expr, line } if name == n => Some((expr, *line)),
            _ => None,
        })
    };
    let iter_name = match attr("iterator") {
        Some((Expr::Variable(v), _)) => v.as_str().to_string(),
        _ => label.to_string(),
    };
    let Some(content) = body.iter().find_map(|i| match i {
        Item::Block { ty, body, .. } if ty == "content" => Some(body),
        _ => None,
    }) else {
        return Vec::new();
    };
    let Some((fe, line)) = attr("for_each") else {
        return Vec::new();
    };
    let elems = match eval(fe, ctx) {
        Ok(v) => elements(&v),
        // Unknown collection: the blocks are unknown (a marker in their place).
        Err(why) => return vec![marker(fe, file, line, &why)],
    };
    // One copy of the context for the whole block, the iterator rebound per element.
    let mut c = ctx.clone();
    elems
        .into_iter()
        .map(|(k, v)| {
            c.declare_var(
                iter_name.as_str(),
                to_hcl(&serde_json::json!({"key": k, "value": v})),
            );
            block_value(content, &c, file)
        })
        .collect()
}

/// `for_each`/`dynamic` collections: a map gives (key, value); a list or set gives
/// (element, element) as Terraform's sets do, or (index, element) for a list of objects.
fn elements(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| (Value::String(k.clone()), x.clone()))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(_) => (x.clone(), x.clone()),
                _ => (Value::from(i as u64), x.clone()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The synthetic ARM ID of a resource instance (what `.id` evaluates to), from its name,
/// VNet and resource group where the type has them.
fn synthetic_id(ty: &str, v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    // The resource group only completes the ID (joins go by VNet and subnet name): an unknown
    // one becomes the placeholder.
    let rg = s("resource_group_name").filter(|g| !g.contains(UNRESOLVED));
    let s = |k: &str| {
        if k == "resource_group_name" {
            rg.clone()
        } else {
            s(k)
        }
    };
    let name = s("name").unwrap_or_default();
    match ty {
        "azurerm_subnet" => synthetic_subnet_id(
            s("resource_group_name").as_deref(),
            &s("virtual_network_name").unwrap_or_default(),
            &name,
        ),
        "azurerm_virtual_network" => format!(
            "/subscriptions/{{subscription}}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{name}",
            s("resource_group_name").unwrap_or_else(|| "{resourceGroup}".into()),
        ),
        _ => format!("tf:{ty}.{name}"),
    }
}

fn count_or_each(r: &Res, ctx: &Context) -> Result<Option<Vec<(String, Value)>>, String> {
    for i in &r.body {
        let Item::Attr { name, expr, .. } = i else {
            continue;
        };
        if name == "count" {
            let n = eval(expr, ctx)?
                .as_u64()
                .ok_or("count is not a whole number")?;
            let n = n.min(1000);
            return Ok(Some(
                (0..n)
                    .map(|i| (format!("[{i}]"), serde_json::json!({ "index": i })))
                    .collect(),
            ));
        }
        if name == "for_each" {
            let v = eval(expr, ctx)?;
            return Ok(Some(
                elements(&v)
                    .into_iter()
                    .map(|(k, x)| {
                        let idx = match &k {
                            Value::String(s) => format!("[\"{s}\"]"),
                            other => format!("[{other}]"),
                        };
                        (idx, serde_json::json!({ "key": k, "value": x }))
                    })
                    .collect(),
            ));
        }
    }
    Ok(None)
}

fn instances(r: &Res, ctx: &Context) -> Vec<Instance> {
    let body: Vec<Item> = r
        .body
        .iter()
        .filter(|i| !matches!(i, Item::Attr { name, .. } if name == "count" || name == "for_each"))
        .cloned()
        .collect();
    let finish = |mut v: Value, index: String| {
        if let Value::Object(m) = &mut v {
            // A name only known after apply (`random_id.x.hex`, a variable without a value)
            // stands in as the Terraform address, so references to it still line up.
            let unknown_name =
                matches!(m.get("name"), Some(Value::String(s)) if s.starts_with(UNRESOLVED));
            if unknown_name && r.kind != "module" {
                m.insert(
                    "name".into(),
                    Value::String(format!("{}.{}{index}", r.ty, r.name)),
                );
            }
            if r.kind == "module" {
                super::tfavmvnet::outputs(m);
            }
            if !m.contains_key("id") && r.kind != "module" {
                let id = synthetic_id(&r.ty, &Value::Object(m.clone()));
                // An ID built from unknown parts is unknown itself.
                let id = if id.contains(UNRESOLVED) {
                    Value::String(format!(
                        "{UNRESOLVED}{}.{}{index}.id at {}:{} (its name or VNet is not known yet)",
                        r.ty, r.name, r.file, r.line
                    ))
                } else {
                    Value::String(id)
                };
                m.insert("id".into(), id);
            }
        }
        Instance { index, value: v }
    };
    match count_or_each(r, ctx) {
        Ok(None) => vec![finish(block_value(&body, ctx, &r.file), String::new())],
        Ok(Some(list)) => {
            // One copy of the context, `count`/`each` rebound per instance.
            let mut c = ctx.clone();
            list.into_iter()
                .map(|(index, bind)| {
                    let var = if bind.get("index").is_some() {
                        "count"
                    } else {
                        "each"
                    };
                    c.declare_var(var, to_hcl(&bind));
                    finish(block_value(&body, &c, &r.file), index)
                })
                .collect()
        }
        // The instances are unknown: evaluate once, so the attributes that do not depend on
        // count/each still count.
        Err(_) => vec![finish(block_value(&body, ctx, &r.file), String::new())],
    }
}

/// What other expressions see of a resource's instances: an object, a list (count) or a map
/// (for_each).
fn visible(insts: &[Instance]) -> Value {
    match insts.first() {
        Some(i) if i.index.is_empty() => known(&i.value),
        _ if insts.iter().all(|i| !i.index.starts_with("[\"")) => {
            Value::Array(insts.iter().map(|i| known(&i.value)).collect())
        }
        _ => Value::Object(
            insts
                .iter()
                .map(|i| {
                    let k = i.index.trim_start_matches("[\"").trim_end_matches("\"]");
                    (k.to_string(), known(&i.value))
                })
                .collect(),
        ),
    }
}

fn has_marker(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(UNRESOLVED),
        Value::Array(a) => a.iter().any(has_marker),
        Value::Object(m) => m.values().any(has_marker),
        _ => false,
    }
}

/// Evaluate the configuration.
pub fn evaluate(cfg: &Config) -> Evaluated {
    let base = base_context();
    let mut vars = Map::new();
    let mut unset_vars = Vec::new();
    for (name, default, file, line) in &cfg.vars {
        if let Some(v) = cfg.tfvars.get(name) {
            vars.insert(name.clone(), v.clone());
        } else if let Some(d) = default {
            if let Ok(v) = eval(d, &base) {
                vars.insert(name.clone(), v);
            }
        } else {
            unset_vars.push((name.clone(), file.clone(), *line));
        }
    }
    let mut ctx = base.clone();
    ctx.declare_var("var", to_hcl(&Value::Object(vars.clone())));
    let mut locals = Map::new();
    for _ in 0..local_passes(cfg.locals.len()) {
        let mut c = ctx.clone();
        c.declare_var("local", to_hcl(&Value::Object(locals.clone())));
        let before = locals.len();
        for (name, e, _, _) in &cfg.locals {
            if !locals.contains_key(name) {
                if let Ok(v) = eval(e, &c) {
                    locals.insert(name.clone(), v);
                }
            }
        }
        if locals.len() == before {
            break;
        }
    }
    ctx.declare_var("local", to_hcl(&Value::Object(locals)));
    let mut result: Vec<(Res, Vec<Instance>)> = Vec::new();
    let mut last = String::new();
    for _ in 0..PASSES {
        let mut c = ctx.clone();
        declare_resources(&mut c, &result);
        result = cfg
            .resources
            .iter()
            .map(|r| (r.clone(), instances(r, &c)))
            .collect();
        // Nothing unknown left: another pass cannot change anything.
        if !result
            .iter()
            .flat_map(|(_, i)| i.iter())
            .any(|i| has_marker(&i.value))
        {
            break;
        }
        let snapshot = format!("{:?}", result.iter().map(|(_, i)| i).collect::<Vec<_>>());
        if snapshot == last {
            break;
        }
        last = snapshot;
    }
    Evaluated {
        vars,
        instances: result,
        unset_vars,
    }
}

/// Declare `azurerm_x.name`, `data.azurerm_x.name` and `module.name` for references.
fn declare_resources(ctx: &mut Context, result: &[(Res, Vec<Instance>)]) {
    let mut by_type: Map<String, Value> = Map::new();
    let mut data: Map<String, Value> = Map::new();
    let mut modules: Map<String, Value> = Map::new();
    for (r, insts) in result {
        let v = visible(insts);
        let slot = match r.kind {
            "data" => data
                .entry(r.ty.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            "module" => {
                modules.insert(r.name.clone(), v);
                continue;
            }
            _ => by_type
                .entry(r.ty.clone())
                .or_insert_with(|| Value::Object(Map::new())),
        };
        if let Value::Object(m) = slot {
            m.insert(r.name.clone(), v);
        }
    }
    for (ty, v) in by_type {
        ctx.declare_var(ty.as_str(), to_hcl(&v));
    }
    ctx.declare_var("data", to_hcl(&Value::Object(data)));
    ctx.declare_var("module", to_hcl(&Value::Object(modules)));
}

// ---- functions -----------------------------------------------------------------------------

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn num(v: Option<&Value>) -> Result<f64, String> {
    match v {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| "not a number".to_string()),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number")),
        _ => Err("expected a number".into()),
    }
}

fn json_num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn cidr_parts(s: &str) -> Result<(u32, u8), String> {
    match s.parse::<ipnet::IpNet>() {
        Ok(ipnet::IpNet::V4(n)) => Ok((u32::from(n.network()), n.prefix_len())),
        Ok(_) => Err(format!("'{s}': only IPv4 is supported")),
        Err(_) => Err(format!("'{s}' is not a CIDR")),
    }
}

fn cidrsubnet(a: &[Value]) -> Result<Value, String> {
    let (base, len) = cidr_parts(&as_text(a.first().unwrap_or(&Value::Null)))?;
    let newbits = num(a.get(1))? as u32;
    let netnum = num(a.get(2))? as u64;
    let plen = u32::from(len) + newbits;
    if plen > 32 || (newbits < 64 && netnum >= (1u64 << newbits)) {
        return Err("cidrsubnet: out of range".into());
    }
    let addr = if plen == 0 {
        base
    } else {
        base | ((netnum as u32) << (32 - plen))
    };
    Ok(Value::String(format!(
        "{}/{plen}",
        std::net::Ipv4Addr::from(addr)
    )))
}

fn cidrhost(a: &[Value]) -> Result<Value, String> {
    let (base, len) = cidr_parts(&as_text(a.first().unwrap_or(&Value::Null)))?;
    let host = num(a.get(1))? as i64;
    let size = 1i64 << (32 - u32::from(len));
    let off = if host < 0 { size + host } else { host };
    if off < 0 || off >= size {
        return Err("cidrhost: out of range".into());
    }
    Ok(Value::String(
        std::net::Ipv4Addr::from(base.wrapping_add(off as u32)).to_string(),
    ))
}

fn format_fn(a: &[Value]) -> Value {
    let fmt = as_text(a.first().unwrap_or(&Value::Null));
    let mut out = String::new();
    let mut args = a.iter().skip(1);
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('%') => out.push('%'),
                Some(_) => out.push_str(&args.next().map(as_text).unwrap_or_default()),
                None => out.push('%'),
            }
        } else {
            out.push(c);
        }
    }
    Value::String(out)
}

/// The functions AKS and VNet definitions use; an unknown one fails its expression only.
fn call(name: &str, a: Vec<Value>) -> Result<Value, String> {
    let t = |i: usize| a.get(i).map(as_text).unwrap_or_default();
    let arr = |i: usize| arg_array(&a, i);
    Ok(match name {
        "lower" => Value::String(t(0).to_lowercase()),
        "upper" => Value::String(t(0).to_uppercase()),
        "trimspace" => Value::String(t(0).trim().to_string()),
        "tostring" => Value::String(t(0)),
        "tonumber" => json_num(num(a.first())?),
        "tobool" | "tolist" | "toset" | "tomap" | "sensitive" | "nonsensitive" => {
            a.into_iter().next().unwrap_or(Value::Null)
        }
        "format" => format_fn(&a),
        "join" => Value::String(arr(1).iter().map(as_text).collect::<Vec<_>>().join(&t(0))),
        "split" => Value::Array(
            t(1).split(t(0).as_str())
                .map(|s| Value::String(s.into()))
                .collect(),
        ),
        "replace" => Value::String(t(0).replace(&t(1), &t(2))),
        other => return call_collection(other, a),
    })
}

/// More of the functions (split by kind).
fn call_collection(name: &str, a: Vec<Value>) -> Result<Value, String> {
    let arr = |i: usize| arg_array(&a, i);
    Ok(match name {
        "concat" => Value::Array(
            a.iter()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                .collect(),
        ),
        "flatten" => Value::Array(
            arr(0)
                .into_iter()
                .flat_map(|v| match v {
                    Value::Array(x) => x,
                    o => vec![o],
                })
                .collect(),
        ),
        "compact" => Value::Array(
            arr(0)
                .into_iter()
                .filter(|v| !v.is_null() && v != "")
                .collect(),
        ),
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for v in arr(0) {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        "length" => Value::from(match a.first() {
            Some(Value::Array(x)) => x.len(),
            Some(Value::Object(m)) => m.len(),
            Some(Value::String(s)) => s.chars().count(),
            _ => return Err("length: expected a collection".into()),
        } as u64),
        "element" => {
            let l = arr(0);
            if l.is_empty() {
                return Err("element: empty list".into());
            }
            l[(num(a.get(1))? as usize) % l.len()].clone()
        }
        "one" => arr(0).into_iter().next().unwrap_or(Value::Null),
        "contains" => Value::Bool(arr(0).contains(a.get(1).unwrap_or(&Value::Null))),
        other => return call_map(other, a),
    })
}

/// More of the functions (split by kind).
fn call_map(name: &str, a: Vec<Value>) -> Result<Value, String> {
    let t = |i: usize| a.get(i).map(as_text).unwrap_or_default();
    Ok(match name {
        "keys" => Value::Array(
            a.first()
                .and_then(Value::as_object)
                .map(|m| m.keys().map(|k| Value::String(k.clone())).collect())
                .unwrap_or_default(),
        ),
        "values" => Value::Array(
            a.first()
                .and_then(Value::as_object)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
        ),
        "lookup" => match a
            .first()
            .and_then(Value::as_object)
            .and_then(|m| m.get(&t(1)))
        {
            Some(v) => v.clone(),
            None => a
                .get(2)
                .cloned()
                .ok_or("lookup: key not found and no default")?,
        },
        "merge" => {
            let mut m = Map::new();
            for v in &a {
                if let Value::Object(x) = v {
                    m.extend(x.clone());
                }
            }
            Value::Object(m)
        }
        "coalesce" => a
            .into_iter()
            .find(|v| !v.is_null() && v != "")
            .ok_or("coalesce: no non-null argument")?,
        other => return call_number(other, a),
    })
}

/// More of the functions (split by kind).
fn call_number(name: &str, a: Vec<Value>) -> Result<Value, String> {
    Ok(match name {
        "max" => json_num(
            a.iter()
                .map(|v| num(Some(v)))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .fold(f64::MIN, f64::max),
        ),
        "min" => json_num(
            a.iter()
                .map(|v| num(Some(v)))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .fold(f64::MAX, f64::min),
        ),
        "range" => {
            let n: Vec<f64> = a.iter().map(|v| num(Some(v))).collect::<Result<_, _>>()?;
            let (start, end, step) = match n.as_slice() {
                [e] => (0.0, *e, 1.0),
                [s, e] => (*s, *e, 1.0),
                [s, e, st] => (*s, *e, *st),
                _ => return Err("range: 1 to 3 arguments".into()),
            };
            if step == 0.0 || ((end - start) / step) > 10_000.0 {
                return Err("range: too many elements".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                out.push(json_num(x));
                x += step;
            }
            Value::Array(out)
        }
        "abs" => json_num(num(a.first())?.abs()),
        "floor" => json_num(num(a.first())?.floor()),
        "ceil" => json_num(num(a.first())?.ceil()),
        "cidrsubnet" => cidrsubnet(&a)?,
        "cidrhost" => cidrhost(&a)?,
        other => {
            return Err(format!(
                "function {other}() is not supported by aksnet plan"
            ))
        }
    })
}

macro_rules! funcs {
    ($($name:literal => $f:ident),* $(,)?) => {
        $(fn $f(args: FuncArgs) -> Result<hcl::Value, String> {
            let vals: Vec<Value> = args.into_values().iter().map(to_json).collect();
            call($name, vals).map(|v| to_hcl(&v))
        })*
        fn declare_funcs(ctx: &mut Context) {
            $(ctx.declare_func($name, FuncDef::builder().variadic_param(ParamType::Any).build($f));)*
        }
    };
}

funcs! {
    "lower" => f_lower, "upper" => f_upper, "trimspace" => f_trimspace, "tostring" => f_tostring,
    "tonumber" => f_tonumber, "tobool" => f_tobool, "tolist" => f_tolist, "toset" => f_toset,
    "tomap" => f_tomap, "sensitive" => f_sensitive, "nonsensitive" => f_nonsensitive,
    "format" => f_format, "join" => f_join, "split" => f_split, "replace" => f_replace,
    "concat" => f_concat, "flatten" => f_flatten, "compact" => f_compact,
    "distinct" => f_distinct, "length" => f_length, "element" => f_element, "one" => f_one,
    "contains" => f_contains, "keys" => f_keys, "values" => f_values, "lookup" => f_lookup,
    "merge" => f_merge, "coalesce" => f_coalesce, "max" => f_max, "min" => f_min,
    "abs" => f_abs, "range" => f_range, "floor" => f_floor, "ceil" => f_ceil, "cidrsubnet" => f_cidrsubnet,
    "cidrhost" => f_cidrhost,
}

/// A constant expression (a `.tfvars` value): functions, no references.
pub fn eval_const(e: &Expr) -> Result<Value, String> {
    eval(e, &base_context())
}

fn base_context() -> Context<'static> {
    let mut ctx = Context::new();
    declare_funcs(&mut ctx);
    // Terraform's `path.module` etc. only feed names and file paths.
    ctx.declare_var(
        "path",
        to_hcl(&serde_json::json!({"module": ".", "root": ".", "cwd": "."})),
    );
    ctx.declare_var(
        "terraform",
        to_hcl(&serde_json::json!({"workspace": "default"})),
    );
    ctx
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(src: &str) -> Result<Value, String> {
        let items = h::parse("t.tf", &format!("x = {src}\n")).unwrap();
        let Item::Attr { expr, .. } = &items[0] else {
            panic!()
        };
        let mut ctx = base_context();
        ctx.declare_var(
            "var",
            to_hcl(&serde_json::json!({"on": true, "cidr": "10.1.0.0/16", "l": ["a", "b"]})),
        );
        eval(expr, &ctx)
    }

    #[test]
    fn expressions_evaluate() {
        assert_eq!(ev("!var.on").unwrap(), Value::Bool(false));
        assert_eq!(ev("-3 + 5 * 2").unwrap(), Value::from(7));
        assert_eq!(ev("var.on ? \"a\" : \"b\"").unwrap(), "a");
        assert_eq!(
            ev("[for s in var.l : upper(s)]").unwrap(),
            serde_json::json!(["A", "B"])
        );
        assert_eq!(ev("cidrsubnet(var.cidr, 8, 3)").unwrap(), "10.1.3.0/24");
        assert_eq!(ev("cidrhost(\"10.2.0.0/16\", 10)").unwrap(), "10.2.0.10");
        assert_eq!(ev("\"${var.cidr}-x\"").unwrap(), "10.1.0.0/16-x");
        assert_eq!(ev("format(\"%s-%d\", \"a\", 3)").unwrap(), "a-3");
        assert!(ev("uuid()").unwrap_err().contains("uuid"));
        assert!(ev("var.missing").is_err());
    }
}
