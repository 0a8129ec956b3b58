//! Lines for JSON and YAML inputs (issue 12: findings carry file:line wherever the input has
//! lines). serde_json and serde_norway give a `Value` without positions, so a small pass over
//! the text records the line of every object (by its path) and of every string value; the
//! objects of the parsed document are then annotated with their "file:line" under
//! [`LOCATION_KEY`], which the readers copy into the model as they already do for Bicep and
//! az scripts.

use std::collections::HashMap;

use serde_json::Value;

use super::value::LOCATION_KEY;

/// Where things are in one text: object paths (JSON pointers, RFC 6901) and string values.
#[derive(Debug, Default)]
pub struct Lines {
    /// Pointer of an object → the line of its key (members) or of its `{` (elements, root).
    pub objects: HashMap<String, usize>,
    /// A string value → the first line it occurs on (finds an unresolved expression).
    pub strings: HashMap<String, usize>,
}

/// The line of an unresolved expression as a reader recorded it ("EXPR" or "EXPR (why)"):
/// the longest prefix that is a string value of the text.
pub fn line_of_expression(strings: &HashMap<String, usize>, expr: &str) -> Option<usize> {
    let mut e = expr;
    loop {
        if let Some(l) = strings.get(e) {
            return Some(*l);
        }
        e = e.rsplit_once(" (")?.0;
    }
}

/// Lines of a JSON (comments allowed) or YAML text, as `super::parse_document` reads it.
pub fn lines_of(text: &str) -> Lines {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') || t.starts_with("//") || t.starts_with("/*") {
        json_lines(&super::value::strip_json_comments(text))
    } else {
        yaml_lines(text)
    }
}

fn escape(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

enum Frame {
    Obj { key: Option<String>, want_key: bool },
    Arr { index: usize },
}

/// The pointer of the value that starts now inside `stack`.
fn here(path: &[String], stack: &[Frame]) -> String {
    let mut p = path.join("");
    match stack.last() {
        Some(Frame::Obj { key: Some(k), .. }) => p.push_str(&format!("/{}", escape(k))),
        Some(Frame::Arr { index }) => p.push_str(&format!("/{index}")),
        _ => {}
    }
    p
}

/// Lines of a JSON text (comments already blanked out, newlines kept). A text serde_json
/// rejects never gets here, so the scanner can be lenient.
pub fn json_lines(text: &str) -> Lines {
    let mut out = Lines::default();
    let mut stack: Vec<Frame> = Vec::new();
    // path[i]: the segment ("/key" or "/3") under which stack[i] sits.
    let mut path: Vec<String> = Vec::new();
    let mut key_line = 1;
    let mut line = 1;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let raw = text.get(start..=i.min(bytes.len() - 1)).unwrap_or("\"\"");
                let s: String = serde_json::from_str(raw).unwrap_or_default();
                match stack.last_mut() {
                    Some(Frame::Obj { key, want_key }) if *want_key => {
                        *key = Some(s);
                        *want_key = false;
                        key_line = line;
                    }
                    _ => {
                        out.strings.entry(s).or_insert(line);
                    }
                }
            }
            c @ (b'{' | b'[') => {
                let at = match stack.last() {
                    Some(Frame::Obj { .. }) => key_line,
                    _ => line,
                };
                let p = here(&path, &stack);
                let seg = p[path.join("").len()..].to_string();
                if c == b'{' {
                    out.objects.insert(p, at);
                    stack.push(Frame::Obj {
                        key: None,
                        want_key: true,
                    });
                } else {
                    stack.push(Frame::Arr { index: 0 });
                }
                path.push(seg);
            }
            b'}' | b']' => {
                stack.pop();
                path.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Obj { want_key, .. }) => *want_key = true,
                Some(Frame::Arr { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    out
}

/// One level of a YAML block structure.
struct Level {
    indent: usize,
    seq: bool,
    /// Next element index (sequences) or the last key seen (mappings).
    next: usize,
    key: Option<String>,
    path: String,
}

/// The key of a `key: value` / `key:` line, if it is one (plain or quoted keys).
fn yaml_key(s: &str) -> Option<String> {
    let (k, rest) = if let Some(q) = s.strip_prefix('"').or_else(|| s.strip_prefix('\'')) {
        let quote = &s[..1];
        let end = q.find(quote)?;
        (&q[..end], &q[end + 1..])
    } else {
        let end = s.find(": ").or_else(|| s.strip_suffix(':').map(str::len))?;
        (&s[..end], &s[end..])
    };
    let rest = rest.trim_start();
    (rest.starts_with(':') && !k.is_empty() && !k.starts_with('#')).then(|| k.to_string())
}

/// Lines of a YAML text in block style (what `az ... -o yaml` and spec files are); flow
/// collections (`{...}`, `[...]`) count as one value on their line, and block scalars
/// (`|`, `>`) are skipped.
pub fn yaml_lines(text: &str) -> Lines {
    let mut out = Lines::default();
    out.objects.insert(String::new(), 1);
    let mut levels: Vec<Level> = Vec::new();
    let mut block_scalar: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let content = raw.trim_start();
        let indent = raw.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(b) = block_scalar {
            if indent > b {
                continue;
            }
            block_scalar = None;
        }
        if content == "---" || content == "..." {
            levels.clear();
            continue;
        }
        yaml_line(
            &mut levels,
            &mut out,
            indent,
            content,
            line,
            &mut block_scalar,
        );
    }
    out
}

/// The path under which a new level at `indent` (deeper than the current top) sits.
fn child_path(levels: &[Level]) -> String {
    match levels.last() {
        Some(l) if l.seq => format!("{}/{}", l.path, l.next.saturating_sub(1)),
        Some(l) => match &l.key {
            Some(k) => format!("{}/{}", l.path, escape(k)),
            None => l.path.clone(),
        },
        None => String::new(),
    }
}

fn yaml_line(
    levels: &mut Vec<Level>,
    out: &mut Lines,
    mut indent: usize,
    mut content: &str,
    line: usize,
    block_scalar: &mut Option<usize>,
) {
    while levels.last().is_some_and(|l| l.indent > indent) {
        levels.pop();
    }
    if content == "-" || content.starts_with("- ") {
        // A sequence at this indent: continue it, or open it (also `key:` + `- x` at the
        // key's own indent, the Kubernetes style).
        let continues = levels.last().is_some_and(|l| l.indent == indent && l.seq);
        if !continues {
            let path = child_path(levels);
            levels.push(Level {
                indent,
                seq: true,
                next: 0,
                key: None,
                path,
            });
        }
        let Some(top) = levels.last_mut() else { return };
        let elem = format!("{}/{}", top.path, top.next);
        top.next += 1;
        out.objects.insert(elem, line);
        let after = content[1..].trim_start();
        indent += content.len() - after.len();
        content = after;
        if content.is_empty() {
            return;
        }
    }
    let Some(key) = yaml_key(content) else { return };
    let same = levels.last().is_some_and(|l| l.indent == indent && !l.seq);
    if !same {
        let path = child_path(levels);
        levels.push(Level {
            indent,
            seq: false,
            next: 0,
            key: None,
            path,
        });
    }
    let Some(top) = levels.last_mut() else { return };
    out.objects
        .insert(format!("{}/{}", top.path, escape(&key)), line);
    let value = content.split_once(':').map_or("", |(_, v)| v.trim());
    if value.starts_with('|') || value.starts_with('>') {
        *block_scalar = Some(indent);
    } else if let Some(s) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        out.strings.entry(s.to_string()).or_insert(line);
    } else if !value.is_empty() {
        out.strings.entry(value.to_string()).or_insert(line);
    }
    top.key = Some(key);
}

