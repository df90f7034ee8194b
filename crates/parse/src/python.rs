//! A parser for the subset of Python expressions that models write as calls.
//!
//! BFCL-style and Gemma-style models write `[get_weather(city="Paris"), math.factorial(n=5)]`.
//! [`parse_expr`] turns such text into a [`PyExpr`] tree (literals, containers, names,
//! attributes, calls, unary and binary operators), and [`PyExpr::to_json`] turns a literal
//! into JSON. Hand-written because no maintained crate parses Python expressions without
//! pulling in a whole Python front end; it is recursive descent with a depth limit, so
//! hostile nesting is an error, not a stack overflow.

use serde_json::{Map, Number, Value};

/// Deepest nesting of brackets and operators accepted.
pub const MAX_DEPTH: usize = 128;

/// One Python expression.
#[derive(Debug, Clone, PartialEq)]
pub enum PyExpr {
    /// A string (after implicit concatenation).
    Str(String),
    /// A `b"…"` bytes literal.
    Bytes(Vec<u8>),
    /// An integer that fits in an `i128`.
    Int(i128),
    /// A float.
    Float(f64),
    /// An imaginary literal such as `2j`.
    Imaginary(f64),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// `...`.
    Ellipsis,
    /// A bare name such as `x` or `true`.
    Name(String),
    /// `value.attr`.
    Attribute(Box<PyExpr>, String),
    /// `[a, b]`.
    List(Vec<PyExpr>),
    /// `(a, b)`.
    Tuple(Vec<PyExpr>),
    /// `{a, b}`.
    Set(Vec<PyExpr>),
    /// `{k: v}`; `**x` entries are not supported.
    Dict(Vec<(PyExpr, PyExpr)>),
    /// `func(args, key=value)`.
    Call {
        /// What is called.
        func: Box<PyExpr>,
        /// Positional arguments.
        args: Vec<PyExpr>,
        /// Keyword arguments, in source order; `None` for `**x`.
        kwargs: Vec<(Option<String>, PyExpr)>,
    },
    /// `value[index]`.
    Subscript(Box<PyExpr>, Box<PyExpr>),
    /// `-x`, `+x`, `~x`, `not x`.
    Unary(UnaryOp, Box<PyExpr>),
    /// `a + b` and the other arithmetic operators.
    Binary(BinaryOp, Box<PyExpr>, Box<PyExpr>),
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
    /// `~`
    Invert,
    /// `not`
    Not,
}

/// An arithmetic binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
    /// `**`
    Pow,
}

/// Why text is not a Python expression, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct PySyntaxError {
    /// Byte offset into the parsed text.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

/// Why an expression has no JSON value ([`PyExpr::to_json`]); the text names the expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PyValueError {
    /// A name, call, operator or other non-literal (the rendered expression).
    #[error("`{0}` is not a literal value")]
    NotLiteral(String),
    /// A float JSON cannot hold (NaN or infinite).
    #[error("{0} has no JSON representation")]
    NoJsonNumber(f64),
}

/// Parses `text` as one Python expression (a bare tuple `a, b` included).
pub fn parse_expr(text: &str) -> Result<PyExpr, PySyntaxError> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
    };
    let expr = p.tuple_or_expr()?;
    p.skip_ws();
    if p.pos < p.src.len() {
        return Err(p.error(format!("unexpected `{}`", p.peek_char())));
    }
    Ok(expr)
}

impl PyExpr {
    /// The dotted name of a callee: `math.factorial` for `math.factorial(…)`.
    pub fn dotted_name(&self) -> Option<String> {
        match self {
            Self::Name(n) => Some(n.clone()),
            Self::Attribute(base, attr) => Some(format!("{}.{attr}", base.dotted_name()?)),
            _ => None,
        }
    }

