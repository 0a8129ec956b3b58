//! HCL (Terraform) files through the `hcl-edit` parser (the full HCL native syntax: operators,
//! conditionals, `for` expressions, splats, templates, heredocs), kept as a small tree of
//! attributes and blocks that carry their line numbers. Expressions are `hcl-rs` expressions,
//! evaluated by `super::terraform`. The nesting limit of `super::limits` is checked before the
//! parser runs.

use hcl_edit::structure::{BlockLabel, Structure};
use hcl_edit::Span;

use super::InputError;

/// An HCL expression as `hcl-rs` models it.
pub type Expr = hcl::Expression;

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attr {
        name: String,
        expr: Expr,
        line: usize,
    },
    Block {
        ty: String,
        labels: Vec<String>,
        body: Vec<Item>,
        line: usize,
    },
}

/// Byte offset → 1-based line, by binary search over the line starts.
struct Lines(Vec<usize>);

impl Lines {
    fn new(src: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }
    fn line(&self, offset: Option<std::ops::Range<usize>>) -> usize {
        let o = offset.map(|r| r.start).unwrap_or(0);
        match self.0.binary_search(&o) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

fn convert(body: &hcl_edit::structure::Body, lines: &Lines) -> Vec<Item> {
    body.iter()
        .map(|s| match s {
            Structure::Attribute(a) => Item::Attr {
                name: a.key.as_str().to_string(),
                expr: Expr::from(a.value.clone()),
                line: lines.line(a.span()),
            },
            Structure::Block(b) => Item::Block {
                ty: b.ident.as_str().to_string(),
                labels: b
                    .labels
                    .iter()
                    .map(|l| match l {
                        BlockLabel::Ident(i) => i.as_str().to_string(),
                        BlockLabel::String(s) => s.as_str().to_string(),
                    })
                    .collect(),
                body: convert(&b.body, lines),
                line: lines.line(b.span()),
            },
        })
        .collect()
}

/// Parse a whole file into its top-level items.
pub fn parse(file: &str, src: &str) -> Result<Vec<Item>, InputError> {
    super::limits::check_nesting_hcl(file, src, false)?;
    let body = hcl_edit::parser::parse_body(src).map_err(|e| InputError::Syntax {
        file: file.into(),
        line: e.location().line(),
        column: e.location().column(),
        message: format!("invalid HCL: {}", e.message()),
    })?;
    Ok(convert(&body, &Lines::new(src)))
}

/// An expression as HCL text (for messages), shortened to `max` characters.
pub fn text(e: &Expr, max: usize) -> String {
    let s = hcl::format::to_string(e).unwrap_or_else(|_| format!("{e:?}"));
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_full_expressions_with_lines() {
        let src = "variable \"x\" {\n  validation {\n    condition = !contains([\"a\"], var.x) && length(var.x) > 0\n  }\n}\n\nlocals {\n  l = [for s in var.l : upper(s) if s != \"\"]\n  c = var.on ? \"a\" : \"b\"\n  sp = azurerm_subnet.s[*].id\n  t = \"${var.a}-%{if var.b}x%{endif}\"\n}\n";
        let items = parse("f.tf", src).unwrap();
        let Item::Block { body, line, .. } = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(*line, 7);
        let lines: Vec<usize> = body
            .iter()
            .map(|i| match i {
                Item::Attr { line, .. } => *line,
                Item::Block { line, .. } => *line,
            })
            .collect();
        assert_eq!(lines, vec![8, 9, 10, 11]);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("bad.tf", "resource \"a\" \"b\" {\n  x = [1, \n}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.tf:3:"), "{e}");
    }
}
