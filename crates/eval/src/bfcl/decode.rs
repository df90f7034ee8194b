//! BFCL's decoder for Python call syntax (spec §3.2): raw model text → calls.
//!
//! Faithful to the upstream quirks on purpose: positional arguments are dropped, a unary
//! operator on a constant negates it (`+5` → -5, `not True` → -1), bare names become strings,
//! binary operations are evaluated, and a fence with a language tag fails.

use agentry_parse::python::{BinaryOp, PyExpr, UnaryOp, parse_expr};

use super::value::PyVal;

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
pub fn decode_python(text: &str) -> Result<Vec<DecodedCall>, String> {
    let owned = bracketed(text);
    let source = owned.trim().trim_matches('\'');
    let expr = parse_expr(source).map_err(|e| format!("not a Python expression: {e}"))?;
    match expr {
        PyExpr::Call { .. } => Ok(vec![call(&expr)?]),
        PyExpr::List(items) => items.iter().map(call).collect(),
        other => Err(format!(
            "expected a list of calls, got `{}`",
            other.render()
        )),
    }
}

fn call(expr: &PyExpr) -> Result<DecodedCall, String> {
    let PyExpr::Call { func, kwargs, .. } = expr else {
        return Err(format!("`{}` is not a call", expr.render()));
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
fn resolve(e: &PyExpr) -> Result<PyVal, String> {
    Ok(match e {
        PyExpr::Ellipsis => PyVal::Str("...".into()),
        PyExpr::Unary(_, inner) if is_constant(inner) => negate(&eval(inner)?)?,
        PyExpr::Unary(..) => {
            return Err(format!(
                "`{}`: a unary operator on a non-constant",
                e.render()
            ));
        }
        PyExpr::List(items) => PyVal::List(items.iter().map(resolve).collect::<Result<_, _>>()?),
        PyExpr::Tuple(items) => PyVal::Tuple(items.iter().map(resolve).collect::<Result<_, _>>()?),
        PyExpr::Dict(entries) => PyVal::Dict(
            entries
                .iter()
                .map(|(k, v)| Ok((resolve(k)?, resolve(v)?)))
                .collect::<Result<_, String>>()?,
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
            return Err(format!(
                "`{}` is not a value the decoder accepts",
                e.render()
            ));
        }
        constant => eval(constant)?,
    })
}

/// The quirk: any unary operator on a constant yields the constant's negation.
fn negate(v: &PyVal) -> Result<PyVal, String> {
    Ok(match v {
        PyVal::Bool(b) => PyVal::Int(-i128::from(*b)),
        PyVal::Int(i) => PyVal::Int(-i),
        PyVal::Float(f) => PyVal::Float(-f),
        PyVal::Complex(re, im) => PyVal::Complex(-re, -im),
        other => return Err(format!("bad operand type for unary -: {:?}", other.ty())),
    })
}

/// Python evaluation of a constant expression (`2**3`, `'a' + 'b'`, `[1] * 2`).
fn eval(e: &PyExpr) -> Result<PyVal, String> {
    Ok(match e {
        PyExpr::Str(s) => PyVal::Str(s.clone()),
        PyExpr::Bytes(b) => PyVal::Bytes(b.clone()),
        PyExpr::Int(i) => PyVal::Int(*i),
        PyExpr::Float(f) => PyVal::Float(*f),
        PyExpr::Imaginary(f) => PyVal::Complex(0.0, *f),
        PyExpr::Bool(b) => PyVal::Bool(*b),
        PyExpr::None => PyVal::None,
        PyExpr::Ellipsis => return Err("`...` in an expression".into()),
        PyExpr::List(items) => PyVal::List(items.iter().map(eval).collect::<Result<_, _>>()?),
        PyExpr::Tuple(items) => PyVal::Tuple(items.iter().map(eval).collect::<Result<_, _>>()?),
        PyExpr::Unary(op, inner) => {
            let v = eval(inner)?;
            match op {
                UnaryOp::Neg => negate(&v)?,
                UnaryOp::Pos => match v {
                    PyVal::Bool(b) => PyVal::Int(i128::from(b)),
                    n @ (PyVal::Int(_) | PyVal::Float(_) | PyVal::Complex(..)) => n,
                    other => return Err(format!("bad operand type for unary +: {:?}", other.ty())),
                },
                UnaryOp::Invert => match v {
                    PyVal::Bool(b) => PyVal::Int(!i128::from(b)),
                    PyVal::Int(i) => PyVal::Int(!i),
                    other => return Err(format!("bad operand type for unary ~: {:?}", other.ty())),
                },
                UnaryOp::Not => PyVal::Bool(!truthy(&v)),
            }
        }
        PyExpr::Binary(op, l, r) => binary(*op, &eval(l)?, &eval(r)?)?,
        other => return Err(format!("`{}` cannot be evaluated", other.render())),
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

fn binary(op: BinaryOp, a: &PyVal, b: &PyVal) -> Result<PyVal, String> {
    let overflow = || "integer overflow".to_owned();
    if let (Some(x), Some(y)) = (int_of(a), int_of(b)) {
        return Ok(match op {
            BinaryOp::Add => PyVal::Int(x.checked_add(y).ok_or_else(overflow)?),
            BinaryOp::Sub => PyVal::Int(x.checked_sub(y).ok_or_else(overflow)?),
            BinaryOp::Mul => PyVal::Int(x.checked_mul(y).ok_or_else(overflow)?),
            BinaryOp::Div => {
                if y == 0 {
                    return Err("division by zero".into());
                }
                PyVal::Float(x as f64 / y as f64)
            }
            BinaryOp::FloorDiv => {
                if y == 0 {
                    return Err("integer division by zero".into());
                }
                PyVal::Int(x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0))
            }
            BinaryOp::Mod => {
                if y == 0 {
                    return Err("integer modulo by zero".into());
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
                        return Err("0 cannot be raised to a negative power".into());
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
                    return Err("float division by zero".into());
                }
                x / y
            }
            BinaryOp::FloorDiv => {
                if y == 0.0 {
                    return Err("float floor division by zero".into());
                }
                (x / y).floor()
            }
            BinaryOp::Mod => {
                if y == 0.0 {
                    return Err("float modulo".into());
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
            return Err("string formatting is not evaluated".into());
        }
        _ => {
            return Err(format!(
                "unsupported operand types for {op:?}: {:?} and {:?}",
                a.ty(),
                b.ty()
            ));
        }
    })
}
