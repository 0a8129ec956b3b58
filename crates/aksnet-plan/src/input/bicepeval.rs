//! Bicep evaluation: parameters (defaults, `.bicepparam` and JSON parameters files), variables,
//! resources (nested children, `parent:`, `existing`, conditions, loops) and modules whose file
//! is among the inputs, into an ARM template with every value resolved, read by
//! `super::arm`. Functions: `resourceId`, `subscription()`, `resourceGroup()`, `concat`,
//! `format`, `cidrSubnet`, `cidrHost`, `parseCidr`, `union`, `contains`, `empty`, `length`,
//! `first`, `last`, `split`, `join`, `replace`, `toLower`, `toUpper`, `string`, `int`,
//! `range`, `min`, `max`, `take`, `skip`, `coalesce`; any other function (`uniqueString`,
//! `guid`) or unknown value makes only its own expression unknown. docs/plan.md, "Bicep".

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::bicep::{Decl, DeclKind, Expr, StrPart};
use super::value::{arg_array, UNRESOLVED};

type R = Result<Value, String>;

/// One parsed Bicep file.
pub struct BicepFile {
    pub file: String,
    pub decls: Vec<Decl>,
}

struct Env<'a> {
    file: &'a BicepFile,
    all: &'a [BicepFile],
    params: HashMap<String, Value>,
    vars: HashMap<String, R>,
    /// Resource symbol → what other expressions see (`name`, `id`, `properties`, ...).
    resources: HashMap<String, Value>,
    /// Loop variables in scope.
    locals: Vec<(String, Value)>,
    depth: usize,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn num(v: &Value) -> Result<f64, String> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("{v} is not a number"))
}

