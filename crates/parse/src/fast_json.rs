//! One-pass reading of strict JSON into `serde_json` values: [`read`] and [`read_root`].
//!
//! Well-formed model output is strict JSON almost always. When a whole value is already in
//! the buffer, [`read_root`] reads it once, building the values and noting the call-shaped
//! objects the way [`crate::json_scan::JsonScan`] would report them, so the scanner's pass
//! and a second parse of each call are saved. Each object's map is sized once, and one
//! scratch stack holds the members of the open containers. Anything unusual (text a repair
//! would fix, a number `serde_json` reads differently, a lone surrogate, deep nesting, the
//! end of the buffer) gives `None`, and the caller takes the scanner and `serde_json` path,
//! so the values are the same either way. Written by hand because no JSON crate reports the
//! spans of the objects it builds.

use std::{cell::RefCell, collections::VecDeque};

use serde_json::{Map, Number, Value};

use crate::json_scan::WRAPPER_KEYS;

/// The keys of a call object that reading it as a call looks at (see `CallKeys`).
const CALL_KEYS: &[&str] = &["id", "name", "arguments", "parameters", "function"];

/// Deeper values are left to the general path (which reports the depth limit).
const MAX_DEPTH: usize = 100;

/// A root JSON value read in one pass.
#[derive(Debug)]
pub(crate) struct Built {
    /// The call-shaped objects, in the order they closed: span and members.
    pub(crate) candidates: VecDeque<(usize, usize, Map<String, Value>)>,
    /// Where the root value ends.
    pub(crate) end: usize,
    /// The root value (with candidates taken out), when no candidates were looked for.
    pub(crate) root: Value,
}

/// Reads all of `text` as one strict JSON value.
pub(crate) fn read(text: &str) -> Option<Value> {
    let mut r = Reader::new(text);
    r.ws();
    let v = r.value(0, false);
    r.ws();
    let whole = r.pos == r.s.len();
    r.finish();
    v.filter(|_| whole)
}

/// Reads the strict JSON value that starts at `start` of `text` and ends before the text
/// does; with `calls`, call-shaped objects are taken out as the scanner would report them.
pub(crate) fn read_root(text: &str, start: usize, calls: bool) -> Option<Built> {
    let mut r = Reader::new(text);
    r.pos = start;
    let root = r.value(0, calls);
    let candidates = std::mem::take(&mut r.candidates);
    let end = r.pos;
    r.finish();
    Some(Built {
        candidates: candidates.into(),
        end,
        root: root?,
    })
}

/// The members of open objects and the elements of open arrays, innermost last.
type Stacks = (Vec<(String, Value)>, Vec<Value>);

thread_local! {
    /// The scratch stacks of the last reader on this thread, kept for their capacity.
    static SCRATCH: RefCell<Stacks> = const { RefCell::new((Vec::new(), Vec::new())) };
}

