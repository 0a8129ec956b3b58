//! A reader for the subset of HCL that Terraform AKS and VNet definitions use: blocks,
//! attributes, strings with `${}` interpolation, numbers, booleans, lists, maps, references,
//! function calls, comments and heredocs. Anything more complex (operators, `for`) is kept as
//! raw text and only becomes an error if the planner needs that value.

use super::InputError;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A quoted string or heredoc, raw (may hold `${...}`).
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    /// `var.x`, `azurerm_subnet.nodes.id`, `local.y[0]`: the traversal's parts.
    Ref(Vec<String>),
    Call(String, Vec<Expr>),
    /// An expression outside the subset, as written.
    Complex(String),
}

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

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Punct(char),
    /// Two-character operators (==, !=, &&, ||, <=, >=, =>) and lone operator characters.
    Op(String),
    Newline,
}

#[derive(Debug, Clone)]
struct Spanned {
    tok: Tok,
    line: usize,
    col: usize,
    start: usize,
    end: usize,
}

fn lex(file: &str, src: &str) -> Result<Vec<Spanned>, InputError> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let err = |line: usize, col: usize, m: &str| InputError::Syntax {
        file: file.into(),
        line,
        column: col,
        message: m.into(),
    };
    while i < cs.len() {
        let c = cs[i];
        let (sl, sc, si) = (line, col, i);
        let adv = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize, cs: &[char]| {
            for _ in 0..n {
                if cs.get(*i) == Some(&'\n') {
                    *line += 1;
                    *col = 1;
                } else {
                    *col += 1;
                }
                *i += 1;
            }
        };
        match c {
            '\n' => {
                out.push(Spanned {
                    tok: Tok::Newline,
                    line: sl,
                    col: sc,
                    start: si,
                    end: si + 1,
                });
                adv(&mut i, &mut line, &mut col, 1, &cs);
            }
            ' ' | '\t' | '\r' => adv(&mut i, &mut line, &mut col, 1, &cs),
            '#' => {
                while i < cs.len() && cs[i] != '\n' {
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
            }
            '/' if cs.get(i + 1) == Some(&'/') => {
                while i < cs.len() && cs[i] != '\n' {
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
            }
            '/' if cs.get(i + 1) == Some(&'*') => {
                adv(&mut i, &mut line, &mut col, 2, &cs);
                while i < cs.len() && !(cs[i] == '*' && cs.get(i + 1) == Some(&'/')) {
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                if i >= cs.len() {
                    return Err(err(sl, sc, "unterminated /* comment"));
                }
                adv(&mut i, &mut line, &mut col, 2, &cs);
            }
            '"' => {
                adv(&mut i, &mut line, &mut col, 1, &cs);
                let mut s = String::new();
                let mut depth = 0usize;
                loop {
                    let Some(&d) = cs.get(i) else {
                        return Err(err(sl, sc, "unterminated string"));
                    };
                    if depth == 0 && d == '"' {
                        adv(&mut i, &mut line, &mut col, 1, &cs);
                        break;
                    }
                    if d == '\n' && depth == 0 {
                        return Err(err(sl, sc, "unterminated string"));
                    }
                    if d == '\\' && depth == 0 {
                        let e = cs.get(i + 1).copied().unwrap_or('\\');
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        adv(&mut i, &mut line, &mut col, 2, &cs);
                        continue;
                    }
                    if d == '$' && cs.get(i + 1) == Some(&'{') {
                        depth += 1;
                        s.push_str("${");
                        adv(&mut i, &mut line, &mut col, 2, &cs);
                        continue;
                    }
                    if depth > 0 && d == '{' {
                        depth += 1;
                    }
                    if depth > 0 && d == '}' {
                        depth -= 1;
                    }
                    s.push(d);
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                out.push(Spanned {
                    tok: Tok::Str(s),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            '<' if cs.get(i + 1) == Some(&'<') => {
                adv(&mut i, &mut line, &mut col, 2, &cs);
                if cs.get(i) == Some(&'-') {
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                let mut marker = String::new();
                while i < cs.len() && cs[i] != '\n' {
                    marker.push(cs[i]);
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                let marker = marker.trim().to_string();
                adv(&mut i, &mut line, &mut col, 1, &cs);
                let mut body = String::new();
                loop {
                    if i >= cs.len() {
                        return Err(err(sl, sc, &format!("unterminated heredoc <<{marker}")));
                    }
                    let mut l = String::new();
                    while i < cs.len() && cs[i] != '\n' {
                        l.push(cs[i]);
                        adv(&mut i, &mut line, &mut col, 1, &cs);
                    }
                    if l.trim() == marker {
                        break;
                    }
                    body.push_str(&l);
                    body.push('\n');
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                out.push(Spanned {
                    tok: Tok::Str(body),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            c if c.is_ascii_digit() => {
                let mut s = String::new();
                while i < cs.len()
                    && (cs[i].is_ascii_digit() || cs[i] == '.' || cs[i] == 'e' || cs[i] == 'E')
                {
                    s.push(cs[i]);
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                let n = s
                    .parse::<f64>()
                    .map_err(|_| err(sl, sc, &format!("bad number {s}")))?;
                out.push(Spanned {
                    tok: Tok::Num(n),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '-') {
                    s.push(cs[i]);
                    adv(&mut i, &mut line, &mut col, 1, &cs);
                }
                out.push(Spanned {
                    tok: Tok::Ident(s),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            '{' | '}' | '[' | ']' | '(' | ')' | ',' | '.' | ':' => {
                adv(&mut i, &mut line, &mut col, 1, &cs);
                out.push(Spanned {
                    tok: Tok::Punct(c),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            '=' if cs.get(i + 1) != Some(&'=') && cs.get(i + 1) != Some(&'>') => {
                adv(&mut i, &mut line, &mut col, 1, &cs);
                out.push(Spanned {
                    tok: Tok::Punct('='),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            '=' | '!' | '&' | '|' | '<' | '>' | '?' | '+' | '-' | '*' | '/' | '%' => {
                let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
                let n = if ["==", "!=", "&&", "||", "<=", ">=", "=>"].contains(&two.as_str()) {
                    2
                } else {
                    1
                };
                let s: String = cs[i..i + n].iter().collect();
                adv(&mut i, &mut line, &mut col, n, &cs);
                out.push(Spanned {
                    tok: Tok::Op(s),
                    line: sl,
                    col: sc,
                    start: si,
                    end: i,
                });
            }
            other => return Err(err(sl, sc, &format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct P<'a> {
    file: &'a str,
    src: Vec<char>,
    toks: Vec<Spanned>,
    pos: usize,
    /// Bracket depth inside an expression: newlines there are insignificant.
    nest: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        let mut j = self.pos;
        while self.nest > 0 && matches!(self.toks.get(j).map(|t| &t.tok), Some(Tok::Newline)) {
            j += 1;
        }
        self.toks.get(j).map(|t| &t.tok)
    }
    fn skip_nl_if_nested(&mut self) {
        while self.nest > 0 && matches!(self.toks.get(self.pos).map(|t| &t.tok), Some(Tok::Newline))
        {
            self.pos += 1;
        }
    }
    fn next(&mut self) -> Option<Spanned> {
        self.skip_nl_if_nested();
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn err_at(&self, t: Option<&Spanned>, m: String) -> InputError {
        let (line, column) = t
            .map(|t| (t.line, t.col))
            .or_else(|| self.toks.last().map(|t| (t.line, t.col)))
            .unwrap_or((1, 1));
        InputError::Syntax {
            file: self.file.into(),
            line,
            column,
            message: m,
        }
    }

    /// Expressions separated by commas up to `close` (the opening token is
    /// already consumed): list items and call arguments. Newlines inside are
    /// insignificant (`nest`).
    fn comma_list(&mut self, close: char, what: &str) -> Result<Vec<Expr>, InputError> {
        self.nest += 1;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(&Tok::Punct(close)) {
                self.next();
                break;
            }
            items.push(self.expr()?);
            match self.next() {
                Some(Spanned {
                    tok: Tok::Punct(','),
                    ..
                }) => continue,
                Some(Spanned {
                    tok: Tok::Punct(c), ..
                }) if c == close => break,
                other => {
                    return Err(self.err_at(
                        other.as_ref(),
                        format!("expected ',' or '{close}' in {what}"),
                    ))
                }
            }
        }
        self.nest -= 1;
        Ok(items)
    }
    fn skip_newlines(&mut self) {
        while matches!(self.toks.get(self.pos).map(|t| &t.tok), Some(Tok::Newline)) {
            self.pos += 1;
        }
    }

    fn body(&mut self, closing: bool) -> Result<Vec<Item>, InputError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            let Some(t) = self.toks.get(self.pos).cloned() else {
                if closing {
                    return Err(self.err_at(None, "missing '}' at end of file".into()));
                }
                return Ok(items);
            };
            match &t.tok {
                Tok::Punct('}') if closing => {
                    self.pos += 1;
                    return Ok(items);
                }
                Tok::Ident(name) => {
                    self.pos += 1;
                    match self.toks.get(self.pos).map(|x| x.tok.clone()) {
                        Some(Tok::Punct('=')) => {
                            self.pos += 1;
                            let expr = self.expr()?;
                            items.push(Item::Attr {
                                name: name.clone(),
                                expr,
                                line: t.line,
                            });
                        }
                        _ => {
                            let mut labels = Vec::new();
                            loop {
                                let l = self.toks.get(self.pos).cloned();
                                match l.as_ref().map(|x| &x.tok) {
                                    Some(Tok::Str(s)) | Some(Tok::Ident(s)) => {
                                        labels.push(s.clone());
                                        self.pos += 1;
                                    }
                                    Some(Tok::Punct('{')) => {
                                        self.pos += 1;
                                        break;
                                    }
                                    _ => {
                                        return Err(self.err_at(
                                            l.as_ref(),
                                            format!("expected '=' or a block after '{name}'"),
                                        ))
                                    }
                                }
                            }
                            let body = self.body(true)?;
                            items.push(Item::Block {
                                ty: name.clone(),
                                labels,
                                body,
                                line: t.line,
                            });
                        }
                    }
                }
                _ => return Err(self.err_at(Some(&t), "expected an attribute or a block".into())),
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, InputError> {
        let start_pos = self.pos;
        let e = self.primary()?;
        // Operators and conditionals are outside the subset: keep the raw text.
        if matches!(self.peek(), Some(Tok::Op(_))) {
            let mut depth = 0i32;
            while let Some(t) = self.toks.get(self.pos) {
                match &t.tok {
                    Tok::Punct('(') | Tok::Punct('[') | Tok::Punct('{') => depth += 1,
                    Tok::Punct(')') | Tok::Punct(']') | Tok::Punct('}') if depth == 0 => break,
                    Tok::Punct(')') | Tok::Punct(']') | Tok::Punct('}') => depth -= 1,
                    Tok::Punct(',') if depth == 0 => break,
                    Tok::Newline if depth == 0 && self.nest == 0 => break,
                    _ => {}
                }
                self.pos += 1;
            }
            let s = self.toks.get(start_pos).map(|t| t.start).unwrap_or(0);
            let end = self
                .toks
                .get(self.pos.saturating_sub(1))
                .map(|t| t.end)
                .unwrap_or(s);
            return Ok(Expr::Complex(
                self.src[s..end.max(s)]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string(),
            ));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, InputError> {
        let t = self.next();
        let Some(t) = t else {
            return Err(self.err_at(None, "expected a value at end of file".into()));
        };
        match &t.tok {
            Tok::Str(s) => Ok(Expr::Str(s.clone())),
            Tok::Num(n) => Ok(Expr::Num(*n)),
            Tok::Op(o) if o == "-" => match self.next().map(|x| x.tok) {
                Some(Tok::Num(n)) => Ok(Expr::Num(-n)),
                _ => Err(self.err_at(Some(&t), "expected a number after '-'".into())),
            },
            Tok::Punct('[') => Ok(Expr::List(self.comma_list(']', "a list")?)),
            Tok::Punct('{') => {
                self.nest += 1;
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        Some(Spanned {
                            tok: Tok::Punct('}'),
                            ..
                        }) => break,
                        Some(Spanned {
                            tok: Tok::Punct(','),
                            ..
                        }) => continue,
                        Some(Spanned {
                            tok: Tok::Ident(k), ..
                        })
                        | Some(Spanned {
                            tok: Tok::Str(k), ..
                        }) => {
                            match self.next() {
                                Some(Spanned {
                                    tok: Tok::Punct('='),
                                    ..
                                })
                                | Some(Spanned {
                                    tok: Tok::Punct(':'),
                                    ..
                                }) => {}
                                other => {
                                    return Err(self.err_at(
                                        other.as_ref(),
                                        format!("expected '=' after map key '{k}'"),
                                    ))
                                }
                            }
                            let v = self.expr()?;
                            items.push((k, v));
                        }
                        other => {
                            return Err(
                                self.err_at(other.as_ref(), "expected a map key or '}'".into())
                            )
                        }
                    }
                }
                self.nest -= 1;
                Ok(Expr::Map(items))
            }
            Tok::Punct('(') => {
                self.nest += 1;
                let e = self.expr()?;
                match self.next() {
                    Some(Spanned {
                        tok: Tok::Punct(')'),
                        ..
                    }) => {}
                    other => return Err(self.err_at(other.as_ref(), "expected ')'".into())),
                }
                self.nest -= 1;
                Ok(e)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "null" => Ok(Expr::Null),
                _ if self.toks.get(self.pos).map(|x| &x.tok) == Some(&Tok::Punct('(')) => {
                    self.pos += 1;
                    let args = self.comma_list(')', &format!("{name}(...)"))?;
                    Ok(Expr::Call(name.clone(), args))
                }
                _ => {
                    let mut parts = vec![name.clone()];
                    loop {
                        match self.toks.get(self.pos).map(|x| x.tok.clone()) {
                            Some(Tok::Punct('.')) => {
                                self.pos += 1;
                                match self.toks.get(self.pos).map(|x| x.tok.clone()) {
                                    Some(Tok::Ident(p)) => {
                                        parts.push(p);
                                        self.pos += 1;
                                    }
                                    Some(Tok::Num(n)) => {
                                        parts.push(format!("[{n}]"));
                                        self.pos += 1;
                                    }
                                    Some(Tok::Op(o)) if o == "*" => {
                                        parts.push("[*]".into());
                                        self.pos += 1;
                                    }
                                    _ => {
                                        return Err(self.err_at(
                                            self.toks.get(self.pos),
                                            "expected a name after '.'".into(),
                                        ))
                                    }
                                }
                            }
                            Some(Tok::Punct('[')) => {
                                self.pos += 1;
                                self.nest += 1;
                                let idx = match self.next().map(|x| x.tok) {
                                    Some(Tok::Num(n)) => format!("[{n}]"),
                                    Some(Tok::Str(s)) => format!("[\"{s}\"]"),
                                    Some(Tok::Op(o)) if o == "*" => "[*]".into(),
                                    _ => "[?]".into(),
                                };
                                match self.next() {
                                    Some(Spanned {
                                        tok: Tok::Punct(']'),
                                        ..
                                    }) => {}
                                    other => {
                                        return Err(
                                            self.err_at(other.as_ref(), "expected ']'".into())
                                        )
                                    }
                                }
                                self.nest -= 1;
                                parts.push(idx);
                            }
                            _ => break,
                        }
                    }
                    Ok(Expr::Ref(parts))
                }
            },
            _ => Err(self.err_at(Some(&t), format!("unexpected {:?}", t.tok))),
        }
    }
}

/// Parse a whole file into its top-level items.
pub fn parse(file: &str, src: &str) -> Result<Vec<Item>, InputError> {
    let toks = lex(file, src)?;
    let mut p = P {
        file,
        src: src.chars().collect(),
        toks,
        pos: 0,
        nest: 0,
    };
    p.body(false)
}

/// Parse one expression (the inside of a `${...}` interpolation).
pub fn parse_expr(file: &str, src: &str) -> Result<Expr, InputError> {
    let toks = lex(file, src)?;
    let mut p = P {
        file,
        src: src.chars().collect(),
        toks,
        pos: 0,
        nest: 1,
    };
    let e = p.expr()?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terraform_subset() {
        let src = r#"
# comment
variable "pods" {
  default = 30 // max pods
}
resource "azurerm_subnet" "nodes" {
  name                 = "nodes"
  address_prefixes     = ["10.1.0.0/24"]
  virtual_network_name = azurerm_virtual_network.vnet.name
  tags = { env = "dev", "a" = 1 }
  x = var.a == "b" ? 1 : 2
  y = cidrsubnet(var.cidr, 8, 1)
}
"#;
        let items = parse("main.tf", src).unwrap();
        assert_eq!(items.len(), 2);
        let Item::Block {
            ty, labels, body, ..
        } = &items[1]
        else {
            panic!()
        };
        assert_eq!(ty, "resource");
        assert_eq!(
            labels,
            &vec!["azurerm_subnet".to_string(), "nodes".to_string()]
        );
        assert!(body.iter().any(|i| matches!(i, Item::Attr { name, expr: Expr::Ref(p), .. } if name == "virtual_network_name" && p.len() == 3)));
        assert!(body
            .iter()
            .any(|i| matches!(i, Item::Attr { name, expr: Expr::Complex(_), .. } if name == "x")));
        assert!(body.iter().any(|i| matches!(i, Item::Attr { name, expr: Expr::Call(f, a), .. } if name == "y" && f == "cidrsubnet" && a.len() == 3)));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("main.tf", "resource \"a\" \"b\" {\n  x = \n}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("main.tf:"), "{e}");
        let e = parse("main.tf", "resource \"a\" {\n  x = \"abc\n}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("main.tf:2:"), "{e}");
    }
}
