//! A small arithmetic evaluator for the `calculator` demo tool.

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

/// Why an expression has no value; its text is a sentence for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// A character that cannot come next.
    #[error("unexpected `{found}` at position {pos} of `{expr}`")]
    Unexpected {
        /// The character.
        found: char,
        /// Its byte offset.
        pos: usize,
        /// The whole expression.
        expr: String,
    },
    /// The value is infinite or NaN.
    #[error("`{expr}` has no finite value (division by zero?)")]
    NotFinite {
        /// The whole expression.
        expr: String,
    },
    /// Parentheses, powers or signs nest deeper than the evaluator follows.
    #[error("the expression is nested too deeply")]
    TooDeep,
    /// A `(` has no `)`.
    #[error("a `(` is not closed")]
    UnclosedParen,
    /// A function call has no `)`.
    #[error("`{name}(` is not closed")]
    UnclosedCall {
        /// The function's name.
        name: String,
    },
    /// A name that is neither a constant nor followed by `(`.
    #[error(
        "unknown name `{name}`; use numbers, + - * / % ^, parentheses, sqrt, abs, round, min, max, pi"
    )]
    UnknownName {
        /// The name.
        name: String,
    },
    /// A function that does not exist, or not with this many arguments.
    #[error("unknown function `{name}` with {arity} argument(s)")]
    UnknownFunction {
        /// The function's name.
        name: String,
        /// How many arguments it was given.
        arity: usize,
    },
    /// Something other than a number where a number must be.
    #[error("expected a number at position {pos}, found `{found}`")]
    ExpectedNumber {
        /// Its byte offset.
        pos: usize,
        /// The character found.
        found: char,
    },
    /// The expression ended where a number must be.
    #[error("the expression ended where a number was expected")]
    EndedEarly,
    /// Digits that do not make a number.
    #[error("`{text}` is not a number")]
    BadNumber {
        /// The digits, without `_`.
        text: String,
    },
}

/// Evaluates `expr`; the error is a sentence for the model.
pub fn eval(expr: &str) -> Result<f64, CalcError> {
    let mut p = Calc {
        s: expr.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let v = p.sum()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(CalcError::Unexpected {
            found: p.s[p.pos] as char,
            pos: p.pos,
            expr: expr.to_owned(),
        });
    }
    if !v.is_finite() {
        return Err(CalcError::NotFinite {
            expr: expr.to_owned(),
        });
    }
    Ok(v)
}

struct Calc<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Calc<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<f64, CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::TooDeep);
        }
        let mut v = self.product()?;
        loop {
            if self.eat(b'+') {
                v += self.product()?;
            } else if self.eat(b'-') {
                v -= self.product()?;
            } else {
                self.depth -= 1;
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<f64, CalcError> {
        let mut v = self.power()?;
        loop {
            if self.eat(b'*') {
                v *= self.power()?;
            } else if self.eat(b'/') {
                v /= self.power()?;
            } else if self.eat(b'%') {
                v %= self.power()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.unary()?;
        if self.eat(b'^') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(CalcError::TooDeep);
            }
            let exp = self.power()?;
            self.depth -= 1;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        if self.eat(b'-') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(CalcError::TooDeep);
            }
            let v = -self.unary()?;
            self.depth -= 1;
            return Ok(v);
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<f64, CalcError> {
        self.ws();
        if self.eat(b'(') {
            let v = self.sum()?;
            if !self.eat(b')') {
                return Err(CalcError::UnclosedParen);
            }
            return Ok(v);
        }
        let start = self.pos;
        if self.s.get(self.pos).is_some_and(u8::is_ascii_alphabetic) {
            while self.s.get(self.pos).is_some_and(u8::is_ascii_alphanumeric) {
                self.pos += 1;
            }
            let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
            if name == "pi" {
                return Ok(std::f64::consts::PI);
            }
            if !self.eat(b'(') {
                return Err(CalcError::UnknownName { name: name.into() });
            }
            let mut args = vec![self.sum()?];
            while self.eat(b',') {
                args.push(self.sum()?);
            }
            if !self.eat(b')') {
                return Err(CalcError::UnclosedCall { name: name.into() });
            }
            return match (name, args.as_slice()) {
                ("sqrt", [x]) => Ok(x.sqrt()),
                ("abs", [x]) => Ok(x.abs()),
                ("round", [x]) => Ok(x.round()),
                ("min", [a, rest @ ..]) => Ok(rest.iter().fold(*a, |m, x| m.min(*x))),
                ("max", [a, rest @ ..]) => Ok(rest.iter().fold(*a, |m, x| m.max(*x))),
                _ => Err(CalcError::UnknownFunction {
                    name: name.into(),
                    arity: args.len(),
                }),
            };
        }
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'.' || *c == b'_')
        {
            self.pos += 1;
        }
        if matches!(self.s.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.s.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                self.pos += 1;
            }
        }
        let text: String = std::str::from_utf8(&self.s[start..self.pos])
            .unwrap_or("")
            .replace('_', "");
        if text.is_empty() {
            return Err(match self.s.get(self.pos) {
                Some(c) => CalcError::ExpectedNumber {
                    pos: self.pos,
                    found: *c as char,
                },
                None => CalcError::EndedEarly,
            });
        }
        text.parse().map_err(|_| CalcError::BadNumber { text })
    }
}

#[cfg(test)]
mod tests {
    use super::eval;

    #[test]
    fn arithmetic() {
        assert_eq!(eval("1 + 2 * 3").unwrap(), 7.0);
        assert_eq!(eval("-2 ^ 2").unwrap(), 4.0);
        assert_eq!(eval("2 ^ 3 ^ 2").unwrap(), 512.0);
        assert_eq!(eval("max(1, sqrt(16), 3) - abs(-1)").unwrap(), 3.0);
        assert_eq!(eval("18 - 3").unwrap(), 15.0);
        assert!(eval("1 / 0").unwrap_err().to_string().contains("finite"));
        assert!(eval("2 +").unwrap_err().to_string().contains("ended"));
        assert!(
            eval("foo(1)")
                .unwrap_err()
                .to_string()
                .contains("unknown function")
        );
        assert!(
            eval(&"(".repeat(1000))
                .unwrap_err()
                .to_string()
                .contains("too deeply")
        );
        assert_eq!(
            eval("2 $ 3").unwrap_err().to_string(),
            "unexpected `$` at position 2 of `2 $ 3`"
        );
    }
}