/// Put "file:line" under [`LOCATION_KEY`] into every object of `v` (at `pointer`) whose line
/// is known, except below the keys `skip` names (sections an evaluator computes with, where
/// an extra key would change `length()` or `empty()`).
pub fn annotate(v: &mut Value, pointer: &str, lines: &Lines, file: &str, skip: &[&str]) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if skip.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                    continue;
                }
                annotate(x, &format!("{pointer}/{}", escape(k)), lines, file, skip);
            }
            if let Some(l) = lines.objects.get(pointer) {
                m.insert(LOCATION_KEY.into(), Value::String(format!("{file}:{l}")));
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                annotate(x, &format!("{pointer}/{i}"), lines, file, skip);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_and_strings_have_their_lines() {
        let t = "{\n  \"properties\": {\n    \"agentPoolProfiles\": [\n      {\n        \"name\": \"a\"\n      },\n      { \"name\": \"b\",\n        \"x\": \"[f('\\\"q')]\" }\n    ]\n  }\n}\n";
        let l = json_lines(t);
        assert_eq!(l.objects[""], 1);
        assert_eq!(l.objects["/properties"], 2);
        assert_eq!(l.objects["/properties/agentPoolProfiles/0"], 4);
        assert_eq!(l.objects["/properties/agentPoolProfiles/1"], 7);
        assert_eq!(l.strings["b"], 7);
        assert_eq!(l.strings["[f('\"q')]"], 8);
        assert_eq!(
            line_of_expression(&l.strings, "[f('\"q')] (unknown function f)"),
            Some(8)
        );
    }

    #[test]
    fn yaml_block_structure_has_its_lines() {
        let t = "apiVersion: aksnet/v1\ncluster:\n  pools:\n  - name: sys\n    count: 3\n  -\n    name: user\nvnet:\n  note: |\n    a: b\n  subnets:\n    - name: nodes\n      prefix: \"10.0.0.0/24\"\n";
        let l = yaml_lines(t);
        assert_eq!(l.objects["/cluster"], 2);
        assert_eq!(l.objects["/cluster/pools/0"], 4);
        assert_eq!(l.objects["/cluster/pools/1"], 6);
        assert_eq!(l.objects["/vnet"], 8);
        assert!(!l.objects.contains_key("/vnet/note/a"));
        assert_eq!(l.objects["/vnet/subnets/0"], 12);
        assert_eq!(l.strings["10.0.0.0/24"], 13);
    }

    proptest::proptest! {
        /// Any text (the JSON scanner only ever sees text serde_json accepted, but a scanner
        /// must not panic on anything).
        #[test]
        fn scanners_never_panic(t in "\\PC*") {
            let _ = json_lines(&t);
            let _ = yaml_lines(&t);
            let _ = lines_of(&t);
        }
    }

    #[test]
    fn annotate_skips_evaluated_sections() {
        let t = "{\n \"variables\": {\"o\": {}},\n \"resources\": [\n  {\"type\": \"x\"}\n ]\n}";
        let mut v: Value = serde_json::from_str(t).unwrap();
        annotate(&mut v, "", &json_lines(t), "t.json", &["variables"]);
        assert_eq!(v["resources"][0][LOCATION_KEY], "t.json:4");
        assert!(v["variables"]["o"].as_object().unwrap().is_empty());
    }
}