struct Reader<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
    /// Members of the open objects, innermost last.
    members: Vec<(String, Value)>,
    /// Elements of the open arrays, innermost last.
    items: Vec<Value>,
    candidates: Vec<(usize, usize, Map<String, Value>)>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        let (members, items) = SCRATCH.with(|s| s.take());
        Self {
            text,
            s: text.as_bytes(),
            pos: 0,
            members,
            items,
            candidates: Vec::new(),
        }
    }

    /// Gives the scratch stacks back for the next reader.
    fn finish(mut self) {
        self.members.clear();
        self.items.clear();
        SCRATCH.with(|s| *s.borrow_mut() = (self.members, self.items));
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The value at `pos`; `cand` when an object here is in a call position.
    fn value(&mut self, depth: usize, cand: bool) -> Option<Value> {
        match *self.s.get(self.pos)? {
            b'"' => self.string().map(Value::String),
            b'{' => self.object(depth + 1, cand),
            b'[' => self.array(depth + 1, cand),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Option<Value> {
        if !self.s[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        Some(v)
    }

    fn object(&mut self, depth: usize, cand: bool) -> Option<Value> {
        let start = self.pos;
        if self.open(depth, b'}')? {
            return Some(Value::Object(Map::new()));
        }
        let base = self.members.len();
        let mut call_key = false;
        let closed = loop {
            if self.s.get(self.pos) != Some(&b'"') {
                break false;
            }
            let key_at = self.pos;
            let Some(key) = self.string() else {
                break false;
            };
            // The scanner compares keys as written, escapes and all.
            let raw = &self.s[key_at + 1..self.pos - 1];
            self.ws();
            if self.s.get(self.pos) != Some(&b':') {
                break false;
            }
            self.pos += 1;
            self.ws();
            let wrapper = cand && WRAPPER_KEYS.contains(&raw);
            call_key |= cand && (raw == b"name" || raw == b"function");
            if cand && !CALL_KEYS.contains(&key.as_str()) {
                // Only the call keys of an object in a call position are ever read.
                if self.skip(depth, wrapper).is_none() {
                    break false;
                }
            } else {
                let Some(v) = self.value(depth, wrapper) else {
                    break false;
                };
                self.members.push((key, v));
            }
            match self.after_item(b'}') {
                Some(true) => break true,
                Some(false) => {}
                None => break false,
            }
        };
        let members = self.members.drain(base..);
        if !closed {
            return None;
        }
        let mut map = Map::with_capacity(members.len());
        for (k, v) in members {
            map.insert(k, v);
        }
        if cand {
            if call_key {
                self.candidates.push((start, self.pos, map));
            }
            // What is left of a value in a call position is never read.
            return Some(Value::Null);
        }
        Some(Value::Object(map))
    }

    fn array(&mut self, depth: usize, cand: bool) -> Option<Value> {
        if self.open(depth, b']')? {
            return Some(Value::Array(Vec::new()));
        }
        let base = self.items.len();
        let closed = loop {
            if cand {
                // Only the calls among the elements are read.
                if self.skip(depth, true).is_none() {
                    break false;
                }
            } else {
                let Some(v) = self.value(depth, false) else {
                    break false;
                };
                self.items.push(v);
            }
            match self.after_item(b']') {
                Some(true) => break true,
                Some(false) => {}
                None => break false,
            }
        };
        let items = self.items.drain(base..);
        closed.then(|| Value::Array(items.collect()))
    }

    /// Past the opening bracket at `pos`: `Some(true)` if `close` follows at once (and past
    /// it); `None` too deep.
    fn open(&mut self, depth: usize, close: u8) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        self.ws();
        let empty = self.s.get(self.pos) == Some(&close);
        if empty {
            self.pos += 1;
        }
        Some(empty)
    }

    /// After a member or element: `Some(false)` past a comma, `Some(true)` past `close`.
    fn after_item(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = *self.s.get(self.pos)?;
        self.pos += 1;
        if b == close {
            return Some(true);
        }
        if b != b',' {
            return None;
        }
        self.ws();
        Some(false)
    }

    /// Reads past the value at `pos`, building only the calls in it (when `cand`).
    fn skip(&mut self, depth: usize, cand: bool) -> Option<()> {
        match *self.s.get(self.pos)? {
            b'"' => {
                let i = self.plain_run(self.pos + 1);
                match *self.s.get(i)? {
                    b'"' => {
                        self.pos = i + 1;
                        Some(())
                    }
                    _ => self.string().map(drop),
                }
            }
            _ => self.value(depth, cand).map(drop),
        }
    }

    /// The string whose opening quote is at `pos`.
    fn string(&mut self) -> Option<String> {
        let start = self.pos + 1;
        let i = self.plain_run(start);
        match *self.s.get(i)? {
            b'"' => {
                self.pos = i + 1;
                // Between two ASCII quotes of UTF-8 text: always on character boundaries.
                self.text.get(start..i).map(str::to_owned)
            }
            b'\\' => self.escaped(start, i),
            _ => None,
        }
    }

    /// Where the run of plain string bytes (no quote, backslash or control character) from
    /// `i` ends, looking at eight bytes at a time.
    #[inline]
    fn plain_run(&self, mut i: usize) -> usize {
        while let Some(word) = self.s.get(i..i + 8) {
            let mut w = [0; 8];
            w.copy_from_slice(word);
            let hits = special(u64::from_le_bytes(w));
            if hits != 0 {
                return i + (hits.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while let Some(&b) = self.s.get(i) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            i += 1;
        }
        i
    }

    /// The rest of a string from its first backslash at `i`.
    fn escaped(&mut self, start: usize, mut i: usize) -> Option<String> {
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(self.text.get(start..i)?);
        loop {
            // `i` is at a backslash.
            let e = *self.s.get(i + 1)?;
            i += 2;
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = self.hex4(i)?;
                    i += 4;
                    if (0xD800..0xDC00).contains(&hi) {
                        if self.s.get(i..i + 2)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(i + 2)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return None;
                        }
                        i += 6;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                    } else {
                        char::from_u32(hi)?
                    }
                }
                _ => return None,
            };
            out.push(c);
            let run = i;
            i = self.plain_run(i);
            out.push_str(self.text.get(run..i)?);
            match *self.s.get(i)? {
                b'"' => {
                    self.pos = i + 1;
                    return Some(out);
                }
                b'\\' => {}
                _ => return None,
            }
        }
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let digits = self.s.get(i..i + 4)?;
        digits.iter().try_fold(0, |n, &b| {
            let d = (b as char).to_digit(16)?;
            Some(n * 16 + d)
        })
    }

    /// The end of the run of one or more digits at `i`.
    fn digits(&self, i: usize) -> Option<usize> {
        let n = self.s[i.min(self.s.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        (n > 0).then_some(i + n)
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        let mut i = start;
        let neg = self.s.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        let int_start = i;
        i = self.digits(i)?;
        let int_len = i - int_start;
        if int_len > 1 && self.s[int_start] == b'0' {
            return None;
        }
        let mut float = false;
        if self.s.get(i) == Some(&b'.') {
            float = true;
            i = self.digits(i + 1)?;
        }
        if let Some(b'e' | b'E') = self.s.get(i) {
            float = true;
            i += 1;
            if let Some(b'+' | b'-') = self.s.get(i) {
                i += 1;
            }
            i = self.digits(i)?;
        }
        // A number that ends the buffer may go on in the next chunk.
        if i >= self.s.len() {
            return None;
        }
        self.pos = i;
        let text = &self.text[start..i];
        if !float {
            // serde_json reads `-0` as a float and 19 digits or more in its own ways.
            if int_len > 18 || (neg && int_len == 1 && self.s[int_start] == b'0') {
                return None;
            }
            let n: i64 = text.parse().ok()?;
            return Some(Value::Number(match u64::try_from(n) {
                Ok(u) => Number::from(u),
                Err(_) => Number::from(n),
            }));
        }
        let f: f64 = text.parse().ok()?;
        // Out of range either way: left to serde_json's own rules.
        if !f.is_finite() || (f == 0.0 && text.bytes().any(|b| matches!(b, b'1'..=b'9'))) {
            return None;
        }
        Number::from_f64(f).map(Value::Number)
    }
}

/// Non-zero when a byte of `w` is a quote, a backslash or a control character.
#[inline]
fn special(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    quote | backslash | control
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
            "[a-z\"\\\\\u{0}-\u{1f}é😀]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z_]{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_what_serde_json_reads(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) };
            let text = text.unwrap_or_default();
            let ours = read(&text);
            let theirs: Option<Value> = serde_json::from_str(&text).ok();
            // Ours may decline (the caller then asks serde_json); when it reads, it agrees.
            if let Some(ours) = ours {
                prop_assert_eq!(Some(ours), theirs);
            }
        }

        #[test]
        fn never_disagrees_on_any_text(text in "[\\[\\]{}\",:0-9.eE+\\-a-z \\\\]{0,40}") {
            if let Some(ours) = read(&text) {
                let theirs: Option<Value> = serde_json::from_str(&text).ok();
                prop_assert_eq!(Some(ours), theirs);
            }
        }
    }

    #[test]
    fn reads_the_common_cases_itself() {
        for text in [
            r#"{"a": [1, -2, 3.5, -0.0, 1e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}}"#,
            "[]",
            "{}",
            r#"  "x\"y"  "#,
        ] {
            assert_eq!(read(text), serde_json::from_str(text).ok(), "{text}");
        }
        assert_eq!(read("-0"), None);
        assert_eq!(read("12345678901234567890"), None);
        assert_eq!(read("{'a': 1}"), None);
    }
}
