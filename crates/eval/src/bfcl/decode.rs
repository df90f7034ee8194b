//! BFCL's decoder for Python call syntax (spec §3.2): raw model text → calls.
//!
//! Faithful to the upstream quirks on purpose: positional arguments are dropped, a unary
//! operator on a constant negates it (`+5` → -5, `not True` → -1), bare names become strings,
//! binary operations are evaluated, and a fence with a language tag fails.

use agentry_parse::python::{BinaryOp, PyExpr, PySyntaxError, UnaryOp, parse_expr};

use super::value::{PyType, PyVal};

/// Why model output does not decode to calls; the text is the checker's reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The text is not a Python expression.
    #[error("not a Python expression: {0}")]
    NotPython(#[source] PySyntaxError),
    /// The expression is neither a call nor a list (the rendered expression).
    #[error("expected a list of calls, got `{0}`")]
    NotAList(String),
    /// An element of the list is not a call (the rendered element).
    #[error("`{0}` is not a call")]
    NotACall(String),
    /// A unary operator applies to something other than a constant (the rendered argument).
    #[error("`{0}`: a unary operator on a non-constant")]
    UnaryOnNonConstant(String),
    /// An argument is of a kind the decoder refuses (the rendered argument).
    #[error("`{0}` is not a value the decoder accepts")]
    NotAValue(String),
    /// A unary operator Python refuses for this type.
    #[error("bad operand type for unary {op}: {ty:?}")]
    BadUnaryOperand {
        /// The operator (`-`, `+` or `~`).
        op: char,
        /// The operand's type.
        ty: PyType,
    },
    /// A binary operator Python refuses for these types.
    #[error("unsupported operand types for {op:?}: {left:?} and {right:?}")]
    UnsupportedOperands {
        /// The operator.
        op: BinaryOp,
        /// The left operand's type.
        left: PyType,
        /// The right operand's type.
        right: PyType,
    },
    /// Arithmetic Python would raise on (division by zero, overflow); Python's message.
    #[error("{0}")]
    Arithmetic(&'static str),
    /// `...` inside an expression to evaluate.
    #[error("`...` in an expression")]
    Ellipsis,
    /// `str % args`, which the decoder does not evaluate.
    #[error("string formatting is not evaluated")]
    StringFormatting,
    /// An expression that is not a constant one (the rendered expression).
    #[error("`{0}` cannot be evaluated")]
    NotEvaluable(String),
    /// The decoded output (tagged JSON) does not have the shape of spec §2; what is wrong.
    #[error("{0}")]
    Shape(&'static str),
    /// A parameter name in tagged JSON is not a string.
    #[error("a parameter name is not a string: {0:?}")]
    ParamName(PyVal),
    /// The arguments of a call in tagged JSON are not a map (the call's name).
    #[error("the arguments of `{0}` are not a map")]
    ArgsNotMap(String),
    /// The tree-sitter grammar could not be loaded.
    #[error("tree-sitter: {0}")]
    TreeSitter(#[source] tree_sitter::LanguageError),
    /// Tree-sitter returned no tree.
    #[error("tree-sitter did not parse")]
    NoParse,
    /// Tree-sitter found a syntax error.
    #[error("the output does not parse (tree-sitter reports an error)")]
    Syntax,
    /// A Java call without a method name.
    #[error("a call without a name")]
    NoName,
    /// A named argument given twice (its name).
    #[error("the argument `{0}` is repeated")]
    RepeatedArgument(String),
}

/// One decoded call: its name and its keyword arguments in source order (`None` for `**kw`).
#[derive(Debug, Clone)]
pub struct DecodedCall {
    /// The function name (`a.b.c`).
    pub name: String,
    /// Keyword arguments.
    pub args: Vec<(Option<String>, PyVal)>,
}

impl DecodedCall {
    /// The call as tagged JSON `{name: {param: value}}`.
    pub fn to_tagged(&self) -> serde_json::Value {
        let args = PyVal::Dict(
            self.args
                .iter()
                .map(|(k, v)| (k.clone().map_or(PyVal::None, PyVal::Str), v.clone()))
                .collect(),
        );
        let mut m = serde_json::Map::new();
        m.insert(self.name.clone(), args.to_tagged());
        serde_json::Value::Object(m)
    }
}

/// Steps 1–2 of spec §3.2: strip backticks, newlines and spaces from both ends, then make
/// sure the text starts with `[` and ends with `]`.
pub(crate) fn bracketed(text: &str) -> String {
    let s = text.trim_matches(|c| matches!(c, '`' | '\n' | ' '));
    let mut owned = String::with_capacity(s.len() + 2);
    if !s.starts_with('[') {
        owned.push('[');
    }
    owned.push_str(s);
    if !s.ends_with(']') {
        owned.push(']');
    }
    owned
}

/// Decodes raw Python-syntax model output; `Err` is a decode failure with its reason.
pub fn decode_python(text: &str) -> Result<Vec<DecodedCall>, DecodeError> {
    let owned = bracketed(text);
    let source = owned.trim().trim_matches('\'');
    let expr = parse_expr(source).map_err(DecodeError::NotPython)?;
    match expr {
        PyExpr::Call { .. } => Ok(vec![call(&expr)?]),
        PyExpr::List(items) => items.iter().map(call).collect(),
        other => Err(DecodeError::NotAList(other.render())),
    }
}

fn call(expr: &PyExpr) -> Result<DecodedCall, DecodeError> {
    let PyExpr::Call { func, kwargs, .. } = expr else {
        return Err(DecodeError::NotACall(expr.render()));
    };
    let name = callee_name(func);
    let mut args: Vec<(Option<String>, PyVal)> = Vec::new();
    for (k, v) in kwargs {
        let value = resolve(v)?;
        match args.iter_mut().find(|(existing, _)| existing == k) {
            Some(slot) => slot.1 = value,
            None => args.push((k.clone(), value)),
        }
    }
    Ok(DecodedCall { name, args })
}

/// The callee's attribute chain joined by `.`; if it does not end in a bare name, only the
/// attribute parts.
fn callee_name(func: &PyExpr) -> String {
    let mut parts = Vec::new();
    let mut cur = func;
    loop {
        match cur {
            PyExpr::Attribute(base, attr) => {
                parts.push(attr.clone());
                cur = base;
            }
            PyExpr::Name(n) => {
                parts.push(n.clone());
                break;
            }
            _ => break,
        }
    }
    parts.reverse();
    parts.join(".")
}

fn is_constant(e: &PyExpr) -> bool {
    matches!(
        e,
        PyExpr::Str(_)
            | PyExpr::Bytes(_)
            | PyExpr::Int(_)
            | PyExpr::Float(_)
            | PyExpr::Imaginary(_)
            | PyExpr::Bool(_)
            | PyExpr::None
            | PyExpr::Ellipsis
    )
}

/// The value of an argument by the table of spec §3.2.
fn resolve(e: &PyExpr) -> Result<PyVal, DecodeError> {
    Ok(match e {
        PyExpr::Ellipsis => PyVal::Str("...".into()),
        PyExpr::Unary(_, inner) if is_constant(inner) => negate(&eval(inner)?)?,
        PyExpr::Unary(..) => {
            return Err(DecodeError::UnaryOnNonConstant(e.render()));
        }
        PyExpr::List(items) => PyVal::List(items.iter().map(resolve).collect::<Result<_, _>>()?),
        PyExpr::Tuple(items) => PyVal::Tuple(items.iter().map(resolve).collect::<Result<_, _>>()?),
        PyExpr::Dict(entries) => PyVal::Dict(
            entries
                .iter()
                .map(|(k, v)| Ok((resolve(k)?, resolve(v)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        PyExpr::Binary(..) => eval(e)?,
        PyExpr::Name(n) => PyVal::Str(n.clone()),
        PyExpr::Call { kwargs, .. } if kwargs.is_empty() => PyVal::Str(e.render()),
        PyExpr::Call { .. } => {
            let c = call(e)?;
            let args = PyVal::Dict(
                c.args
                    .into_iter()
                    .map(|(k, v)| (k.map_or(PyVal::None, PyVal::Str), v))
                    .collect(),
            );
            PyVal::Dict(vec![(PyVal::Str(c.name), args)])
        }
        PyExpr::Subscript(..) => PyVal::Str(e.render()),
        PyExpr::Attribute(..) | PyExpr::Set(_) => {
            return Err(DecodeError::NotAValue(e.render()));
        }
        constant => eval(constant)?,
    })
}

/// The quirk: any unary operator on a constant yields the constant's negation.
fn negate(v: &PyVal) -> Result<PyVal, DecodeError> {
    Ok(match v {
        PyVal::Bool(b) => PyVal::Int(-i128::from(*b)),
        PyVal::Int(i) => PyVal::Int(-i),
        PyVal::Float(f) => PyVal::Float(-f),
        PyVal::Complex(re, im) => PyVal::Complex(-re, -im),
        other => {
            return Err(DecodeError::BadUnaryOperand {
                op: '-',
                ty: other.ty(),
            });
        }
    })
}

/// Python evaluation of a constant expression (`2**3`, `'a' + 'b'`, `[1] * 2`).
fn eval(e: &PyExpr) -> Result<PyVal, DecodeError> {
    Ok(match e {
        PyExpr::Str(s) => PyVal::Str(s.clone()),
        PyExpr::Bytes(b) => PyVal::Bytes(b.clone()),
        PyExpr::Int(i) => PyVal::Int(*i),
        PyExpr::Float(f) => PyVal::Float(*f),
        PyExpr::Imaginary(f) => PyVal::Complex(0.0, *f),
        PyExpr::Bool(b) => PyVal::Bool(*b),
        PyExpr::None => PyVal::None,
        PyExpr::Ellipsis => return Err(DecodeError::Ellipsis),
        PyExpr::List(items) => PyVal::List(items.iter().map(eval).collect::<Result<_, _>>()?),
        PyExpr::Tuple(items) => PyVal::Tuple(items.iter().map(eval).collect::<Result<_, _>>()?),
        PyExpr::Unary(op, inner) => {
            let v = eval(inner)?;
            match op {
                UnaryOp::Neg => negate(&v)?,
                UnaryOp::Pos => match v {
                    PyVal::Bool(b) => PyVal::Int(i128::from(b)),
                    n @ (PyVal::Int(_) | PyVal::Float(_) | PyVal::Complex(..)) => n,
                    other => {
                        return Err(DecodeError::BadUnaryOperand {
                            op: '+',
                            ty: other.ty(),
                        });
                    }
                },
                UnaryOp::Invert => match v {
                    PyVal::Bool(b) => PyVal::Int(!i128::from(b)),
                    PyVal::Int(i) => PyVal::Int(!i),
                    other => {
                        return Err(DecodeError::BadUnaryOperand {
                            op: '~',
                            ty: other.ty(),
                        });
                    }
                },
                UnaryOp::Not => PyVal::Bool(!truthy(&v)),
            }
        }
        PyExpr::Binary(op, l, r) => binary(*op, &eval(l)?, &eval(r)?)?,
        other => return Err(DecodeError::NotEvaluable(other.render())),
    })
}

fn truthy(v: &PyVal) -> bool {
    match v {
        PyVal::None => false,
        PyVal::Bool(b) => *b,
        PyVal::Int(i) => *i != 0,
        PyVal::Float(f) => *f != 0.0,
        PyVal::Complex(a, b) => *a != 0.0 || *b != 0.0,
        PyVal::Str(s) => !s.is_empty(),
        PyVal::Bytes(b) => !b.is_empty(),
        PyVal::List(x) | PyVal::Tuple(x) => !x.is_empty(),
        PyVal::Dict(x) => !x.is_empty(),
    }
}

fn int_of(v: &PyVal) -> Option<i128> {
    match v {
        PyVal::Bool(b) => Some(i128::from(*b)),
        PyVal::Int(i) => Some(*i),
        _ => None,
    }
}

fn float_of(v: &PyVal) -> Option<f64> {
    match v {
        PyVal::Float(f) => Some(*f),
        other => int_of(other).map(|i| i as f64),
    }
}

fn repeat<T: Clone>(items: &[T], n: i128) -> Vec<T> {
    let n = usize::try_from(n.max(0)).unwrap_or(0).min(1 << 20);
    items
        .iter()
        .cloned()
        .cycle()
        .take(items.len() * n)
        .collect()
}

fn binary(op: BinaryOp, a: &PyVal, b: &PyVal) -> Result<PyVal, DecodeError> {
    let overflow = || DecodeError::Arithmetic("integer overflow");
    if let (Some(x), Some(y)) = (int_of(a), int_of(b)) {
        return Ok(match op {
            BinaryOp::Add => PyVal::Int(x.checked_add(y).ok_or_else(overflow)?),
            BinaryOp::Sub => PyVal::Int(x.checked_sub(y).ok_or_else(overflow)?),
            BinaryOp::Mul => PyVal::Int(x.checked_mul(y).ok_or_else(overflow)?),
            BinaryOp::Div => {
                if y == 0 {
                    return Err(DecodeError::Arithmetic("division by zero"));
                }
                PyVal::Float(x as f64 / y as f64)
            }
            BinaryOp::FloorDiv => {
                if y == 0 {
                    return Err(DecodeError::Arithmetic("integer division by zero"));
                }
                PyVal::Int(x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0))
            }
            BinaryOp::Mod => {
                if y == 0 {
                    return Err(DecodeError::Arithmetic("integer modulo by zero"));
                }
                let m = x.rem_euclid(y);
                PyVal::Int(if y < 0 && m != 0 { m + y } else { m })
            }
            BinaryOp::Pow => {
                if y >= 0 {
                    let e = u32::try_from(y).map_err(|_| overflow())?;
                    PyVal::Int(x.checked_pow(e).ok_or_else(overflow)?)
                } else {
                    if x == 0 {
                        return Err(DecodeError::Arithmetic(
                            "0 cannot be raised to a negative power",
                        ));
                    }
                    PyVal::Float((x as f64).powf(y as f64))
                }
            }
        });
    }
    if let (Some(x), Some(y)) = (float_of(a), float_of(b)) {
        return Ok(PyVal::Float(match op {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => {
                if y == 0.0 {
                    return Err(DecodeError::Arithmetic("float division by zero"));
                }
                x / y
            }
            BinaryOp::FloorDiv => {
                if y == 0.0 {
                    return Err(DecodeError::Arithmetic("float floor division by zero"));
                }
                (x / y).floor()
            }
            BinaryOp::Mod => {
                if y == 0.0 {
                    return Err(DecodeError::Arithmetic("float modulo"));
                }
                let m = x % y;
                if m != 0.0 && (m < 0.0) != (y < 0.0) {
                    m + y
                } else {
                    m
                }
            }
            BinaryOp::Pow => x.powf(y),
        }));
    }
    Ok(match (op, a, b) {
        (BinaryOp::Add, PyVal::Str(x), PyVal::Str(y)) => PyVal::Str(format!("{x}{y}")),
        (BinaryOp::Add, PyVal::List(x), PyVal::List(y)) => {
            PyVal::List(x.iter().chain(y).cloned().collect())
        }
        (BinaryOp::Add, PyVal::Tuple(x), PyVal::Tuple(y)) => {
            PyVal::Tuple(x.iter().chain(y).cloned().collect())
        }
        (BinaryOp::Mul, PyVal::Str(s), n) | (BinaryOp::Mul, n, PyVal::Str(s))
            if int_of(n).is_some() =>
        {
            PyVal::Str(
                s.repeat(
                    usize::try_from(int_of(n).unwrap_or(0).max(0))
                        .unwrap_or(0)
                        .min(1 << 20),
                ),
            )
        }
        (BinaryOp::Mul, PyVal::List(l), n) | (BinaryOp::Mul, n, PyVal::List(l))
            if int_of(n).is_some() =>
        {
            PyVal::List(repeat(l, int_of(n).unwrap_or(0)))
        }
        (BinaryOp::Mul, PyVal::Tuple(l), n) | (BinaryOp::Mul, n, PyVal::Tuple(l))
            if int_of(n).is_some() =>
        {
            PyVal::Tuple(repeat(l, int_of(n).unwrap_or(0)))
        }
        (BinaryOp::Mod, PyVal::Str(_), _) => {
            return Err(DecodeError::StringFormatting);
        }
        _ => {
            return Err(DecodeError::UnsupportedOperands {
                op,
                left: a.ty(),
                right: b.ty(),
            });
        }
    })
}