    /// The JSON literal a bare `true`, `false` or `null` name stands for.
    pub fn json_literal_name(&self) -> Option<Value> {
        match self {
            Self::Name(n) => match n.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "null" => Some(Value::Null),
                _ => None,
            },
            _ => None,
        }
    }

    /// Converts a literal to JSON. Tuples and sets become arrays, dict keys become strings,
    /// unary `-`/`+` on a number is applied; names, calls and operators are an error that
    /// says which expression is not a value.
    pub fn to_json(&self) -> Result<Value, PyValueError> {
        self.to_json_with(&mut |_| None)
    }

    /// [`PyExpr::to_json`], but `leaf` sees every value first (containers' elements and dict
    /// values included) and may give its JSON instead.
    pub fn to_json_with(
        &self,
        leaf: &mut dyn FnMut(&PyExpr) -> Option<Value>,
    ) -> Result<Value, PyValueError> {
        if let Some(v) = leaf(self) {
            return Ok(v);
        }
        Ok(match self {
            Self::Str(s) => Value::String(s.clone()),
            Self::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            Self::Int(i) => int_json(*i),
            Self::Float(f) => float_json(*f)?,
            Self::Bool(b) => Value::Bool(*b),
            Self::None => Value::Null,
            Self::List(items) | Self::Tuple(items) | Self::Set(items) => Value::Array(
                items
                    .iter()
                    .map(|e| e.to_json_with(leaf))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Dict(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    let key = match k.to_json()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    map.insert(key, v.to_json_with(leaf)?);
                }
                Value::Object(map)
            }
            Self::Unary(op @ (UnaryOp::Neg | UnaryOp::Pos), inner) => match (op, &**inner) {
                (UnaryOp::Neg, Self::Int(i)) => int_json(-*i),
                (UnaryOp::Neg, Self::Float(f)) => float_json(-*f)?,
                (UnaryOp::Pos, Self::Int(i)) => int_json(*i),
                (UnaryOp::Pos, Self::Float(f)) => float_json(*f)?,
                _ => return Err(PyValueError::NotLiteral(self.render())),
            },
            Self::Imaginary(_)
            | Self::Ellipsis
            | Self::Name(_)
            | Self::Attribute(..)
            | Self::Call { .. }
            | Self::Subscript(..)
            | Self::Unary(..)
            | Self::Binary(..) => {
                return Err(PyValueError::NotLiteral(self.render()));
            }
        })
    }

    /// Renders the expression back to source, as Python's `ast.unparse` writes it
    /// (strings and floats in Python's `repr`).
    pub fn render(&self) -> String {
        match self {
            Self::Str(s) => str_repr(s),
            Self::Bytes(b) => format!("b{}", str_repr(&String::from_utf8_lossy(b))),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => float_repr(*f),
            Self::Imaginary(f) => format!("{}j", float_repr(*f).trim_end_matches(".0")),
            Self::Bool(true) => "True".into(),
            Self::Bool(false) => "False".into(),
            Self::None => "None".into(),
            Self::Ellipsis => "...".into(),
            Self::Name(n) => n.clone(),
            Self::Attribute(base, attr) => format!("{}.{attr}", base.render()),
            Self::List(items) => format!("[{}]", join(items)),
            Self::Tuple(items) if items.len() == 1 => format!("({},)", items[0].render()),
            Self::Tuple(items) => format!("({})", join(items)),
            Self::Set(items) => format!("{{{}}}", join(items)),
            Self::Dict(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.render(), v.render()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
            Self::Call { func, args, kwargs } => {
                let mut parts: Vec<String> = args.iter().map(PyExpr::render).collect();
                for (k, v) in kwargs {
                    parts.push(match k {
                        Some(k) => format!("{k}={}", v.render()),
                        None => format!("**{}", v.render()),
                    });
                }
                format!("{}({})", func.render(), parts.join(", "))
            }
            Self::Subscript(base, index) => {
                let inner = match &**index {
                    Self::Tuple(items) if !items.is_empty() => join(items),
                    other => other.render(),
                };
                format!("{}[{inner}]", base.render())
            }
            Self::Unary(op, inner) => {
                let sym = match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Pos => "+",
                    UnaryOp::Invert => "~",
                    UnaryOp::Not => "not ",
                };
                format!("{sym}{}", inner.render())
            }
            Self::Binary(op, l, r) => {
                let sym = match op {
                    BinaryOp::Add => "+",
                    BinaryOp::Sub => "-",
                    BinaryOp::Mul => "*",
                    BinaryOp::Div => "/",
                    BinaryOp::FloorDiv => "//",
                    BinaryOp::Mod => "%",
                    BinaryOp::Pow => "**",
                };
                format!("{} {sym} {}", l.render(), r.render())
            }
        }
    }
}

/// Python `repr` of a string: single quotes unless the text has `'` and no `"`.
fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python `repr` of a float.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);

        return format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    format!("{f:?}")
}

