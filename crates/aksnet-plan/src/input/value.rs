//! Case-insensitive, typed access to parsed JSON/YAML with the key path kept for errors
//! (`dnsServiceIp` and `dnsServiceIP` both occur, planner.md §7).

use serde_json::Value;

use super::InputError;

/// Marks a string an ARM/Terraform expression evaluator could not resolve; reading it as a
/// field turns into an error naming the key.
pub const UNRESOLVED: &str = "\u{0}unresolved:";

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
                    Err(self.err(&k, format!("cannot resolve expression '{expr}'")))
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
                    return Err(self.err(&k, format!("cannot resolve expression '{expr}'")));
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
                    return Err(self.err(&k, format!("cannot resolve expression '{expr}'")));
                }
                Ok(s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect())
            }
            Some((k, Value::Array(a))) => a
                .iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Value::String(s) if s.starts_with(UNRESOLVED) => Err(self.err(
                        &format!("{k}[{i}]"),
                        format!("cannot resolve expression '{}'", &s[UNRESOLVED.len()..]),
                    )),
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        &format!("{k}[{i}]"),
                        format!("expected a string, got {}", short(other)),
                    )),
                })
                .collect(),
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
            for k in m.keys() {
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
