//! Bicep: a small recursive-descent parser (the nesting limit of `super::limits` is checked on
//! the raw text first, and the parser counts its own depth) for what AKS and VNet definitions
//! use: `param` (defaults), `var`, `resource` (with `existing`, `if (...)`, `[for ...]`, nested
//! child resources, `parent:`), `module` (files among the inputs), objects, arrays, strings
//! with `${}` interpolation, `'''` strings, member access, indexes, calls, `?:`, `??`, unary
//! and binary operators, `output` (what a module's caller reads). Other statements (`type`,
//! `func`, `import`, `metadata`, `targetScope`) are skipped. Evaluated by `super::bicepeval`. docs/plan.md, "Bicep".

use super::limits::MAX_NESTING;
use super::InputError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Num(f64),
    /// A quoted string's raw content (escapes kept, `${` kept).
    Str(String),
    /// A `'''` string: no escapes, no interpolation.
    Raw(String),
    P(&'static str),
    Nl,
}

#[derive(Debug, Clone)]
pub struct T {
    pub tok: Tok,
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

const PUNCTS: &[&str] = &[
    "::", "??", "==", "!=", "<=", ">=", "&&", "||", "=~", "!~", "?.", "{", "}", "[", "]", "(", ")",
    ",", ":", ".", "?", "!", "=", "@", "<", ">", "+", "-", "*", "/", "%",
];

fn lex(file: &str, src: &str) -> Result<Vec<T>, InputError> {
    let b = src.as_bytes();
    let (mut i, mut line) = (0usize, 1usize);
    let mut out = Vec::new();
    let err = |line: usize, m: &str| InputError::Syntax {
        file: file.into(),
        line,
        column: 1,
        message: format!("invalid Bicep: {m}"),
    };
    while i < b.len() {
        if let Some(next) = trivia(b, i, &mut line) {
            i = next;
            continue;
        }
        let c = b[i];
        let start = i;
        match c {
            b'\n' => {
                out.push(T {
                    tok: Tok::Nl,
                    line,
                    start,
                    end: i + 1,
                });
                line += 1;
                i += 1;
            }
            b'\'' if src[i..].starts_with("'''") => {
                let t =
                    raw_string(src, i, line).ok_or_else(|| err(line, "unterminated ''' string"))?;
                line += t.tok_lines();
                i = t.end;
                out.push(t);
            }
            b'\'' => {
                let (tok, next, lines) =
                    quoted(src, i).ok_or_else(|| err(line, "unterminated string"))?;
                out.push(T {
                    tok,
                    line,
                    start,
                    end: next,
                });
                line += lines;
                i = next;
            }
            c if c.is_ascii_digit() || c.is_ascii_alphabetic() || c == b'_' => {
                let (tok, next) = word(src, start);
                let tok = tok.ok_or_else(|| err(line, "bad number"))?;
                i = next;
                out.push(T {
                    tok,
                    line,
                    start,
                    end: i,
                });
            }
            _ => {
                let p = PUNCTS
                    .iter()
                    .find(|p| src[i..].starts_with(**p))
                    .ok_or_else(|| err(line, &format!("unexpected character '{}'", c as char)))?;
                i += p.len();
                out.push(T {
                    tok: Tok::P(p),
                    line,
                    start,
                    end: i,
                });
            }
        }
    }
    Ok(out)
}

/// An identifier or a number starting at `start`, and the index after it; `None` for a
/// malformed number.
fn word(src: &str, start: usize) -> (Option<Tok>, usize) {
    let b = src.as_bytes();
    let digits = b[start].is_ascii_digit();
    let mut i = start;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || (digits && b[i] == b'.'))
    {
        i += 1;
    }
    let tok = if digits {
        src[start..i].parse().ok().map(Tok::Num)
    } else {
        Some(Tok::Ident(src[start..i].to_string()))
    };
    (tok, i)
}

/// A `'''...'''` string (no escapes, no interpolation) starting at `i` on `line`.
fn raw_string(src: &str, i: usize, line: usize) -> Option<T> {
    let rest = src.get(i + 3..)?;
    let end = rest.find("'''")?;
    Some(T {
        tok: Tok::Raw(rest[..end].to_string()),
        line,
        start: i,
        end: i + 6 + end,
    })
}

impl T {
    /// Newlines inside the token (a multi-line `'''` string).
    fn tok_lines(&self) -> usize {
        match &self.tok {
            Tok::Raw(s) => s.matches('\n').count(),
            _ => 0,
        }
    }
}