fn jnum(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9e15 {
        Value::from(f as i64)
    } else {
        json!(f)
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

/// The ID a resource of `ty` (without the API version) named `name` has.
pub fn synthetic_id(ty: &str, name: &str) -> String {
    let segs: Vec<&str> = name.split('/').collect();
    let t: Vec<&str> = ty.split('/').collect();
    if t.len() >= 3
        && ty.eq_ignore_ascii_case("Microsoft.Network/virtualNetworks/subnets")
        && segs.len() == 2
    {
        return super::azure::synthetic_subnet_id(None, segs[0], segs[1]);
    }
    let mut path = format!(
        "/subscriptions/{{subscription}}/resourceGroups/{{resourceGroup}}/providers/{}/{}",
        t.first().copied().unwrap_or(""),
        t.get(1).copied().unwrap_or("")
    );
    path.push('/');
    path.push_str(segs.first().copied().unwrap_or(""));
    for (i, seg) in segs.iter().enumerate().skip(1) {
        path.push_str(&format!("/{}/{seg}", t.get(i + 1).copied().unwrap_or("")));
    }
    path
}

impl Env<'_> {
    fn eval(&mut self, e: &Expr) -> R {
        self.depth += 1;
        if self.depth > 200 {
            self.depth -= 1;
            return Err("references nest too deeply".into());
        }
        let r = self.eval_inner(e);
        self.depth -= 1;
        r
    }

    fn eval_inner(&mut self, e: &Expr) -> R {
        Ok(match e {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Num(n) => jnum(*n),
            Expr::Str(parts) => self.interpolate(parts)?,
            Expr::Var(name) => self.var(name)?,
            Expr::Member(x, m) => self.member(x, m)?,
            Expr::Child(x, c) => self.child(x, c)?,
            Expr::Index(x, i) => {
                let (v, i) = (self.eval(x)?, self.eval(i)?);
                index(&v, &i)?
            }
            Expr::Call(f, args) => {
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(a)?);
                }
                call(f, &vals)?
            }
            Expr::Unary(op, x) => {
                let v = self.eval(x)?;
                if *op == "!" {
                    Value::Bool(!truthy(&v))
                } else {
                    jnum(-num(&v)?)
                }
            }
            Expr::Bin(op, a, b) => self.binary(op, a, b)?,
            Expr::Cond(c, a, b) => {
                if truthy(&self.eval(c)?) {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::Obj(items) => self.object(items),
            Expr::Arr(items) => Value::Array(
                items
                    .iter()
                    .map(|x| {
                        self.eval(x)
                            .unwrap_or_else(|why| marker("[…]", self.file, 0, &why))
                    })
                    .collect(),
            ),
            Expr::For {
                item,
                index,
                coll,
                body,
            } => self.for_loop(item, index.as_deref(), coll, body)?,
            Expr::If(c, b) => {
                if truthy(&self.eval(c)?) {
                    self.eval(b)?
                } else {
                    Value::Null
                }
            }
            Expr::Nested(_) => Value::Null,
        })
    }

    /// `x.m`: a property (null stays null, as Bicep's safe access does for absent values).
    fn member(&mut self, x: &Expr, m: &str) -> R {
        let v = self.eval(x)?;
        match v.get(m) {
            Some(v) => Ok(v.clone()),
            None if v.is_null() => Ok(Value::Null),
            None => Err(format!("no property '{m}'")),
        }
    }

    /// `parent::child`: a nested resource declared inside its parent.
    fn child(&mut self, x: &Expr, c: &str) -> R {
        let Expr::Var(parent) = x else {
            return Err("'::' on something other than a resource".into());
        };
        let key = format!("{parent}::{c}");
        self.resources
            .get(&key)
            .cloned()
            .ok_or(format!("resource {key} is not known"))
    }

    /// A binary operator; `??` evaluates its right side only when the left is null or unknown.
    fn binary(&mut self, op: &str, a: &Expr, b: &Expr) -> R {
        if op == "??" {
            let l = self.eval(a).unwrap_or(Value::Null);
            return if l.is_null() { self.eval(b) } else { Ok(l) };
        }
        let (l, r) = (self.eval(a)?, self.eval(b)?);
        binop(op, &l, &r)
    }

    /// A string with `${...}` interpolations.
    fn interpolate(&mut self, parts: &[StrPart]) -> R {
        let mut s = String::new();
        for p in parts {
            match p {
                StrPart::Lit(l) => s.push_str(l),
                StrPart::Interp(x) => s.push_str(&text(&self.eval(x)?)),
            }
        }
        Ok(Value::String(s))
    }

    /// An object literal; an unknown property stays a marker: only a needed one matters.
    fn object(&mut self, items: &[(String, Expr)]) -> Value {
        let mut m = Map::new();
        for (k, v) in items {
            if matches!(v, Expr::Nested(_)) {
                continue;
            }
            let val = self
                .eval(v)
                .unwrap_or_else(|why| marker(&format!("{k}: …"), self.file, 0, &why));
            m.insert(k.clone(), val);
        }
        Value::Object(m)
    }

    /// `[for (item, index) in coll: body]`, with an optional `if` filter in the body.
    fn for_loop(&mut self, item: &str, index: Option<&str>, coll: &Expr, body: &Expr) -> R {
        let c = self.eval(coll)?;
        let elems: Vec<Value> = match c {
            Value::Array(a) => a,
            Value::Object(m) => m
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect(),
            _ => return Err("a for loop over something other than an array".into()),
        };
        let mut out = Vec::new();
        for (i, x) in elems.into_iter().enumerate() {
            self.locals.push((item.to_string(), x));
            if let Some(ix) = index {
                self.locals.push((ix.to_string(), Value::from(i as u64)));
            }
            let v = match body {
                Expr::If(c, b) => match self.eval(c) {
                    Ok(cv) if truthy(&cv) => Some(self.eval(b)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                },
                b => Some(self.eval(b)),
            };
            self.locals.pop();
            if index.is_some() {
                self.locals.pop();
            }
            if let Some(v) = v {
                out.push(v?);
            }
        }
        Ok(Value::Array(out))
    }

    fn var(&mut self, name: &str) -> R {
        if let Some((_, v)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        if let Some(v) = self.params.get(name) {
            return Ok(v.clone());
        }
        if let Some(v) = self.vars.get(name) {
            return v.clone();
        }
        if let Some(v) = self.resources.get(name) {
            return Ok(v.clone());
        }
        let decl = self.file.decls.iter().find(|d| d.name == name).cloned();
        match decl {
            Some(Decl {
                kind: DeclKind::Var,
                value: Some(e),
                ..
            }) => {
                // Guard against a cycle while evaluating.
                self.vars.insert(
                    name.to_string(),
                    Err(format!("variable '{name}' refers to itself")),
                );
                let v = self.eval(&e);
                self.vars.insert(name.to_string(), v.clone());
                v
            }
            Some(Decl {
                kind: DeclKind::Param,
                ..
            }) => Err(format!(
                "parameter '{name}' has no default and no value in a parameters file"
            )),
            Some(Decl {
                kind: DeclKind::Resource { .. },
                ..
            }) => Err(format!("resource '{name}' is not resolved yet")),
            _ => Err(format!("'{name}' is not defined")),
        }
    }
}

/// `v[i]`: an array element or an object's key.
fn index(v: &Value, i: &Value) -> R {
    match (v, i) {
        (Value::Array(a), _) => a
            .get(num(i)? as usize)
            .cloned()
            .ok_or_else(|| "index out of range".into()),
        (Value::Object(m), Value::String(k)) => {
            m.get(k).cloned().ok_or_else(|| format!("no key '{k}'"))
        }
        _ => Err("cannot index".into()),
    }
}

fn marker(expr: &str, file: &BicepFile, line: usize, why: &str) -> Value {
    let loc = if line > 0 {
        format!(" at {}:{line}", file.file)
    } else {
        String::new()
    };
    Value::String(format!("{UNRESOLVED}{expr}{loc} ({why})"))
}

fn binop(op: &str, l: &Value, r: &Value) -> R {
    Ok(match op {
        "==" => Value::Bool(l == r),
        "!=" => Value::Bool(l != r),
        "=~" => Value::Bool(text(l).eq_ignore_ascii_case(&text(r))),
        "!~" => Value::Bool(!text(l).eq_ignore_ascii_case(&text(r))),
        "&&" => Value::Bool(truthy(l) && truthy(r)),
        "||" => Value::Bool(truthy(l) || truthy(r)),
        "<" => Value::Bool(num(l)? < num(r)?),
        ">" => Value::Bool(num(l)? > num(r)?),
        "<=" => Value::Bool(num(l)? <= num(r)?),
        ">=" => Value::Bool(num(l)? >= num(r)?),
        "+" => jnum(num(l)? + num(r)?),
        "-" => jnum(num(l)? - num(r)?),
        "*" => jnum(num(l)? * num(r)?),
        "/" => {
            let d = num(r)?;
            if d == 0.0 {
                return Err("division by zero".into());
            }
            jnum((num(l)? / d).trunc())
        }
        "%" => jnum(num(l)? % num(r)?),
        _ => return Err(format!("operator {op}")),
    })
}

fn cidr4(s: &str) -> Result<ipnet::Ipv4Net, String> {
    s.parse::<ipnet::Ipv4Net>()
        .map_err(|_| format!("'{s}' is not an IPv4 CIDR"))
}

/// The functions AKS and VNet Bicep uses (docs/plan.md, "Bicep").
fn call(f: &str, a: &[Value]) -> R {
    let t = |i: usize| a.get(i).map(text).unwrap_or_default();
    let arr = |i: usize| arg_array(a, i);
    Ok(match f {
        "resourceId" | "subscriptionResourceId" | "resourceGroupResourceId" => {
            // resourceId([subscriptionId, resourceGroup,] type, name1, name2...)
            let ti = a
                .iter()
                .position(|v| text(v).contains('/') && text(v).contains('.'))
                .unwrap_or(0);
            let names: Vec<String> = a[ti + 1..].iter().map(text).collect();
            Value::String(synthetic_id(&t(ti), &names.join("/")))
        }
        "subscription" => {
            json!({"id": "/subscriptions/{subscription}", "subscriptionId": "{subscription}"})
        }
        "resourceGroup" => {
            json!({"id": "/subscriptions/{subscription}/resourceGroups/{resourceGroup}", "name": "{resourceGroup}", "location": "{location}"})
        }
        "concat" => {
            if a.iter().all(Value::is_array) {
                Value::Array(
                    a.iter()
                        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                        .collect(),
                )
            } else {
                Value::String(a.iter().map(text).collect())
            }
        }
        "format" => {
            let mut s = t(0);
            for i in 1..a.len() {
                s = s.replace(&format!("{{{}}}", i - 1), &t(i));
            }
            Value::String(s)
        }
        "string" => Value::String(t(0)),
        "int" => jnum(num(a.first().unwrap_or(&Value::Null))?.trunc()),
        "bool" => Value::Bool(t(0).eq_ignore_ascii_case("true")),
        "toLower" => Value::String(t(0).to_lowercase()),
        "toUpper" => Value::String(t(0).to_uppercase()),
        "replace" => Value::String(t(0).replace(&t(1), &t(2))),
        "split" => Value::Array(t(0).split(t(1).as_str()).map(|s| json!(s)).collect()),
        "join" => Value::String(arr(0).iter().map(text).collect::<Vec<_>>().join(&t(1))),
        other => return call_collection(other, a),
    })
}

/// More of the functions (split by kind).
fn call_collection(f: &str, a: &[Value]) -> R {
    let t = |i: usize| a.get(i).map(text).unwrap_or_default();
    Ok(match f {
        "empty" => Value::Bool(match a.first() {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(x)) => x.is_empty(),
            Some(Value::Object(m)) => m.is_empty(),
            _ => false,
        }),
        "length" => Value::from(match a.first() {
            Some(Value::String(s)) => s.chars().count(),
            Some(Value::Array(x)) => x.len(),
            Some(Value::Object(m)) => m.len(),
            _ => return Err("length of a non-collection".into()),
        } as u64),
        "contains" => Value::Bool(match a.first() {
            Some(Value::String(s)) => s.contains(&t(1)),
            Some(Value::Array(x)) => x.contains(a.get(1).unwrap_or(&Value::Null)),
            Some(Value::Object(m)) => m.contains_key(&t(1)),
            _ => false,
        }),
        "first" => match a.first() {
            Some(Value::Array(x)) => x.first().cloned().unwrap_or(Value::Null),
            _ => Value::String(t(0).chars().take(1).collect()),
        },
        "last" => match a.first() {
            Some(Value::Array(x)) => x.last().cloned().unwrap_or(Value::Null),
            _ => Value::String(t(0).chars().last().map(String::from).unwrap_or_default()),
        },
        other => return call_list(other, a),
    })
}

/// More of the functions (split by kind).
fn call_list(f: &str, a: &[Value]) -> R {
    let arr = |i: usize| arg_array(a, i);
    Ok(match f {
        "take" => Value::Array(
            arr(0)
                .into_iter()
                .take(num(a.get(1).unwrap_or(&Value::Null))? as usize)
                .collect(),
        ),
        "skip" => Value::Array(
            arr(0)
                .into_iter()
                .skip(num(a.get(1).unwrap_or(&Value::Null))? as usize)
                .collect(),
        ),
        "range" => {
            let (s, n) = (
                num(&a[0])? as i64,
                num(a.get(1).unwrap_or(&Value::Null))? as i64,
            );
            Value::Array((s..s + n.clamp(0, 10_000)).map(Value::from).collect())
        }
        "min" | "max" => {
            let xs: Vec<f64> = if a.len() == 1 {
                arr(0).iter().map(num).collect::<Result<_, _>>()?
            } else {
                a.iter().map(num).collect::<Result<_, _>>()?
            };
            jnum(if f == "min" {
                xs.into_iter().fold(f64::MAX, f64::min)
            } else {
                xs.into_iter().fold(f64::MIN, f64::max)
            })
        }
        "coalesce" => a
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        "union" => {
            if a.iter().all(Value::is_object) {
                let mut m = Map::new();
                for v in a {
                    if let Value::Object(x) = v {
                        m.extend(x.clone());
                    }
                }
                Value::Object(m)
            } else {
                let mut out: Vec<Value> = Vec::new();
                for v in a
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
        other => return call_cidr(other, a),
    })
}

/// More of the functions (split by kind).
fn call_cidr(f: &str, a: &[Value]) -> R {
    let t = |i: usize| a.get(i).map(text).unwrap_or_default();
    Ok(match f {
        "cidrSubnet" => {
            let n = cidr4(&t(0))?;
            let len = num(&a[1])? as u8;
            let idx = num(a.get(2).unwrap_or(&Value::Null))? as u32;
            if len < n.prefix_len() || len > 32 {
                return Err("cidrSubnet: bad prefix length".into());
            }
            let size = 1u64 << (32 - u32::from(len));
            let addr = u64::from(u32::from(n.network())) + u64::from(idx) * size;
            if addr + size > u64::from(u32::from(n.broadcast())) + 1 {
                return Err("cidrSubnet: index out of range".into());
            }
            Value::String(format!("{}/{len}", std::net::Ipv4Addr::from(addr as u32)))
        }
        "cidrHost" => {
            let n = cidr4(&t(0))?;
            let idx = num(a.get(1).unwrap_or(&Value::Null))? as u32;
            // Host index 0 is the first usable address (network + 1).
            Value::String(
                std::net::Ipv4Addr::from(u32::from(n.network()).wrapping_add(idx + 1)).to_string(),
            )
        }
        "parseCidr" => {
            let n = cidr4(&t(0))?;
            json!({"network": n.network().to_string(), "netmask": n.netmask().to_string(),
                   "broadcast": n.broadcast().to_string(), "cidr": n.prefix_len(),
                   "firstUsable": std::net::Ipv4Addr::from(u32::from(n.network()).wrapping_add(1)).to_string(),
                   "lastUsable": std::net::Ipv4Addr::from(u32::from(n.broadcast()).wrapping_sub(1)).to_string()})
        }
        other => {
            return Err(format!(
                "function {other}() is not evaluated by aksnet plan"
            ))
        }
    })
}

/// ARM resources of one file (and the modules it calls among `all`), with parameter values;
/// returns the file's outputs (an unknown one as a marker naming its line).
fn resources(
    file: &BicepFile,
    all: &[BicepFile],
    params: HashMap<String, Value>,
    out: &mut Vec<Value>,
    depth: usize,
) -> Map<String, Value> {
    let mut env = Env {
        file,
        all,
        params,
        vars: HashMap::new(),
        resources: HashMap::new(),
        locals: Vec::new(),
        depth: 0,
    };
    // Given values match declared names case-insensitively (JSON parameters files are read
    // lower-cased); then the defaults.
    for d in &file.decls {
        if d.kind == DeclKind::Param && !env.params.contains_key(&d.name) {
            let lower = d.name.to_ascii_lowercase();
            if let Some(v) = env.params.get(&lower).cloned() {
                env.params.insert(d.name.clone(), v);
            }
        }
    }
    for d in &file.decls {
        if let (DeclKind::Param, Some(e)) = (&d.kind, &d.value) {
            if !env.params.contains_key(&d.name) {
                if let Ok(v) = env.eval(e) {
                    env.params.insert(d.name.clone(), v);
                }
            }
        }
    }
    // Two passes: resources that refer to resources declared later resolve on the second.
    let mut emitted = Vec::new();
    for _ in 0..2 {
        emitted.clear();
        for d in &file.decls {
            match &d.kind {
                DeclKind::Resource { ty, existing } => {
                    resource(&mut env, d, ty, *existing, None, &mut emitted);
                }
                DeclKind::Module { path } if depth < 8 => {
                    module(&mut env, d, path, &mut emitted, depth);
                }
                _ => {}
            }
        }
    }
    out.extend(emitted);
    let mut outputs = Map::new();
    for d in file.decls.iter().filter(|d| d.kind == DeclKind::Output) {
        if let Some(e) = &d.value {
            let v = env
                .eval(e)
                .unwrap_or_else(|why| marker(&d.text, file, d.line, &why));
            outputs.insert(d.name.clone(), v);
        }
    }
    outputs
}

fn module(env: &mut Env, d: &Decl, path: &str, out: &mut Vec<Value>, depth: usize) {
    let base = path.rsplit('/').next().unwrap_or(path);
    let Some(target) = env
        .all
        .iter()
        .find(|f| f.file.rsplit('/').next() == Some(base))
    else {
        return;
    };
    let Some(body) = &d.value else { return };
    let body = match body {
        Expr::If(c, b) => match env.eval(c) {
            Ok(v) if truthy(&v) => b.as_ref().clone(),
            Ok(_) => return,
            Err(_) => b.as_ref().clone(),
        },
        b => b.clone(),
    };
    let Ok(v) = env.eval(&body) else { return };
    let params: HashMap<String, Value> = v
        .get("params")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, x)| !matches!(x, Value::String(s) if s.starts_with(UNRESOLVED)))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect()
        })
        .unwrap_or_default();
    // What the caller sees: `sym.outputs.x` (a subnet ID from a VNet module), `sym.name`.
    let outputs = resources(target, env.all, params, out, depth + 1);
    let name = v.get("name").cloned().unwrap_or_else(|| json!(d.name));
    env.resources.insert(
        d.name.clone(),
        json!({"name": name, "outputs": Value::Object(outputs)}),
    );
}

