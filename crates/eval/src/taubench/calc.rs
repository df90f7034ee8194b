//! `calculate`'s evaluator: Python arithmetic over `+ - * / // ** ( )` and number literals,
//! with Python's int/float rules and error messages.

use super::pyjson::Num;

/// Evaluates `expr` as Python would (`eval` of an arithmetic expression).
pub(crate) fn eval(expr: &str) -> Result<Num, String> {
    let tokens = lex(expr)?;
    let mut p = Parser { tokens, at: 0 };
    let value = p.expr()?;
    if p.at != p.tokens.len() {
        return Err(SYNTAX.into());
    }
    Ok(value)
}

const SYNTAX: &str = "invalid syntax (<string>, line 1)";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Num(Num),
    Op(&'static str),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' => i += 1,
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let lit = &s[start..i];
                if lit.matches('.').count() > 1 || lit == "." {
                    return Err(SYNTAX.into());
                }
                if lit.contains('.') {
                    out.push(Tok::Num(Num::Float(lit.parse().map_err(|_| SYNTAX)?)));
                } else if lit.len() > 1 && lit.starts_with('0') && lit.bytes().any(|d| d != b'0') {
                    return Err(
                        "leading zeros in decimal integer literals are not permitted; \
                                use an 0o prefix for octal integers (<string>, line 1)"
                            .into(),
                    );
                } else {
                    out.push(Tok::Num(match lit.parse::<i64>() {
                        Ok(n) => Num::Int(n),
                        Err(_) => Num::Float(lit.parse().map_err(|_| SYNTAX)?),
                    }));
                }
            }
            _ => {
                let two = s.get(i..i + 2);
                let op = match (c, two) {
                    (_, Some("**")) => "**",
                    (_, Some("//")) => "//",
                    (b'+', _) => "+",
                    (b'-', _) => "-",
                    (b'*', _) => "*",
                    (b'/', _) => "/",
                    (b'(', _) => "(",
                    (b')', _) => ")",
                    _ => return Err(SYNTAX.into()),
                };
                i += op.len();
                out.push(Tok::Op(op));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<Tok> {
        self.tokens.get(self.at).copied()
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(Tok::Op(op_static(op))) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Num, String> {
        let mut acc = self.term()?;
        loop {
            if self.eat("+") {
                acc = acc + self.term()?;
            } else if self.eat("-") {
                acc = acc - self.term()?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn term(&mut self) -> Result<Num, String> {
        let mut acc = self.factor()?;
        loop {
            if self.eat("*") {
                acc = mul(acc, self.factor()?);
            } else if self.eat("//") {
                acc = floor_div(acc, self.factor()?)?;
            } else if self.eat("/") {
                acc = div(acc, self.factor()?)?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn factor(&mut self) -> Result<Num, String> {
        if self.eat("+") {
            self.factor()
        } else if self.eat("-") {
            Ok(match self.factor()? {
                Num::Int(i) => i.checked_neg().map_or(Num::Float(-(i as f64)), Num::Int),
                Num::Float(f) => Num::Float(-f),
            })
        } else {
            self.power()
        }
    }

    fn power(&mut self) -> Result<Num, String> {
        let base = self.atom()?;
        if self.eat("**") {
            pow(base, self.factor()?)
        } else {
            Ok(base)
        }
    }

    fn atom(&mut self) -> Result<Num, String> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                self.at += 1;
                Ok(n)
            }
            Some(Tok::Op("(")) => {
                self.at += 1;
                let v = self.expr()?;
                if !self.eat(")") {
                    return Err(SYNTAX.into());
                }
                Ok(v)
            }
            _ => Err(SYNTAX.into()),
        }
    }
}

fn op_static(op: &str) -> &'static str {
    ["+", "-", "*", "/", "//", "**", "(", ")"]
        .into_iter()
        .find(|o| *o == op)
        .unwrap_or("")
}

fn mul(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x
            .checked_mul(y)
            .map_or(Num::Float(x as f64 * y as f64), Num::Int),
        (x, y) => Num::Float(x.f64() * y.f64()),
    }
}

fn div(a: Num, b: Num) -> Result<Num, String> {
    if b.f64() == 0.0 {
        return Err(match (a, b) {
            (Num::Int(_), Num::Int(_)) => "division by zero",
            _ => "float division by zero",
        }
        .into());
    }
    Ok(Num::Float(a.f64() / b.f64()))
}

fn floor_div(a: Num, b: Num) -> Result<Num, String> {
    match (a, b) {
        (Num::Int(_), Num::Int(0)) => Err("integer division or modulo by zero".into()),
        (Num::Int(x), Num::Int(y)) => Ok(Num::Int(
            x.div_euclid(y) - i64::from(y < 0 && x.rem_euclid(y) != 0),
        )),
        (_, y) if y.f64() == 0.0 => Err("float floor division by zero".into()),
        (x, y) => Ok(Num::Float((x.f64() / y.f64()).floor())),
    }
}

fn pow(a: Num, b: Num) -> Result<Num, String> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) if y >= 0 => Ok(u32::try_from(y)
            .ok()
            .and_then(|y| x.checked_pow(y))
            .map_or(Num::Float((x as f64).powf(y as f64)), Num::Int)),
        (x, _) if x.f64() == 0.0 && b.f64() < 0.0 => {
            Err("0.0 cannot be raised to a negative power".into())
        }
        (x, y) => Ok(Num::Float(x.f64().powf(y.f64()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Result<f64, String> {
        eval(s).map(Num::f64)
    }

    #[test]
    fn python_arithmetic() {
        assert_eq!(eval("2 + 3 * 4"), Ok(Num::Int(14)));
        assert_eq!(eval("7 / 2"), Ok(Num::Float(3.5)));
        assert_eq!(eval("7 // 2"), Ok(Num::Int(3)));
        assert_eq!(eval("-7 // 2"), Ok(Num::Int(-4)));
        assert_eq!(eval("7 // -2"), Ok(Num::Int(-4)));
        assert_eq!(eval("2 ** 10"), Ok(Num::Int(1024)));
        assert_eq!(eval("-2 ** 2"), Ok(Num::Int(-4)));
        assert_eq!(eval("2 ** -1"), Ok(Num::Float(0.5)));
        assert_eq!(eval("2 ** 3 ** 2"), Ok(Num::Int(512)));
        assert_eq!(f("(1.5 + .5) * 3."), Ok(6.0));
        assert_eq!(f("100 - 15.5 * 2"), Ok(69.0));
        assert_eq!(eval("1 / 0"), Err("division by zero".into()));
        assert_eq!(eval("1.0 / 0"), Err("float division by zero".into()));
        assert_eq!(
            eval("1 // 0"),
            Err("integer division or modulo by zero".into())
        );
        for bad in ["", "2 +", "(1", "1)", "1..2", "2 3", "*2"] {
            assert!(eval(bad).is_err(), "{bad:?}");
        }
    }
}
