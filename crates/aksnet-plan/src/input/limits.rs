//! Limits on what `aksnet plan` reads (issue 10): a file is read only when it is a regular file
//! of at most [`MAX_FILE_BYTES`], and its nesting (brackets, blocks, template interpolations,
//! ARM expression calls) is checked on the raw text before any recursive parser sees it, so
//! hostile input is refused with an error instead of exhausting the stack or the memory.
//! docs/plan.md ("Input limits") documents both numbers.

use std::io::Read;
use std::path::Path;

use super::InputError;

/// Largest input file read: 16 MiB. Real cluster definitions are kilobytes; the largest
/// public ARM template for AKS we know (AKS-Construction's main.json) is under 1 MiB.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Deepest nesting accepted: brackets, blocks and interpolations together. Real Terraform,
/// Bicep and ARM files nest fewer than 20 levels.
pub const MAX_NESTING: usize = 64;

/// Read `p` as UTF-8 text: a regular file (after following symlinks) of at most
/// [`MAX_FILE_BYTES`]. The file is opened non-blocking so that a FIFO swapped in after the
/// check cannot hang the read; the opened file is checked again.
pub fn read_text(p: &Path) -> Result<String, InputError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = p.display().to_string();
    let read_err = |source: std::io::Error| InputError::Read {
        file: file.clone(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(read_err)?;
    check_meta(&file, &meta)?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
        .map_err(read_err)?;
    check_meta(&file, &f.metadata().map_err(read_err)?)?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(&file));
    }
    String::from_utf8(bytes).map_err(|e| InputError::Shape {
        file,
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

fn too_big(file: &str) -> InputError {
    InputError::Shape {
        file: file.into(),
        message: "larger than the input limit of 16 MiB per file".into(),
    }
}

fn check_meta(file: &str, m: &std::fs::Metadata) -> Result<(), InputError> {
    use std::os::unix::fs::FileTypeExt;
    let ft = m.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(InputError::Shape {
            file: file.into(),
            message: format!("not a regular file ({what}); give the cluster's definition files"),
        });
    }
    if m.len() > MAX_FILE_BYTES {
        return Err(too_big(file));
    }
    Ok(())
}

fn nesting_err(file: &str, line: usize, column: usize, what: &str) -> InputError {
    InputError::Syntax {
        file: file.into(),
        line,
        column,
        message: format!("{what} nesting deeper than the limit of {MAX_NESTING} levels"),
    }
}

/// Position tracker for the scanners.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Cursor<'a> {
        Cursor {
            b: src.as_bytes(),
            i: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }
    fn bump(&mut self) {
        if self.b.get(self.i) == Some(&b'\n') {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        self.i += 1;
    }
    fn skip_line(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.bump();
        }
    }
    fn skip_block_comment(&mut self) {
        self.bump();
        self.bump();
        while self.i < self.b.len() && !(self.b[self.i] == b'*' && self.peek(1) == Some(b'/')) {
            self.bump();
        }
        self.bump();
        self.bump();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Frame {
    /// `(`, `[` or `{` in code, or `${`/`%{` inside a template: closed by this byte.
    Code(u8),
    /// A quoted string: `${` inside it opens a template interpolation.
    Str,
    /// A heredoc; its end marker is `heredocs[index]`.
    Heredoc(usize),
}

/// Check the nesting of HCL (Terraform, `.tfvars`) and Bicep text: brackets and blocks,
/// quoted strings with their `${`/`%{` interpolations, heredocs and comments. Bicep's
/// `'...'` strings and `${` interpolations are covered by `single_quotes`.
pub fn check_nesting_hcl(file: &str, src: &str, single_quotes: bool) -> Result<(), InputError> {
    let mut c = Cursor::new(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut markers: Vec<String> = Vec::new();
    let quote = if single_quotes { b'\'' } else { b'"' };
    while let Some(ch) = c.peek(0) {
        match stack.last().copied() {
            Some(Frame::Str) | Some(Frame::Heredoc(_)) => {
                let in_str = stack.last() == Some(&Frame::Str);
                if in_str && ch == b'\\' {
                    c.bump();
                } else if in_str && ch == quote {
                    stack.pop();
                } else if (ch == b'$' || ch == b'%') && c.peek(1) == Some(b'{') {
                    stack.push(Frame::Code(b'}'));
                    c.bump();
                } else if ch == b'\n' {
                    if let Some(Frame::Heredoc(m)) = stack.last().copied() {
                        let rest = &src[c.i + 1..];
                        let next_line = rest.split('\n').next().unwrap_or("").trim();
                        if markers.get(m).is_some_and(|mk| mk == next_line) {
                            stack.pop();
                        }
                    }
                }
            }
            _ => match ch {
                b'#' if !single_quotes => c.skip_line(),
                b'/' if c.peek(1) == Some(b'/') => c.skip_line(),
                b'/' if c.peek(1) == Some(b'*') => {
                    c.skip_block_comment();
                    continue;
                }
                b'(' => stack.push(Frame::Code(b')')),
                b'[' => stack.push(Frame::Code(b']')),
                b'{' => stack.push(Frame::Code(b'}')),
                b')' | b']' | b'}' if stack.last() == Some(&Frame::Code(ch)) => {
                    stack.pop();
                }
                q if q == quote => stack.push(Frame::Str),
                b'<' if !single_quotes && c.peek(1) == Some(b'<') => {
                    if let Some(m) = heredoc_marker(&src[c.i + 2..]) {
                        markers.push(m);
                        stack.push(Frame::Heredoc(markers.len() - 1));
                        c.skip_line();
                        continue;
                    }
                }
                _ => {}
            },
        }
        if stack.len() > MAX_NESTING {
            return Err(nesting_err(
                file,
                c.line,
                c.col,
                "bracket, block or template",
            ));
        }
        c.bump();
    }
    Ok(())
}

/// `<<EOF` / `<<-EOF` followed by the end of the line: the marker.
fn heredoc_marker(after: &str) -> Option<String> {
    let s = after.strip_prefix('-').unwrap_or(after);
    let line = s.split('\n').next().unwrap_or("").trim_end_matches('\r');
    let ok = !line.is_empty() && line.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| line.to_string())
}

/// Check JSON text (comments allowed): structural nesting, and inside every string that is an
/// ARM expression (`"[...]"`), the nesting of its calls and indexes.
pub fn check_nesting_json(file: &str, src: &str) -> Result<(), InputError> {
    let mut c = Cursor::new(src);
    let mut depth = 0usize;
    while let Some(ch) = c.peek(0) {
        match ch {
            b'/' if c.peek(1) == Some(b'/') => c.skip_line(),
            b'/' if c.peek(1) == Some(b'*') => {
                c.skip_block_comment();
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                let (line, col) = (c.line, c.col);
                c.bump();
                let start = c.i;
                while let Some(d) = c.peek(0) {
                    if d == b'\\' {
                        c.bump();
                    } else if d == b'"' {
                        break;
                    }
                    c.bump();
                }
                let s = &src[start..c.i.min(src.len())];
                if expression_depth(s) > MAX_NESTING {
                    return Err(nesting_err(file, line, col, "ARM expression"));
                }
            }
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(nesting_err(file, c.line, c.col, "JSON/YAML bracket"));
        }
        c.bump();
    }
    Ok(())
}

/// Deepest `(`/`[` nesting of an ARM expression string (`[f(g(x))]`), outside its `'...'`
/// literals; 0 for a plain string.
pub fn expression_depth(s: &str) -> usize {
    let t = s.trim();
    if !t.starts_with('[') || t.starts_with("[[") {
        return 0;
    }
    let (mut depth, mut max, mut in_lit) = (0usize, 0usize, false);
    for b in t.bytes() {
        match b {
            b'\'' => in_lit = !in_lit,
            b'(' | b'[' if !in_lit => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' if !in_lit => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_nesting_counts_brackets_blocks_and_interpolations() {
        let ok = "resource \"a\" \"b\" {\n  x = [for s in var.l : \"${s}-${upper(s)}\"]\n  # ((((\n  y = <<EOT\n  ${a}\n  EOT\n}\n";
        assert!(check_nesting_hcl("f.tf", ok, false).is_ok());
        let deep = format!("x = {}1{}\n", "[".repeat(65), "]".repeat(65));
        let e = check_nesting_hcl("f.tf", &deep, false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.tf:1:") && e.contains("limit of 64"), "{e}");
        let interp = format!("x = \"{}\"\n", "${\"".repeat(40));
        assert!(check_nesting_hcl("f.tf", &interp, false).is_err());
        let strings_are_text = format!("x = \"{}\"\n", "[".repeat(200));
        assert!(check_nesting_hcl("f.tf", &strings_are_text, false).is_ok());
    }

    #[test]
    fn json_nesting_and_arm_expressions() {
        assert!(check_nesting_json("t.json", "{\"a\": [\"[concat('(', 'x')]\"]}").is_ok());
        let e = format!("{{\n \"a\": \"[{}1{}]\"}}", "f(".repeat(70), ")".repeat(70));
        let err = check_nesting_json("t.json", &e).unwrap_err().to_string();
        assert!(err.starts_with("t.json:2:"), "{err}");
        assert_eq!(expression_depth("[[not an expression"), 0);
    }
}