/// Evaluate one resource declaration (and its nested children) into ARM resources.
fn resource(
    env: &mut Env,
    d: &Decl,
    ty: &str,
    existing: bool,
    parent: Option<&str>,
    out: &mut Vec<Value>,
) {
    let Some(body) = &d.value else { return };
    let plain_ty = ty.split('@').next().unwrap_or(ty).to_string();
    let bodies = instances(env, d, body);
    let mut visible = Vec::new();
    for v in bodies {
        let Value::Object(mut m) = v else { continue };
        // `parent: vnet` or the enclosing resource.
        let parent_sym = parent
            .map(str::to_string)
            .or_else(|| match body_parent(body) {
                Some(Expr::Var(s)) => Some(s),
                _ => None,
            });
        let parent_val = parent_sym
            .as_ref()
            .and_then(|s| env.resources.get(s).cloned());
        let name = match m.get("name") {
            Some(Value::String(s)) if !s.starts_with(UNRESOLVED) => s.clone(),
            _ => d.name.clone(),
        };
        let (full_ty, full_name) = full_names(parent_val.as_ref(), &plain_ty, &name);
        m.remove("parent");
        m.insert("type".into(), json!(full_ty));
        m.insert("name".into(), json!(full_name));
        m.insert(
            "apiVersion".into(),
            json!(ty.split('@').nth(1).unwrap_or("")),
        );
        m.insert(
            super::arm::LOCATION_KEY.into(),
            json!(format!("{}:{}", env.file.file, d.line)),
        );
        let id = synthetic_id(&full_ty, &full_name);
        let mut seen = m.clone();
        if full_ty.eq_ignore_ascii_case("Microsoft.Network/virtualNetworks") {
            subnet_ids(&mut seen, &full_name);
        }
        seen.insert("id".into(), json!(id));
        seen.insert("name".into(), json!(name));
        seen.insert("type".into(), json!(full_ty));
        visible.push(Value::Object(seen.clone()));
        if !existing {
            out.push(Value::Object(m));
        }
        children(env, d, body, &seen, out);
    }
    let v = if visible.len() == 1 && !matches!(body, Expr::For { .. }) {
        visible.remove(0)
    } else {
        Value::Array(visible)
    };
    env.resources.insert(d.name.clone(), v);
}

