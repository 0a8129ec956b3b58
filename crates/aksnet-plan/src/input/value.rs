//! Case-insensitive, typed access to parsed JSON/YAML with the key path kept for errors
//! (`dnsServiceIp` and `dnsServiceIP` both occur, docs/plan.md).

use serde_json::Value;

use super::InputError;

/// Marks a string an ARM/Terraform expression evaluator could not resolve; reading it as a
/// field turns into an error naming the key.
pub const UNRESOLVED: &str = "\u{0}unresolved:";

/// Key under which an object records where it was written ("file:line"): put there by the
/// span pass over JSON/YAML text (`super::spans`), by the Bicep translation and by the az
/// script reader; never a key of a real input (it starts with a control character).
pub const LOCATION_KEY: &str = "\u{1}location";

thread_local! {
    /// Values a reader needed but no input resolved, in reading order (issue 12: unknown is
    /// not fatal). A reader sees such a value as absent; `super::load_texts` turns the list
    /// into `PlanInput::unresolved`, and the plan into findings.
    static SEEN: std::cell::RefCell<Vec<crate::model::Unresolved>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// How many unresolved values are recorded on this thread (see [`forget_unresolved_after`]).
pub fn unresolved_count() -> usize {
    SEEN.with(|s| s.borrow().len())
}

/// Forget what was recorded after `n`: a first pass whose reads are read again (ARM nested
/// deployments that refer to each other) must not report what the second pass resolves.
pub fn forget_unresolved_after(n: usize) {
    SEEN.with(|s| s.borrow_mut().truncate(n));
}

/// Take (and clear) the unresolved values recorded on this thread.
pub fn take_unresolved() -> Vec<crate::model::Unresolved> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

#[derive(Clone)]
pub struct Obj<'a> {
    pub v: &'a Value,
    pub path: String,
    pub file: &'a str,
}

pub fn get_ci<'a>(v: &'a Value, key: &str) -> Option<(&'a String, &'a Value)> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
}

pub fn has(v: &Value, key: &str) -> bool {
    get_ci(v, key).is_some_and(|(_, x)| !x.is_null())
}

