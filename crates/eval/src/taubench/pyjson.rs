//! Python-compatible text: `json.dumps` with its defaults, float `repr`, and `round(x, 2)`.
//!
//! τ-bench tools return `json.dumps(record)`; a port that wants the model to read the same
//! bytes (and the replay to match the reference byte for byte) must print JSON the way
//! Python does: `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`, keys in
//! insertion order, floats in `repr` form (`100.0`, `1e-05`, `1e+16`).

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// `json.dumps(value)` with Python's defaults.
pub fn dumps(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        out.push_str(&float_repr(n.as_f64().unwrap_or(f64::NAN)));
    }
}

/// A string literal as `json.dumps` writes it (`ensure_ascii=True`).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for
/// decimal exponents from -5 to 15 and in scientific notation (`1e-05`, `1.5e+16`) outside.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-6.6385e2", "1e16", "5e-1".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            format!(
                "{sign}0.{}{digits}",
                "0".repeat(point.unsigned_abs() as usize)
            )
        } else if point as usize >= digits.len() {
            format!(
                "{sign}{digits}{}.0",
                "0".repeat(point as usize - digits.len())
            )
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{rest}e{esign}{:02}", exp.unsigned_abs())
    }
}

/// Python's `round(x, 2)` for a float: the exact binary value rounded half-even to two
/// decimals, read back as the nearest float.
pub fn round2(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.2}").parse().unwrap_or(x)
}

/// A JSON number with Python's int/float distinction and arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Num {
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl Num {
    /// The number in `value`, if it is one.
    pub fn of(value: &Value) -> Option<Self> {
        let n = value.as_number()?;
        Some(match n.as_i64() {
            Some(i) => Self::Int(i),
            None => Self::Float(n.as_f64()?),
        })
    }

    /// As a float.
    pub fn f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }

    /// `abs(self)`.
    #[must_use]
    pub fn abs(self) -> Self {
        match self {
            Self::Int(i) => Self::Int(i.saturating_abs()),
            Self::Float(f) => Self::Float(f.abs()),
        }
    }

    /// `round(self, 2)`: an int stays an int.
    #[must_use]
    pub fn round2(self) -> Self {
        match self {
            Self::Int(i) => Self::Int(i),
            Self::Float(f) => Self::Float(round2(f)),
        }
    }

    /// Whether `self < other`, comparing values across kinds as Python does.
    pub fn lt(self, other: Self) -> bool {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a < b,
            (a, b) => a.f64() < b.f64(),
        }
    }

    /// Whether `self > 0`.
    pub fn is_positive(self) -> bool {
        self.f64() > 0.0
    }

    /// As a JSON value of the same kind.
    pub fn to_value(self) -> Value {
        match self {
            Self::Int(i) => Value::from(i),
            Self::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }
}

/// Python's `+`: an int only when both are.
impl std::ops::Add for Num {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a
                .checked_add(b)
                .map_or(Self::Float(a as f64 + b as f64), Self::Int),
            (a, b) => Self::Float(a.f64() + b.f64()),
        }
    }
}

/// Python's `-`: an int only when both are.
impl std::ops::Sub for Num {
    type Output = Self;

    fn sub(self, other: Self) -> Self {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a
                .checked_sub(b)
                .map_or(Self::Float(a as f64 - b as f64), Self::Int),
            (a, b) => Self::Float(a.f64() - b.f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (100.0, "100.0"),
            (663.85, "663.85"),
            (0.04999999999999716, "0.04999999999999716"),
            (-2.5, "-2.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (123456789012345.6, "123456789012345.6"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x:?}");
        }
    }

    #[test]
    fn round_is_half_even_on_the_exact_binary_value() {
        assert_eq!(round2(0.125), 0.12); // exactly representable tie: even
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(2.675), 2.67); // 2.67499999… in binary
        assert_eq!(round2(1.005), 1.0);
        assert_eq!(round2(8276.2349), 8276.23);
        assert_eq!(round2(-1.555), -1.55); // -1.55499999…
    }

    #[test]
    fn dumps_matches_python() {
        let v = json!({"b": 1, "a": [1.0, "é\"\n", null, true, {}], "c": "😀\u{7f}"});
        assert_eq!(
            dumps(&v),
            r#"{"b": 1, "a": [1.0, "\u00e9\"\n", null, true, {}], "c": "\ud83d\ude00\u007f"}"#
        );
    }

    #[test]
    fn numbers_keep_the_int_float_distinction() {
        let (i, f) = (Num::Int(60), Num::Float(12.5));
        assert_eq!((i + Num::Int(40)).round2().to_value(), json!(100));
        assert_eq!((i + f).round2().to_value(), json!(72.5));
        assert_eq!(Num::of(&json!(100.0)), Some(Num::Float(100.0)));
        assert_ne!(json!(100), json!(100.0));
        assert!(i.lt(Num::Float(60.5)));
    }
}
