//! Python values as the BFCL checker sees them: [`PyVal`], Python equality, and the
//! tagged-JSON form of the conformance vectors.

use serde_json::{Map, Value};

/// A Python value, with the exact runtime type the checker compares (`bool` is not `int`,
/// `int` is not `float`, a tuple is not a list).
#[derive(Debug, Clone)]
pub enum PyVal {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int`.
    Int(i128),
    /// A `float`.
    Float(f64),
    /// A `complex`.
    Complex(f64, f64),
    /// A `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<PyVal>),
    /// A `tuple`.
    Tuple(Vec<PyVal>),
    /// A `dict`, in insertion order.
    Dict(Vec<(PyVal, PyVal)>),
}

/// The exact type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyType {
    /// `NoneType`
    None,
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `complex`
    Complex,
    /// `str`
    Str,
    /// `bytes`
    Bytes,
    /// `list`
    List,
    /// `tuple`
    Tuple,
    /// `dict`
    Dict,
}

impl PyVal {
    /// Its exact type.
    pub fn ty(&self) -> PyType {
        match self {
            Self::None => PyType::None,
            Self::Bool(_) => PyType::Bool,
            Self::Int(_) => PyType::Int,
            Self::Float(_) => PyType::Float,
            Self::Complex(..) => PyType::Complex,
            Self::Str(_) => PyType::Str,
            Self::Bytes(_) => PyType::Bytes,
            Self::List(_) => PyType::List,
            Self::Tuple(_) => PyType::Tuple,
            Self::Dict(_) => PyType::Dict,
        }
    }

    /// The value as a number on Python's numeric tower (bool, int, float), if it is one.
    fn number(&self) -> Option<Num> {
        match self {
            Self::Bool(b) => Some(Num::Int(i128::from(*b))),
            Self::Int(i) => Some(Num::Int(*i)),
            Self::Float(f) => Some(Num::Float(*f)),
            _ => None,
        }
    }