fn join(items: &[PyExpr]) -> String {
    items
        .iter()
        .map(PyExpr::render)
        .collect::<Vec<_>>()
        .join(", ")
}

fn int_json(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::Number(v.into())
    } else if let Ok(v) = u64::try_from(i) {
        Value::Number(v.into())
    } else {
        // Beyond 64 bits JSON has only doubles; the precision loss is what JSON readers do too.
        Number::from_f64(i as f64).map_or(Value::Null, Value::Number)
    }
}

fn float_json(f: f64) -> Result<Value, PyValueError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or(PyValueError::NoJsonNumber(f))
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "if", "else", "lambda", "for", "while", "def", "class",
    "return", "import", "from", "as", "with", "yield", "await", "async", "del", "pass", "global",
];

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> PySyntaxError {
        PySyntaxError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn peek_char(&self) -> char {
        self.text[self.pos..].chars().next().unwrap_or(' ')
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.src.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.pos += 1,
                b'\\' if self.src.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
                b'#' => {
                    while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn peek_is(&mut self, token: &str) -> bool {
        self.skip_ws();
        self.src[self.pos..].starts_with(token.as_bytes())
    }

    fn expect(&mut self, token: &str) -> Result<(), PySyntaxError> {
        if self.eat(token) {
            Ok(())
        } else if self.pos >= self.src.len() {
            Err(self.error(format!("expected `{token}` but the text ended")))
        } else {
            Err(self.error(format!("expected `{token}`, found `{}`", self.peek_char())))
        }
    }

    fn enter(&mut self) -> Result<(), PySyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// `a, b` at the top level is a tuple, as Python reads it.
    fn tuple_or_expr(&mut self) -> Result<PyExpr, PySyntaxError> {
        let first = self.expr()?;
        if !self.peek_is(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            self.skip_ws();
            if self.pos >= self.src.len() || self.peek_is(")") {
                break;
            }
            items.push(self.expr()?);
        }
        Ok(PyExpr::Tuple(items))
    }

    fn expr(&mut self) -> Result<PyExpr, PySyntaxError> {
        self.enter()?;
        let result = self.additive();
        self.depth -= 1;
        result
    }

    fn additive(&mut self) -> Result<PyExpr, PySyntaxError> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat("+") {
                BinaryOp::Add
            } else if self.peek_is("-") && !self.peek_is("->") {
                self.pos += 1;
                BinaryOp::Sub
            } else {
                return Ok(left);
            };
            let right = self.term()?;
            left = PyExpr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self) -> Result<PyExpr, PySyntaxError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat("//") {
                BinaryOp::FloorDiv
            } else if self.peek_is("**") {
                return Ok(left);
            } else if self.eat("*") {
                BinaryOp::Mul
            } else if self.eat("/") {
                BinaryOp::Div
            } else if self.eat("%") {
                BinaryOp::Mod
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            left = PyExpr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<PyExpr, PySyntaxError> {
        self.enter()?;
        let op = if self.eat("-") {
            Some(UnaryOp::Neg)
        } else if self.eat("+") {
            Some(UnaryOp::Pos)
        } else if self.eat("~") {
            Some(UnaryOp::Invert)
        } else if self.peek_keyword("not") {
            self.pos += 3;
            Some(UnaryOp::Not)
        } else {
            None
        };
        let result = match op {
            Some(op) => self.unary().map(|e| PyExpr::Unary(op, Box::new(e))),
            None => self.power(),
        };
        self.depth -= 1;
        result
    }

    fn peek_keyword(&mut self, word: &str) -> bool {
        self.peek_is(word)
            && !self
                .src
                .get(self.pos + word.len())
                .is_some_and(|&b| is_ident_byte(b))
    }

    fn power(&mut self) -> Result<PyExpr, PySyntaxError> {
        let base = self.postfix()?;
        if self.eat("**") {
            let exp = self.unary()?;
            return Ok(PyExpr::Binary(BinaryOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<PyExpr, PySyntaxError> {
        let mut expr = self.atom()?;
        loop {
            if self.eat("(") {
                expr = self.call_rest(expr)?;
            } else if self.peek_is("[") {
                self.pos += 1;
                self.enter()?;
                let index = self.tuple_or_expr()?;
                self.depth -= 1;
                self.expect("]")?;
                expr = PyExpr::Subscript(Box::new(expr), Box::new(index));
            } else if self.peek_is(".") && !self.peek_is("...") {
                self.pos += 1;
                self.skip_ws();
                let name = self
                    .ident()
                    .ok_or_else(|| self.error("expected a name after `.`"))?;
                expr = PyExpr::Attribute(Box::new(expr), name);
            } else {
                return Ok(expr);
            }
        }
    }

    fn call_rest(&mut self, func: PyExpr) -> Result<PyExpr, PySyntaxError> {
        self.enter()?;
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        loop {
            if self.eat(")") {
                break;
            }
            if self.eat("**") {
                kwargs.push((None, self.expr()?));
            } else {
                let save = self.pos;
                self.skip_ws();
                let keyword = self.ident();
                if let Some(name) = keyword.filter(|_| self.peek_is("=") && !self.peek_is("==")) {
                    self.pos += 1;
                    kwargs.push((Some(name), self.expr()?));
                } else {
                    self.pos = save;
                    if !kwargs.is_empty() {
                        return Err(self.error("positional argument follows keyword argument"));
                    }
                    args.push(self.expr()?);
                }
            }
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        self.depth -= 1;
        Ok(PyExpr::Call {
            func: Box::new(func),
            args,
            kwargs,
        })
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        let first = *self.src.get(start)?;
        if !(first.is_ascii_alphabetic() || first == b'_' || first >= 0x80) {
            return None;
        }
        let mut end = start;
        while self.src.get(end).is_some_and(|&b| is_ident_byte(b)) {
            end += 1;
        }
        self.pos = end;
        Some(self.text[start..end].to_owned())
    }

    fn atom(&mut self) -> Result<PyExpr, PySyntaxError> {
        self.skip_ws();
        let Some(&b) = self.src.get(self.pos) else {
            return Err(self.error("expected a value but the text ended"));
        };
        match b {
            b'(' => {
                self.pos += 1;
                self.enter()?;
                if self.eat(")") {
                    self.depth -= 1;
                    return Ok(PyExpr::Tuple(Vec::new()));
                }
                let first = self.expr()?;
                let result = if self.eat(",") {
                    let mut items = vec![first];
                    while !self.peek_is(")") {
                        items.push(self.expr()?);
                        if !self.eat(",") {
                            break;
                        }
                    }
                    PyExpr::Tuple(items)
                } else {
                    first
                };
                self.expect(")")?;
                self.depth -= 1;
                Ok(result)
            }
            b'[' => {
                self.pos += 1;
                self.enter()?;
                let items = self.items("]")?;
                self.depth -= 1;
                Ok(PyExpr::List(items))
            }
            b'{' => {
                self.pos += 1;
                self.enter()?;
                let result = self.dict_or_set();
                self.depth -= 1;
                result
            }
            b'.' if self.src[self.pos..].starts_with(b"...") => {
                self.pos += 3;
                Ok(PyExpr::Ellipsis)
            }
            b'"' | b'\'' => self.strings(),
            b'0'..=b'9' | b'.' => self.number(),
            _ => {
                let start = self.pos;
                let Some(name) = self.ident() else {
                    return Err(self.error(format!("unexpected `{}`", self.peek_char())));
                };
                if matches!(self.src.get(self.pos), Some(b'"' | b'\'')) && is_string_prefix(&name) {
                    self.pos = start;
                    return self.strings();
                }
                match name.as_str() {
                    "True" => Ok(PyExpr::Bool(true)),
                    "False" => Ok(PyExpr::Bool(false)),
                    "None" => Ok(PyExpr::None),
                    kw if KEYWORDS.contains(&kw) => {
                        self.pos = start;
                        Err(self.error(format!("`{kw}` expressions are not supported")))
                    }
                    _ => Ok(PyExpr::Name(name)),
                }
            }
        }
    }

    fn items(&mut self, close: &str) -> Result<Vec<PyExpr>, PySyntaxError> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.expr()?);
            if !self.eat(",") {
                self.expect(close)?;
                return Ok(items);
            }
        }
    }

    fn dict_or_set(&mut self) -> Result<PyExpr, PySyntaxError> {
        if self.eat("}") {
            return Ok(PyExpr::Dict(Vec::new()));
        }
        let first = self.expr()?;
        if !self.eat(":") {
            let mut items = vec![first];
            if self.eat(",") {
                items.extend(self.items("}")?);
            } else {
                self.expect("}")?;
            }
            return Ok(PyExpr::Set(items));
        }
        let mut entries = vec![(first, self.expr()?)];
        loop {
            if !self.eat(",") {
                self.expect("}")?;
                return Ok(PyExpr::Dict(entries));
            }
            if self.eat("}") {
                return Ok(PyExpr::Dict(entries));
            }
            let key = self.expr()?;
            self.expect(":")?;
            entries.push((key, self.expr()?));
        }
    }

    fn number(&mut self) -> Result<PyExpr, PySyntaxError> {
        let start = self.pos;
        let s = self.src;
        let mut end = start;
        if s[start] == b'0'
            && matches!(
                s.get(start + 1),
                Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B')
            )
        {
            let radix = match s[start + 1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                _ => 2,
            };
            end = start + 2;
            while s
                .get(end)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                end += 1;
            }
            let digits: String = self.text[start + 2..end]
                .chars()
                .filter(|c| *c != '_')
                .collect();
            self.pos = end;
            return i128::from_str_radix(&digits, radix)
                .map(PyExpr::Int)
                .map_err(|_| PySyntaxError {
                    offset: start,
                    message: "invalid integer literal".into(),
                });
        }
        let mut is_float = false;
        while let Some(&b) = s.get(end) {
            match b {
                b'0'..=b'9' | b'_' => end += 1,
                b'.' if !is_float => {
                    is_float = true;
                    end += 1;
                }
                b'e' | b'E' => {
                    is_float = true;
                    end += 1;
                    if matches!(s.get(end), Some(b'+' | b'-')) {
                        end += 1;
                    }
                }
                _ => break,
            }
        }
        let digits: String = self.text[start..end]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        self.pos = end;
        if matches!(s.get(end), Some(b'j' | b'J')) {
            self.pos += 1;
            return digits
                .parse::<f64>()
                .map(PyExpr::Imaginary)
                .map_err(|_| PySyntaxError {
                    offset: start,
                    message: "invalid number".into(),
                });
        }
        let bad = || PySyntaxError {
            offset: start,
            message: format!("invalid number `{digits}`"),
        };
        if is_float {
            digits.parse::<f64>().map(PyExpr::Float).map_err(|_| bad())
        } else {
            match digits.parse::<i128>() {
                Ok(i) => Ok(PyExpr::Int(i)),
                Err(_) if digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty() => {
                    digits.parse::<f64>().map(PyExpr::Float).map_err(|_| bad())
                }
                Err(_) => Err(bad()),
            }
        }
    }

    /// One or more adjacent string literals, concatenated as Python does.
    fn strings(&mut self) -> Result<PyExpr, PySyntaxError> {
        let mut text = String::new();
        let mut bytes: Option<Vec<u8>> = None;
        let mut any = false;
        loop {
            self.skip_ws();
            let start = self.pos;
            let mut prefix_end = start;
            while self
                .src
                .get(prefix_end)
                .is_some_and(|b| b.is_ascii_alphabetic())
            {
                prefix_end += 1;
            }
            let prefix = self.text[start..prefix_end].to_ascii_lowercase();
            let Some(&quote) = self
                .src
                .get(prefix_end)
                .filter(|b| matches!(b, b'"' | b'\''))
            else {
                break;
            };
            if !is_string_prefix(&prefix) {
                break;
            }
            if prefix.contains('f') {
                return Err(PySyntaxError {
                    offset: start,
                    message: "f-strings are not values".into(),
                });
            }
            self.pos = prefix_end;
            let raw = prefix.contains('r');
            let part = self.string_body(quote, raw)?;
            if prefix.contains('b') {
                bytes.get_or_insert_with(Vec::new).extend(part.into_bytes());
            } else {
                text.push_str(&part);
            }
            any = true;
        }
        if !any {
            return Err(self.error("expected a string"));
        }
        Ok(match bytes {
            Some(b) => PyExpr::Bytes(b),
            None => PyExpr::Str(text),
        })
    }

    fn string_body(&mut self, quote: u8, raw: bool) -> Result<String, PySyntaxError> {
        let start = self.pos;
        let triple = self.src[self.pos..].starts_with(&[quote; 3]);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(k) = memchr::memchr2(quote, b'\\', rest) else {
                return Err(PySyntaxError {
                    offset: start,
                    message: "unterminated string".into(),
                });
            };
            let chunk = &self.text[self.pos..self.pos + k];
            if !triple && chunk.contains('\n') {
                return Err(PySyntaxError {
                    offset: start,
                    message: "unterminated string".into(),
                });
            }
            out.push_str(chunk);
            self.pos += k;
            if self.src[self.pos] == quote {
                if !triple {
                    self.pos += 1;
                    return Ok(out);
                }
                if self.src[self.pos..].starts_with(&[quote; 3]) {
                    self.pos += 3;
                    return Ok(out);
                }
                out.push(quote as char);
                self.pos += 1;
                continue;
            }
            // A backslash.
            let Some(next) = self.text[self.pos + 1..].chars().next() else {
                return Err(PySyntaxError {
                    offset: start,
                    message: "unterminated string".into(),
                });
            };
            if raw {
                out.push('\\');
                out.push(next);
                self.pos += 1 + next.len_utf8();
                continue;
            }
            self.pos += 1 + next.len_utf8();
            match next {
                '\n' => {}
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0'..='7' => {
                    let mut value = next as u32 - '0' as u32;
                    for _ in 0..2 {
                        match self.src.get(self.pos) {
                            Some(&d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                }
                'x' | 'u' | 'U' => {
                    let len = match next {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex = self.text.get(self.pos..self.pos + len).unwrap_or("");
                    let value = u32::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.len() == len);
                    let Some(c) = value.and_then(char::from_u32) else {
                        return Err(self.error(format!("invalid \\{next} escape")));
                    };
                    out.push(c);
                    self.pos += len;
                }
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\\' | '\'' | '"' => out.push(next),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_string_prefix(p: &str) -> bool {
    matches!(
        p.to_ascii_lowercase().as_str(),
        "" | "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn lit(text: &str) -> Value {
        parse_expr(text).unwrap().to_json().unwrap()
    }

    #[test]
    fn literals_become_json() {
        assert_eq!(lit("'it\\'s'"), json!("it's"));
        assert_eq!(lit(r#""a" 'b'"#), json!("ab"));
        assert_eq!(lit(r#"r"\d+""#), json!("\\d+"));
        assert_eq!(lit("'''multi\nline'''"), json!("multi\nline"));
        assert_eq!(lit("1_000"), json!(1000));
        assert_eq!(lit("0x10"), json!(16));
        assert_eq!(lit("1e3"), json!(1000.0));
        assert_eq!(lit("-2.5"), json!(-2.5));
        assert_eq!(lit("[True, False, None]"), json!([true, false, null]));
        assert_eq!(lit("(1, 'a')"), json!([1, "a"]));
        assert_eq!(
            lit("{'k': [1, {'n': 2}], 3: 'x'}"),
            json!({"k": [1, {"n": 2}], "3": "x"})
        );
        assert_eq!(lit("'\\u00e9\\x41'"), json!("éA"));
        assert_eq!(lit("[1, 2,]"), json!([1, 2]));
    }

    #[test]
    fn calls_keep_names_and_keyword_order() {
        let expr = parse_expr("math.factorial(n=5, mode='fast')").unwrap();
        let PyExpr::Call { func, args, kwargs } = expr else {
            panic!("not a call")
        };
        assert_eq!(func.dotted_name().unwrap(), "math.factorial");
        assert!(args.is_empty());
        let keys: Vec<_> = kwargs.iter().map(|(k, _)| k.clone().unwrap()).collect();
        assert_eq!(keys, vec!["n", "mode"]);
    }

    #[test]
    fn non_values_say_what_they_are() {
        assert_eq!(
            parse_expr("x + 1")
                .unwrap()
                .to_json()
                .unwrap_err()
                .to_string(),
            "`x + 1` is not a literal value"
        );
        assert!(parse_expr("f'{x}'").is_err());
        assert!(parse_expr("[1, 2").unwrap_err().message.contains("ended"));
        assert!(
            parse_expr("f(a=1, 2)")
                .unwrap_err()
                .message
                .contains("positional")
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = parse_expr(&deep).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
        let deep_neg = "-".repeat(10_000) + "1";
        assert!(parse_expr(&deep_neg).is_err());
    }
}