/// Blanks and comments at `i` (`#disable-next-line` and other pragmas, `//`, `/* */`): the
/// offset after them, counting the newlines a block comment spans into `line`; None when `i`
/// starts none.
fn trivia(b: &[u8], mut i: usize, line: &mut usize) -> Option<usize> {
    match (b.get(i)?, b.get(i + 1)) {
        (b' ' | b'\t' | b'\r', _) => Some(i + 1),
        (b'#', _) | (b'/', Some(b'/')) => {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Some(i)
        }
        (b'/', Some(b'*')) => {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                if b[i] == b'\n' {
                    *line += 1;
                }
                i += 1;
            }
            Some(i + 2)
        }
        _ => None,
    }
}

/// A `'...'` string starting at `i`: its token, the offset after it and the newlines it
/// spans (inside `${...}` only); None when unterminated.
fn quoted(src: &str, i: usize) -> Option<(Tok, usize, usize)> {
    let b = src.as_bytes();
    let s0 = i + 1;
    let (mut j, mut depth, mut lines) = (s0, 0usize, 0usize);
    loop {
        match *b.get(j)? {
            b'\\' => j += 1,
            b'$' if b.get(j + 1) == Some(&b'{') => {
                depth += 1;
                j += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b'\'' if depth == 0 => break,
            b'\n' if depth == 0 => return None,
            b'\n' => lines += 1,
            _ => {}
        }
        j += 1;
    }
    Some((Tok::Str(src[s0..j].to_string()), j + 1, lines))
}

#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    Lit(String),
    Interp(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Null,
    Bool(bool),
    Num(f64),
    Str(Vec<StrPart>),
    Var(String),
    Member(Box<Expr>, String),
    /// `a::b` (a nested resource of `a`).
    Child(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    Unary(&'static str, Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Obj(Vec<(String, Expr)>),
    Arr(Vec<Expr>),
    /// `[for (item, index) in coll: body]`, an optional `if (cond)` before the body.
    For {
        item: String,
        index: Option<String>,
        coll: Box<Expr>,
        body: Box<Expr>,
    },
    /// `if (cond) body` (a conditional resource or module body).
    If(Box<Expr>, Box<Expr>),
    /// A nested `resource` declaration inside an object body.
    Nested(Box<Decl>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeclKind {
    Param,
    Var,
    /// `resource sym 'type@version' [existing] = ...`
    Resource {
        ty: String,
        existing: bool,
    },
    /// `module sym 'path' = ...`
    Module {
        path: String,
    },
    /// `output name type = ...` (what a module's caller sees as `sym.outputs.name`).
    Output,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    pub kind: DeclKind,
    pub name: String,
    pub value: Option<Expr>,
    pub line: usize,
    /// The value's source text, for messages.
    pub text: String,
}

struct P<'a> {
    file: &'a str,
    src: &'a str,
    t: Vec<T>,
    pos: usize,
    depth: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.pos).map(|t| &t.tok)
    }
    fn line(&self) -> usize {
        self.t
            .get(self.pos)
            .or(self.t.last())
            .map(|t| t.line)
            .unwrap_or(1)
    }
    fn err(&self, m: String) -> InputError {
        InputError::Syntax {
            file: self.file.into(),
            line: self.line(),
            column: 1,
            message: format!("invalid Bicep: {m}"),
        }
    }
    fn bump(&mut self) -> Option<Tok> {
        let t = self.t.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }
    fn eat(&mut self, p: &str) -> bool {
        if self.peek() == Some(&Tok::P(leak(p))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> Result<(), InputError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{p}', found {:?}", self.peek())))
        }
    }
    fn nls(&mut self) {
        while self.peek() == Some(&Tok::Nl) {
            self.pos += 1;
        }
    }
    fn ident(&mut self) -> Result<String, InputError> {
        match self.bump() {
            Some(Tok::Ident(s)) => Ok(s),
            other => Err(self.err(format!("expected a name, found {other:?}"))),
        }
    }
    /// Skip to the end of the statement: the next newline outside brackets.
    fn skip_statement(&mut self) {
        let mut depth = 0i32;
        while let Some(t) = self.peek().cloned() {
            match t {
                Tok::P("{") | Tok::P("[") | Tok::P("(") => depth += 1,
                Tok::P("}") | Tok::P("]") | Tok::P(")") => depth -= 1,
                Tok::Nl if depth <= 0 => return,
                _ => {}
            }
            self.pos += 1;
        }
    }
    fn deeper(&mut self) -> Result<(), InputError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err(format!(
                "expression nesting deeper than the limit of {MAX_NESTING} levels"
            )));
        }
        Ok(())
    }

    fn file(&mut self) -> Result<Vec<Decl>, InputError> {
        let mut out = Vec::new();
        loop {
            self.nls();
            let Some(tok) = self.peek().cloned() else {
                return Ok(out);
            };
            match tok {
                Tok::P("@") => {
                    // A decorator: `@name(args)` or `@sys.name(args)`.
                    self.pos += 1;
                    self.skip_statement();
                }
                Tok::Ident(kw) if kw == "param" || kw == "var" => {
                    self.pos += 1;
                    let line = self.line();
                    let name = self.ident()?;
                    if kw == "param" {
                        // The type (with `?` / `[]` suffixes, or a literal type) up to `=`.
                        while !matches!(self.peek(), Some(Tok::P("=")) | Some(Tok::Nl) | None) {
                            self.pos += 1;
                        }
                        if !self.eat("=") {
                            out.push(Decl {
                                kind: DeclKind::Param,
                                name,
                                value: None,
                                line,
                                text: String::new(),
                            });
                            continue;
                        }
                    } else {
                        self.expect("=")?;
                    }
                    let (value, text) = self.value()?;
                    let kind = if kw == "param" {
                        DeclKind::Param
                    } else {
                        DeclKind::Var
                    };
                    out.push(Decl {
                        kind,
                        name,
                        value: Some(value),
                        line,
                        text,
                    });
                }
                Tok::Ident(kw) if kw == "resource" || kw == "module" => {
                    self.pos += 1;
                    out.push(self.declaration(&kw)?);
                }
                Tok::Ident(kw) if kw == "output" => {
                    self.pos += 1;
                    if let Some(d) = self.output() {
                        out.push(d);
                    }
                }
                _ => self.skip_statement(),
            }
        }
    }

    /// `output name type = value` after the keyword. An output only matters to a caller that
    /// reads it: one this parser cannot read is skipped, never fatal.
    fn output(&mut self) -> Option<Decl> {
        let (start, depth) = (self.pos, self.depth);
        let line = self.line();
        let parsed = (|| {
            let name = self.ident().ok()?;
            while !matches!(self.peek(), Some(Tok::P("=")) | Some(Tok::Nl) | None) {
                self.pos += 1;
            }
            if !self.eat("=") {
                return None;
            }
            let (value, text) = self.value().ok()?;
            Some(Decl {
                kind: DeclKind::Output,
                name,
                value: Some(value),
                line,
                text,
            })
        })();
        if parsed.is_none() {
            (self.pos, self.depth) = (start, depth);
            self.skip_statement();
        }
        parsed
    }

    /// `resource`/`module` after the keyword.
    fn declaration(&mut self, kw: &str) -> Result<Decl, InputError> {
        let line = self.line();
        let name = self.ident()?;
        let target = match self.bump() {
            Some(Tok::Str(s)) => s,
            other => {
                return Err(self.err(format!("expected the {kw} type or path, found {other:?}")))
            }
        };
        let existing = matches!(self.peek(), Some(Tok::Ident(s)) if s == "existing");
        if existing {
            self.pos += 1;
        }
        self.expect("=")?;
        let (value, text) = self.value()?;
        let kind = if kw == "resource" {
            DeclKind::Resource {
                ty: target,
                existing,
            }
        } else {
            DeclKind::Module { path: target }
        };
        Ok(Decl {
            kind,
            name,
            value: Some(value),
            line,
            text,
        })
    }

    fn value(&mut self) -> Result<(Expr, String), InputError> {
        let s = self.t.get(self.pos).map(|t| t.start).unwrap_or(0);
        let e = self.expr()?;
        let end = self
            .t
            .get(self.pos.saturating_sub(1))
            .map(|t| t.end)
            .unwrap_or(s);
        Ok((e, self.src.get(s..end.max(s)).unwrap_or("").to_string()))
    }

    fn expr(&mut self) -> Result<Expr, InputError> {
        self.deeper()?;
        let e = self.ternary();
        self.depth -= 1;
        e
    }

    fn ternary(&mut self) -> Result<Expr, InputError> {
        let c = self.binary(0)?;
        if self.eat("?") {
            self.nls();
            let a = self.expr()?;
            self.nls();
            self.expect(":")?;
            self.nls();
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn binary(&mut self, min: u8) -> Result<Expr, InputError> {
        const OPS: &[(&str, u8)] = &[
            ("??", 1),
            ("||", 2),
            ("&&", 3),
            ("==", 4),
            ("!=", 4),
            ("=~", 4),
            ("!~", 4),
            ("<", 5),
            (">", 5),
            ("<=", 5),
            (">=", 5),
            ("+", 6),
            ("-", 6),
            ("*", 7),
            ("/", 7),
            ("%", 7),
        ];
        let mut lhs = self.unary()?;
        loop {
            let Some(Tok::P(p)) = self.peek().cloned() else {
                return Ok(lhs);
            };
            let Some(&(op, prec)) = OPS.iter().find(|(o, _)| *o == p) else {
                return Ok(lhs);
            };
            if prec < min {
                return Ok(lhs);
            }
            self.pos += 1;
            self.nls();
            self.deeper()?;
            let rhs = self.binary(prec + 1);
            self.depth -= 1;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs?));
        }
    }

    fn unary(&mut self) -> Result<Expr, InputError> {
        for op in ["!", "-"] {
            if self.eat(op) {
                self.deeper()?;
                let e = self.unary();
                self.depth -= 1;
                return Ok(Expr::Unary(leak(op), Box::new(e?)));
            }
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, InputError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") || self.eat("?.") {
                let name = self.ident()?;
                if self.peek() == Some(&Tok::P("(")) {
                    // A namespaced call: `sys.concat(...)`, `az.resourceId(...)`.
                    self.pos += 1;
                    let args = self.list(")")?;
                    e = Expr::Call(name, args);
                } else {
                    e = Expr::Member(Box::new(e), name);
                }
            } else if self.eat("::") {
                e = Expr::Child(Box::new(e), self.ident()?);
            } else if self.peek() == Some(&Tok::P("[")) {
                self.pos += 1;
                self.eat("?");
                let i = self.expr()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(i));
            } else if self.peek() == Some(&Tok::P("!"))
                && !matches!(self.t.get(self.pos + 1).map(|t| &t.tok), Some(Tok::P("=")))
            {
                // The non-null assertion `x!`.
                self.pos += 1;
            } else {
                return Ok(e);
            }
        }
    }

    /// Items up to `close`, separated by commas and/or newlines.
    fn list(&mut self, close: &str) -> Result<Vec<Expr>, InputError> {
        let mut out = Vec::new();
        loop {
            self.nls();
            if self.eat(close) {
                return Ok(out);
            }
            out.push(self.expr()?);
            self.nls();
            self.eat(",");
        }
    }

    fn primary(&mut self) -> Result<Expr, InputError> {
        let line = self.line();
        match self.bump() {
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Str(s)) => self.string(&s, line),
            Some(Tok::Raw(s)) => Ok(Expr::Str(vec![StrPart::Lit(s)])),
            Some(Tok::P("(")) => {
                self.nls();
                let e = self.expr()?;
                self.nls();
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::P("{")) => self.object(),
            Some(Tok::P("[")) => {
                self.nls();
                if matches!(self.peek(), Some(Tok::Ident(s)) if s == "for") {
                    self.pos += 1;
                    return self.for_expr();
                }
                Ok(Expr::Arr(self.list("]")?))
            }
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "null" => Ok(Expr::Null),
                "if" => {
                    self.expect("(")?;
                    let c = self.expr()?;
                    self.expect(")")?;
                    self.nls();
                    let body = self.expr()?;
                    Ok(Expr::If(Box::new(c), Box::new(body)))
                }
                _ if self.peek() == Some(&Tok::P("(")) => {
                    self.pos += 1;
                    Ok(Expr::Call(id, self.list(")")?))
                }
                _ => Ok(Expr::Var(id)),
            },
            other => Err(self.err(format!("unexpected {other:?}"))),
        }
    }

    fn for_expr(&mut self) -> Result<Expr, InputError> {
        let (item, index) = if self.eat("(") {
            let a = self.ident()?;
            self.expect(",")?;
            let b = self.ident()?;
            self.expect(")")?;
            (a, Some(b))
        } else {
            (self.ident()?, None)
        };
        match self.bump() {
            Some(Tok::Ident(s)) if s == "in" => {}
            other => return Err(self.err(format!("expected 'in', found {other:?}"))),
        }
        let coll = self.expr()?;
        self.expect(":")?;
        self.nls();
        let body = self.expr()?;
        self.nls();
        self.expect("]")?;
        Ok(Expr::For {
            item,
            index,
            coll: Box::new(coll),
            body: Box::new(body),
        })
    }

    fn object(&mut self) -> Result<Expr, InputError> {
        self.deeper()?;
        let mut out = Vec::new();
        loop {
            self.nls();
            if self.eat("}") {
                break;
            }
            if self.eat("@") {
                self.skip_statement();
                continue;
            }
            let line = self.line();
            let key = match self.bump() {
                Some(Tok::Ident(k))
                    if k == "resource" && matches!(self.peek(), Some(Tok::Ident(_))) =>
                {
                    let d = self.declaration("resource")?;
                    out.push((
                        format!("\u{1}resource:{}", d.name),
                        Expr::Nested(Box::new(d)),
                    ));
                    continue;
                }
                Some(Tok::Ident(k)) => k,
                Some(Tok::Str(s)) => s,
                other => {
                    return Err(InputError::Syntax {
                        file: self.file.into(),
                        line,
                        column: 1,
                        message: format!(
                            "invalid Bicep: expected a property name, found {other:?}"
                        ),
                    })
                }
            };
            self.expect(":")?;
            self.nls();
            out.push((key, self.expr()?));
            self.nls();
            self.eat(",");
        }
        self.depth -= 1;
        Ok(Expr::Obj(out))
    }

    /// A quoted string's parts: literal text and `${...}` interpolations (parsed as
    /// expressions of their own).
    fn string(&mut self, raw: &str, line: usize) -> Result<Expr, InputError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let cs: Vec<char> = raw.chars().collect();
        let mut i = 0;
        while i < cs.len() {
            match cs[i] {
                '\\' if i + 1 < cs.len() => {
                    lit.push(match cs[i + 1] {
                        'n' => '\n',
                        't' => '\t',
                        c => c,
                    });
                    i += 2;
                }
                '$' if cs.get(i + 1) == Some(&'{') => {
                    let mut depth = 1;
                    let mut j = i + 2;
                    while j < cs.len() && depth > 0 {
                        match cs[j] {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    let inner: String = cs[i + 2..j.saturating_sub(1)].iter().collect();
                    if !lit.is_empty() {
                        parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                    }
                    self.deeper()?;
                    let e = parse_expr(self.file, &inner, line, self.depth);
                    self.depth -= 1;
                    parts.push(StrPart::Interp(e?));
                    i = j;
                }
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(StrPart::Lit(lit));
        }
        Ok(Expr::Str(parts))
    }
}

/// The punctuation table's `&'static str` for `p` (tokens compare by value).
fn leak(p: &str) -> &'static str {
    PUNCTS.iter().find(|x| **x == p).copied().unwrap_or("")
}