/// The instances a resource body declares: none when its condition is false, one per loop
/// element, else one (an unknown body is a marker naming its line).
fn instances(env: &mut Env, d: &Decl, body: &Expr) -> Vec<Value> {
    match body {
        Expr::If(c, b) => match env.eval(c) {
            Ok(v) if !truthy(&v) => Vec::new(),
            _ => vec![env.eval(b).unwrap_or(Value::Null)],
        },
        Expr::For { .. } => env
            .eval(body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default(),
        b => vec![env
            .eval(b)
            .unwrap_or_else(|why| marker(&d.text, env.file, d.line, &why))],
    }
}

/// (type, name) in ARM's form: a child's type and name are prefixed by its parent's.
fn full_names(parent: Option<&Value>, plain_ty: &str, name: &str) -> (String, String) {
    let Some(p) = parent else {
        return (plain_ty.to_string(), name.to_string());
    };
    let pty = text(p.get("type").unwrap_or(&Value::Null));
    let pname = text(p.get("name").unwrap_or(&Value::Null));
    let ty = if plain_ty.contains('/') {
        plain_ty.to_string()
    } else {
        format!("{pty}/{plain_ty}")
    };
    let nm = if name.contains('/') {
        name.to_string()
    } else {
        format!("{pname}/{name}")
    };
    (ty, nm)
}

/// Nested children: `resource sub 'subnets' = {...}` inside the body, with `seen` (what
/// the parent looks like to expressions) as their parent.
fn children(env: &mut Env, d: &Decl, body: &Expr, seen: &Map<String, Value>, out: &mut Vec<Value>) {
    let Expr::Obj(items) = strip_if(body) else {
        return;
    };
    for (_, x) in items {
        let Expr::Nested(child) = x else { continue };
        if let DeclKind::Resource {
            ty: cty,
            existing: cex,
        } = &child.kind
        {
            env.resources
                .insert(d.name.clone(), Value::Object(seen.clone()));
            resource(env, child, cty, *cex, Some(&d.name), out);
            if let Some(v) = env.resources.get(&child.name).cloned() {
                env.resources
                    .insert(format!("{}::{}", d.name, child.name), v);
            }
        }
    }
}

/// Inline subnets of a VNet get the IDs ARM gives them, so `vnet.properties.subnets[0].id`
/// (a module output, another resource's value) resolves.
fn subnet_ids(vnet: &mut Map<String, Value>, vnet_name: &str) {
    let subnets = vnet
        .get_mut("properties")
        .and_then(|p| p.get_mut("subnets"))
        .and_then(Value::as_array_mut);
    for s in subnets.into_iter().flatten() {
        let name = s.get("name").and_then(Value::as_str).map(str::to_string);
        if let (Some(n), Value::Object(m)) = (name, s) {
            m.entry("id")
                .or_insert_with(|| json!(super::azure::synthetic_subnet_id(None, vnet_name, &n)));
        }
    }
}

fn strip_if(e: &Expr) -> &Expr {
    match e {
        Expr::If(_, b) => b,
        other => other,
    }
}

fn body_parent(e: &Expr) -> Option<Expr> {
    match strip_if(e) {
        Expr::Obj(items) => items
            .iter()
            .find(|(k, _)| k == "parent")
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

/// Parameter values from a `.bicepparam` file (`param name = value`).
pub fn bicepparam_values(f: &BicepFile) -> HashMap<String, Value> {
    let mut env = Env {
        file: f,
        all: &[],
        params: HashMap::new(),
        vars: HashMap::new(),
        resources: HashMap::new(),
        locals: Vec::new(),
        depth: 0,
    };
    let mut out = HashMap::new();
    for d in &f.decls {
        if let (DeclKind::Param, Some(e)) = (&d.kind, &d.value) {
            if let Ok(v) = env.eval(e) {
                out.insert(d.name.clone(), v);
            }
        }
    }
    out
}

/// The ARM template the Bicep files describe: every file not called as a module by another is
/// a root; `params` (from parameters files) apply to the roots.
pub fn template(files: &[BicepFile], params: &HashMap<String, Value>) -> Value {
    let called: Vec<String> = files
        .iter()
        .flat_map(|f| f.decls.iter())
        .filter_map(|d| match &d.kind {
            DeclKind::Module { path } => path.rsplit('/').next().map(str::to_string),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for f in files {
        let base = f.file.rsplit('/').next().unwrap_or(&f.file).to_string();
        if called.contains(&base) {
            continue;
        }
        resources(f, files, params.clone(), &mut out, 0);
    }
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": out,
    })
}