impl<'a> Obj<'a> {
    pub fn new(v: &'a Value, path: impl Into<String>, file: &'a str) -> Obj<'a> {
        Obj {
            v,
            path: path.into(),
            file,
        }
    }

    pub fn at(&self, v: &'a Value, path: String) -> Obj<'a> {
        Obj {
            v,
            path,
            file: self.file,
        }
    }

    fn join(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Record that `key` holds an expression that could not be resolved (`expr`: the
    /// marker's text, "EXPR at FILE:LINE (why)" or "EXPR (why)").
    fn unresolved(&self, key: &str, expr: &str) {
        // Names and resource groups only label the report and build IDs: not needed to plan.
        const NOT_NEEDED: &[&str] = &["name", "resource_group_name", "resourceGroup", "location"];
        if NOT_NEEDED.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return;
        }
        let (expression, location) = match expr.split_once(" at ") {
            Some((e, rest)) => {
                let loc = rest.split(" (").next().unwrap_or("").to_string();
                (e.to_string(), Some(loc))
            }
            None => (expr.to_string(), self.location()),
        };
        SEEN.with(|s| {
            s.borrow_mut().push(crate::model::Unresolved {
                file: self.file.to_string(),
                location,
                field: self.join(key),
                expression,
            })
        });
    }

    /// "file:line" of this object, where the input has lines.
    pub fn location(&self) -> Option<String> {
        self.v
            .get(LOCATION_KEY)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn err(&self, key: &str, message: impl Into<String>) -> InputError {
        InputError::Field {
            file: self.file.to_string(),
            key: self.join(key),
            message: message.into(),
        }
    }

    /// The value under `key` (any of the spellings), None when absent or null.
    pub fn raw(&self, keys: &[&str]) -> Option<(String, &'a Value)> {
        for k in keys {
            if let Some((name, v)) = get_ci(self.v, k) {
                if !v.is_null() {
                    return Some((name.clone(), v));
                }
            }
        }
        None
    }

    pub fn str(&self, keys: &[&str]) -> Result<Option<String>, InputError> {
        match self.raw(keys) {
            None => Ok(None),
            Some((k, Value::String(s))) => {
                if let Some(expr) = s.strip_prefix(UNRESOLVED) {
                    self.unresolved(&k, expr);
                    Ok(None)
                } else {
                    Ok(Some(s.clone()))
                }
            }
            Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
            Some((_, Value::Bool(b))) => Ok(Some(b.to_string())),
            Some((k, other)) => {
                Err(self.err(&k, format!("expected a string, got {}", short(other))))
            }
        }
    }

    pub fn u64(&self, keys: &[&str]) -> Result<Option<u64>, InputError> {
        match self.raw(keys) {
            None => Ok(None),
            Some((k, Value::Number(n))) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.err(&k, format!("expected a whole number ≥ 0, got {n}"))),
            Some((k, Value::String(s))) => {
                if let Some(expr) = s.strip_prefix(UNRESOLVED) {
                    self.unresolved(&k, expr);
                    return Ok(None);
                }
                s.trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| self.err(&k, format!("expected a whole number ≥ 0, got \"{s}\"")))
            }
            Some((k, other)) => {
                Err(self.err(&k, format!("expected a whole number, got {}", short(other))))
            }
        }
    }

    pub fn bool(&self, keys: &[&str]) -> Result<Option<bool>, InputError> {
        match self.raw(keys) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((k, Value::String(s))) if s.starts_with(UNRESOLVED) => {
                self.unresolved(&k, &s[UNRESOLVED.len()..]);
                Ok(None)
            }
            Some((k, Value::String(s))) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.err(&k, format!("expected true or false, got \"{s}\""))),
            },
            Some((k, other)) => {
                Err(self.err(&k, format!("expected true or false, got {}", short(other))))
            }
        }
    }

    /// A string or a list of strings.
    pub fn strs(&self, keys: &[&str]) -> Result<Vec<String>, InputError> {
        match self.raw(keys) {
            None => Ok(Vec::new()),
            Some((k, Value::String(s))) => {
                if let Some(expr) = s.strip_prefix(UNRESOLVED) {
                    self.unresolved(&k, expr);
                    return Ok(Vec::new());
                }
                Ok(s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect())
            }
            Some((k, Value::Array(a))) => {
                let mut out = Vec::new();
                for (i, x) in a.iter().enumerate() {
                    match x {
                        Value::String(s) if s.starts_with(UNRESOLVED) => {
                            self.unresolved(&format!("{k}[{i}]"), &s[UNRESOLVED.len()..]);
                        }
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            return Err(self.err(
                                &format!("{k}[{i}]"),
                                format!("expected a string, got {}", short(other)),
                            ))
                        }
                    }
                }
                Ok(out)
            }
            Some((k, other)) => Err(self.err(
                &k,
                format!("expected a list of strings, got {}", short(other)),
            )),
        }
    }

    /// A nested object; `Err` when present but not an object.
    pub fn obj(&self, keys: &[&str]) -> Result<Option<Obj<'a>>, InputError> {
        match self.raw(keys) {
            None => Ok(None),
            Some((k, Value::String(s))) if s.starts_with(UNRESOLVED) => {
                self.unresolved(&k, &s[UNRESOLVED.len()..]);
                Ok(None)
            }
            Some((k, v @ Value::Object(_))) => Ok(Some(Obj {
                v,
                path: self.join(&k),
                file: self.file,
            })),
            Some((k, other)) => {
                Err(self.err(&k, format!("expected an object, got {}", short(other))))
            }
        }
    }

    /// The elements of an array (objects expected), with their paths.
    pub fn list(&self, keys: &[&str]) -> Result<Vec<Obj<'a>>, InputError> {
        match self.raw(keys) {
            None => Ok(Vec::new()),
            Some((k, Value::String(s))) if s.starts_with(UNRESOLVED) => {
                self.unresolved(&k, &s[UNRESOLVED.len()..]);
                Ok(Vec::new())
            }
            Some((k, Value::Array(a))) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, x)| self.at(x, format!("{}[{i}]", self.join(&k))))
                .collect()),
            Some((k, v @ Value::Object(_))) => Ok(vec![self.at(v, self.join(&k))]),
            Some((k, other)) => Err(self.err(&k, format!("expected a list, got {}", short(other)))),
        }
    }

    /// Reject keys outside `allowed` (our own spec format only: a typo must not silently
    /// become a default).
    pub fn only(&self, allowed: &[&str]) -> Result<(), InputError> {
        if let Some(m) = self.v.as_object() {
            for k in m.keys().filter(|k| k.as_str() != LOCATION_KEY) {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)) {
                    return Err(self.err(
                        k,
                        format!("unknown key (expected one of: {})", allowed.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A function's argument `i` as an array (empty when absent or not an array).
pub fn arg_array(a: &[Value], i: usize) -> Vec<Value> {
    a.get(i)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Remove `//` and `/* */` comments outside strings, keeping newlines so serde_json's line
/// and column numbers still point into the original file (ARM templates carry comments).
pub fn strip_json_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut in_str = false;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_str = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                    } else {
                        out.push(' ');
                    }
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_outside_strings() {
        let s = "{ // c\n \"a\": \"x//y\", /* b\n */ \"b\": 1 }";
        let v: Value = serde_json::from_str(&strip_json_comments(s)).unwrap();
        assert_eq!(v["a"], "x//y");
        assert_eq!(v["b"], 1);
    }

    #[test]
    fn keys_match_case_insensitively() {
        let v: Value = serde_json::json!({"dnsServiceIp": "10.0.0.10", "count": "3"});
        let o = Obj::new(&v, "networkProfile", "f.json");
        assert_eq!(
            o.str(&["dnsServiceIP"]).unwrap().as_deref(),
            Some("10.0.0.10")
        );
        assert_eq!(o.u64(&["count"]).unwrap(), Some(3));
        let e = o.u64(&["dnsServiceIP"]).unwrap_err().to_string();
        assert!(e.contains("networkProfile.dnsServiceIp"), "{e}");
    }
}
