//! A small arithmetic evaluator for the `calculator` demo tool.

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

/// Evaluates `expr`; the error is a sentence for the model.
pub fn eval(expr: &str) -> Result<f64, String> {
    let mut p = Calc {
        s: expr.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let v = p.sum()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(format!(
            "unexpected `{}` at position {} of `{expr}`",
            p.s[p.pos] as char, p.pos
        ));
    }
    if !v.is_finite() {
        return Err(format!("`{expr}` has no finite value (division by zero?)"));
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

    fn sum(&mut self) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("the expression is nested too deeply".into());
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

    fn product(&mut self) -> Result<f64, String> {
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

    fn power(&mut self) -> Result<f64, String> {
        let base = self.unary()?;
        if self.eat(b'^') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("the expression is nested too deeply".into());
            }
            let exp = self.power()?;
            self.depth -= 1;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.eat(b'-') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("the expression is nested too deeply".into());
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

    fn atom(&mut self) -> Result<f64, String> {
        self.ws();
        if self.eat(b'(') {
            let v = self.sum()?;
            if !self.eat(b')') {
                return Err("a `(` is not closed".into());
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
                return Err(format!(
                    "unknown name `{name}`; use numbers, + - * / % ^, parentheses, sqrt, abs, round, min, max, pi"
                ));
            }
            let mut args = vec![self.sum()?];
            while self.eat(b',') {
                args.push(self.sum()?);
            }
            if !self.eat(b')') {
                return Err(format!("`{name}(` is not closed"));
            }
            return match (name, args.as_slice()) {
                ("sqrt", [x]) => Ok(x.sqrt()),
                ("abs", [x]) => Ok(x.abs()),
                ("round", [x]) => Ok(x.round()),
                ("min", [a, rest @ ..]) => Ok(rest.iter().fold(*a, |m, x| m.min(*x))),
                ("max", [a, rest @ ..]) => Ok(rest.iter().fold(*a, |m, x| m.max(*x))),
                _ => Err(format!(
                    "unknown function `{name}` with {} argument(s)",
                    args.len()
                )),
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
                Some(c) => format!(
                    "expected a number at position {}, found `{}`",
                    self.pos, *c as char
                ),
                None => "the expression ended where a number was expected".into(),
            });
        }
        text.parse()
            .map_err(|_| format!("`{text}` is not a number"))
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
        assert!(eval("1 / 0").unwrap_err().contains("finite"));
        assert!(eval("2 +").unwrap_err().contains("ended"));
        assert!(eval("foo(1)").unwrap_err().contains("unknown function"));
        assert!(eval(&"(".repeat(1000)).unwrap_err().contains("too deeply"));
    }
}