fn parse_expr(file: &str, src: &str, line: usize, depth: usize) -> Result<Expr, InputError> {
    let mut t = lex(file, src)?;
    for x in &mut t {
        x.line = line;
    }
    let mut p = P {
        file,
        src,
        t,
        pos: 0,
        depth,
    };
    p.expr()
}

/// Parse a `.bicep` file (or a `.bicepparam` file: `using` and `param name = value`).
pub fn parse(file: &str, src: &str) -> Result<Vec<Decl>, InputError> {
    super::limits::check_nesting_hcl(file, src, true)?;
    let t = lex(file, src)?;
    let mut p = P {
        file,
        src,
        t,
        pos: 0,
        depth: 0,
    };
    p.file()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_common_shapes() {
        let src = r#"
@description('x')
param prefix string = 'aks'
param cidr string
var vnetName = '${prefix}-vnet'
resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' = {
  name: vnetName
  properties: {
    addressSpace: { addressPrefixes: [ cidr ] }
    subnets: [for (s, i) in range(0, 2): {
      name: 'sub${i}'
      properties: { addressPrefix: cidrSubnet(cidr, 24, i) }
    }]
  }
  resource child 'subnets' = { name: 'extra' }
}
resource aks 'Microsoft.ContainerService/managedClusters@2024-01-01' = if (!empty(prefix)) {
  name: '${prefix}-${uniqueString(resourceGroup().id)}'
  properties: { networkProfile: { networkPlugin: prefix == 'aks' ? 'azure' : 'kubenet' } }
}
output id string = aks.id
"#;
        let d = parse("m.bicep", src).unwrap();
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["prefix", "cidr", "vnetName", "vnet", "aks", "id"]
        );
        assert_eq!(d[3].line, 6);
        assert_eq!(d[5].kind, DeclKind::Output);
        assert!(d[1].value.is_none());
    }
}
