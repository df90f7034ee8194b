//! Reading JSON the way models write it: [`parse_lenient`].
//!
//! Strict JSON goes through `serde_json` (fast); only text it rejects comes here. This
//! reader accepts single quotes, unquoted keys, trailing commas, Python's `True`/`False`/
//! `None`, raw control characters in strings and loose number forms, and records a
//! [`Repair`] for each kind of fix so the caller can say what it changed.

use std::collections::BTreeSet;

use serde_json::{Map, Number, Value};

use crate::Repair;

/// Deepest nesting accepted, the same as `serde_json`'s default limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// Parses `text` as strict JSON, or failing that as model-style JSON with repairs.
pub(crate) fn parse_json(text: &str) -> Result<(Value, BTreeSet<Repair>), String> {
    if let Some(v) = crate::fast_json::read(text) {
        return Ok((v, BTreeSet::new()));
    }
    match serde_json::from_str(text) {
        Ok(v) => Ok((v, BTreeSet::new())),
        Err(_) => parse_lenient(text),
    }
}

/// Parses model-style JSON, returning the value and what was repaired.
pub(crate) fn parse_lenient(text: &str) -> Result<(Value, BTreeSet<Repair>), String> {
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
        repairs: BTreeSet::new(),
    };
    let v = r.value()?;
    r.ws();
    if r.pos != r.s.len() {
        return Err(r.err("unexpected text after the value"));
    }
    Ok((v, r.repairs))
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
    repairs: BTreeSet<Repair>,
}

impl Reader<'_> {
    fn err(&self, what: &str) -> String {
        match self.text[self.pos.min(self.text.len())..].chars().next() {
            Some(c) => format!("{what}: found `{c}` at byte {}", self.pos),
            None => format!("{what}: the text ended at byte {}", self.pos),
        }
    }

    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let Some(&b) = self.s.get(self.pos) else {
            return Err(self.err("expected a value"));
        };
        match b {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' | b'\'' => self.string().map(Value::String),
            _ => self.scalar(),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Value, String>) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut map = Map::new();
        loop {
            self.ws();
            match self.s.get(self.pos) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                Some(b'"' | b'\'') => {
                    let key = self.string()?;
                    self.member(&mut map, key)?;
                }
                Some(&c) if is_ident_start(c) => {
                    let start = self.pos;
                    while self.s.get(self.pos).is_some_and(|&c| is_ident_byte(c)) {
                        self.pos += 1;
                    }
                    self.repairs.insert(Repair::UnquotedKey);
                    let key = self.text[start..self.pos].to_owned();
                    self.member(&mut map, key)?;
                }
                _ => return Err(self.err("expected a key or `}`")),
            }
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                    if self.s.get(self.pos) == Some(&b'}') {
                        self.repairs.insert(Repair::TrailingComma);
                    }
                }
                Some(b'}') => {}
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn member(&mut self, map: &mut Map<String, Value>, key: String) -> Result<(), String> {
        self.ws();
        if self.s.get(self.pos) != Some(&b':') {
            return Err(self.err("expected `:` after a key"));
        }
        self.pos += 1;
        let v = self.value()?;
        map.insert(key, v);
        Ok(())
    }

    fn array(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.pos) == Some(&b']') {
                self.pos += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                    if self.s.get(self.pos) == Some(&b']') {
                        self.repairs.insert(Repair::TrailingComma);
                    }
                }
                Some(b']') => {}
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.pos];
        if quote == b'\'' {
            self.repairs.insert(Repair::SingleQuotes);
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(k) = memchr::memchr2(quote, b'\\', &self.s[self.pos..]) else {
                self.pos = start;
                return Err(self.err("unterminated string"));
            };
            let chunk = &self.text[self.pos..self.pos + k];
            if chunk.bytes().any(|b| b < 0x20) {
                self.repairs.insert(Repair::ControlCharacter);
            }
            out.push_str(chunk);
            self.pos += k;
            if self.s[self.pos] == quote {
                self.pos += 1;
                return Ok(out);
            }
            let Some(esc) = self.text[self.pos + 1..].chars().next() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1 + esc.len_utf8();
            match esc {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                '/' => out.push('/'),
                'u' => out.push(self.unicode_escape()?),
                other => out.push(other),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{fffd}'))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(hex, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn scalar(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|&c| is_scalar_byte(c)) {
            self.pos += 1;
        }
        let token = &self.text[start..self.pos];
        match token {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "null" => return Ok(Value::Null),
            "True" | "False" | "None" => {
                self.repairs.insert(Repair::PythonLiteral);
                return Ok(match token {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    _ => Value::Null,
                });
            }
            _ => {}
        }
        match number(token) {
            Some((n, strict)) => {
                if !strict {
                    self.repairs.insert(Repair::NumberForm);
                }
                Ok(Value::Number(n))
            }
            None => {
                self.pos = start;
                Err(self.err("expected a value"))
            }
        }
    }
}

/// Reads a number token; the flag says whether it was already strict JSON.
pub(crate) fn number(token: &str) -> Option<(Number, bool)> {
    if let Ok(n) = serde_json::from_str::<Number>(token) {
        return Some((n, true));
    }
    let (neg, body) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return Some(((if neg { -v } else { v }).into(), false));
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    if !body.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let f: f64 = body.parse().ok()?;
    let f = if neg { -f } else { f };
    if f.fract() == 0.0 && !body.contains(['.', 'e', 'E']) && f.abs() < 9e15 {
        return Some(((f as i64).into(), false));
    }
    Number::from_f64(f).map(|n| (n, false))
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-')
}

pub(crate) fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn repaired(text: &str) -> (Value, Vec<Repair>) {
        let (v, r) = parse_json(text).unwrap();
        (v, r.into_iter().collect())
    }

    #[test]
    fn strict_json_needs_no_repair() {
        assert_eq!(
            repaired(r#"{"a": [1, 2.5, "x"]}"#),
            (json!({"a": [1, 2.5, "x"]}), vec![])
        );
    }

    #[test]
    fn model_mistakes_are_repaired_and_named() {
        assert_eq!(
            repaired("{city: 'Paris', days: 3, ok: True, tags: ['a',],}"),
            (
                json!({"city": "Paris", "days": 3, "ok": true, "tags": ["a"]}),
                vec![
                    Repair::TrailingComma,
                    Repair::SingleQuotes,
                    Repair::UnquotedKey,
                    Repair::PythonLiteral
                ]
            )
        );
        assert_eq!(
            repaired("{\"t\": \"a\nb\"}"),
            (json!({"t": "a\nb"}), vec![Repair::ControlCharacter])
        );
        assert_eq!(
            repaired("{\"n\": +.5}"),
            (json!({"n": 0.5}), vec![Repair::NumberForm])
        );
        assert_eq!(repaired(r#"{'q': 'it\'s'}"#).0, json!({"q": "it's"}));
    }

    #[test]
    fn unrepairable_text_says_where() {
        let err = parse_json(r#"{"a": 1 "b": 2}"#).unwrap_err();
        assert!(
            err.contains("expected `,` or `}`") && err.contains("byte 8"),
            "{err}"
        );
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse_json(&deep).unwrap_err().contains("nested deeper"));
    }
}