    /// Python `==`.
    pub fn py_eq(&self, other: &PyVal) -> bool {
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return match (a, b) {
                (Num::Int(x), Num::Int(y)) => x == y,
                (Num::Int(x), Num::Float(y)) | (Num::Float(y), Num::Int(x)) => {
                    (x as f64) == y && y.fract() == 0.0 && y.is_finite()
                }
                (Num::Float(x), Num::Float(y)) => x == y,
            };
        }
        match (self, other) {
            (Self::None, Self::None) => true,
            (Self::Str(a), Self::Str(b)) => a == b,
            (Self::Bytes(a), Self::Bytes(b)) => a == b,
            (Self::Complex(a, b), Self::Complex(c, d)) => a == c && b == d,
            (Self::Complex(re, im), x) | (x, Self::Complex(re, im)) => {
                *im == 0.0 && x.number().is_some_and(|n| n.as_f64() == *re)
            }
            (Self::List(a), Self::List(b)) | (Self::Tuple(a), Self::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (Self::Dict(a), Self::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k.py_eq(k2) && v.py_eq(v2)))
            }
            _ => false,
        }
    }

    /// Whether Python's `in` finds `self` in `items`.
    pub fn is_in(&self, items: &[PyVal]) -> bool {
        items.iter().any(|c| self.py_eq(c))
    }

    /// The string, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Reads tagged JSON (`{"__tuple__": …}` and the other tags of the conformance vectors).
    pub fn from_tagged(v: &Value) -> PyVal {
        match v {
            Value::Null => Self::None,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Self::Int(i128::from(i)),
                (None, Some(u)) => Self::Int(i128::from(u)),
                _ => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Self::Str(s.clone()),
            Value::Array(items) => Self::List(items.iter().map(Self::from_tagged).collect()),
            Value::Object(m) => {
                if m.len() == 1 {
                    let (k, inner) = m
                        .iter()
                        .next()
                        .map(|(k, v)| (k.as_str(), v))
                        .unwrap_or(("", &Value::Null));
                    match (k, inner) {
                        ("__tuple__", Value::Array(items)) => {
                            return Self::Tuple(items.iter().map(Self::from_tagged).collect());
                        }
                        ("__dict_items__", Value::Array(pairs)) => {
                            return Self::Dict(
                                pairs
                                    .iter()
                                    .filter_map(|p| match p {
                                        Value::Array(kv) if kv.len() == 2 => Some((
                                            Self::from_tagged(&kv[0]),
                                            Self::from_tagged(&kv[1]),
                                        )),
                                        _ => None,
                                    })
                                    .collect(),
                            );
                        }
                        ("__bytes__", Value::Array(b)) => {
                            return Self::Bytes(
                                b.iter()
                                    .filter_map(|x| x.as_u64().map(|x| x as u8))
                                    .collect(),
                            );
                        }
                        ("__complex__", Value::Array(c)) if c.len() == 2 => {
                            return Self::Complex(
                                c[0].as_f64().unwrap_or(0.0),
                                c[1].as_f64().unwrap_or(0.0),
                            );
                        }
                        ("__float__", Value::String(s)) => {
                            return Self::Float(match s.as_str() {
                                "inf" => f64::INFINITY,
                                "-inf" => f64::NEG_INFINITY,
                                _ => f64::NAN,
                            });
                        }
                        _ => {}
                    }
                }
                Self::Dict(
                    m.iter()
                        .map(|(k, v)| (Self::Str(k.clone()), Self::from_tagged(v)))
                        .collect(),
                )
            }
        }
    }

    /// Writes tagged JSON (the inverse of [`PyVal::from_tagged`]).
    pub fn to_tagged(&self) -> Value {
        match self {
            Self::None => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => i64::try_from(*i).map_or_else(|_| Value::from(*i as f64), Value::from),
            Self::Float(f) if f.is_finite() => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            Self::Float(f) => {
                let s = if f.is_nan() {
                    "nan"
                } else if *f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                serde_json::json!({"__float__": s})
            }
            Self::Complex(re, im) => serde_json::json!({"__complex__": [re, im]}),
            Self::Str(s) => Value::String(s.clone()),
            Self::Bytes(b) => serde_json::json!({"__bytes__": b}),
            Self::List(items) => Value::Array(items.iter().map(Self::to_tagged).collect()),
            Self::Tuple(items) => {
                serde_json::json!({"__tuple__": items.iter().map(Self::to_tagged).collect::<Vec<_>>()})
            }
            Self::Dict(entries) => {
                if entries.iter().all(|(k, _)| matches!(k, Self::Str(_))) {
                    let mut m = Map::new();
                    for (k, v) in entries {
                        if let Self::Str(k) = k {
                            m.insert(k.clone(), v.to_tagged());
                        }
                    }
                    Value::Object(m)
                } else {
                    serde_json::json!({"__dict_items__": entries.iter().map(|(k, v)| serde_json::json!([k.to_tagged(), v.to_tagged()])).collect::<Vec<_>>()})
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

/// BFCL's string standardization: delete ` ,./-_*^`, lowercase, `'` → `"`.
pub fn standardize(s: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | ',' | '.' | '/' | '-' | '_' | '*' | '^'))
        .collect();
    kept.to_lowercase().replace('\'', "\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_equality() {
        let t = |v: Value| PyVal::from_tagged(&v);
        assert!(t(json!(true)).py_eq(&t(json!(1))));
        assert!(t(json!(2)).py_eq(&t(json!(2.0))));
        assert!(!t(json!([1, 2])).py_eq(&t(json!({"__tuple__": [1, 2]}))));
        assert!(t(json!({"a": [1, 2.5]})).py_eq(&t(json!({"a": [1.0, 2.5]}))));
        assert!(!t(json!({"__float__": "nan"})).py_eq(&t(json!({"__float__": "nan"}))));
        assert!(!t(json!("1")).py_eq(&t(json!(1))));
        assert_eq!(standardize("New York, NY"), standardize("new-york ny."));
        assert_ne!(standardize("10:00"), standardize("1000"));
        assert_eq!(standardize("It's"), "it\"s");
    }
}
