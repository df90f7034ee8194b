//! An incremental structural scanner for (model-style) JSON: [`JsonScan`].
//!
//! The scanner walks bytes once, keeping its place between chunks, and stops at three
//! moments: an object in a *call position* closed (the root, an array element of a call
//! position, or the value of a wrapper key such as `tool_calls`) and has a `name` or
//! `function` key; the root value closed; or the text stopped being JSON. Only the spans it
//! reports are parsed into values, so chunked parsing stays linear in the input.
//! It accepts what [`crate::lenient`] repairs (single quotes, unquoted keys, trailing
//! commas, Python literals), so both agree on what is JSON.

use crate::lenient::{self, is_ident_start, is_scalar_byte};

/// Keys whose value holds calls (OpenAI messages and responses).
pub(crate) const WRAPPER_KEYS: &[&[u8]] = &[
    b"tool_calls",
    b"function_call",
    b"calls",
    b"choices",
    b"message",
];

/// Where the scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// All input so far is consumed; push more (or finish).
    NeedMore,
    /// A call-shaped object closed; it spans `start..end`. Scanning resumes at `end`.
    Candidate { start: usize, end: usize },
    /// The root value closed at `end`.
    Done { end: usize },
    /// The text is not JSON from `at` on.
    Abort { at: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    ValueOrClose,
    KeyOrClose,
    Colon,
    CommaOrClose,
}

#[derive(Debug, Clone, Copy)]
enum Lex {
    Idle,
    Str {
        quote: u8,
        key: bool,
        start: usize,
        escaped: bool,
    },
    Scalar {
        key: bool,
        start: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    obj: bool,
    start: usize,
    cand: bool,
    call_key: bool,
}

/// Resumable scanner state for one root JSON value.
#[derive(Debug, Clone)]
pub(crate) struct JsonScan {
    frames: Vec<Frame>,
    excess: usize,
    /// The value nested deeper than [`lenient::MAX_DEPTH`].
    pub(crate) overflowed: bool,
    expect: Expect,
    lex: Lex,
    wrapper_next: bool,
    pos: usize,
    root: usize,
    calls_inside: bool,
    done_pending: Option<usize>,
}

impl JsonScan {
    /// A scan of the value starting at `start` (a `{` or `[`).
    pub(crate) fn new(start: usize) -> Self {
        Self {
            frames: Vec::new(),
            excess: 0,
            overflowed: false,
            expect: Expect::Value,
            lex: Lex::Idle,
            wrapper_next: false,
            pos: start,
            root: start,
            calls_inside: true,
            done_pending: None,
        }
    }

    /// The same scan, but no object inside is a call (the value is itself arguments).
    pub(crate) fn without_calls(mut self) -> Self {
        self.calls_inside = false;
        self
    }

    /// Whether nothing has been scanned yet.
    pub(crate) fn is_fresh(&self) -> bool {
        self.pos == self.root && self.frames.is_empty() && matches!(self.lex, Lex::Idle)
    }

    /// Offset where the root value starts.
    pub(crate) fn start(&self) -> usize {
        self.root
    }

    /// Whether any open object so far has a `name` or `function` key.
    pub(crate) fn looks_like_call(&self) -> bool {
        self.frames.iter().any(|f| f.cand && f.call_key)
    }

    /// The brackets that would close the value here, if closing it is unambiguous
    /// (not inside a string, a key, or after a colon).
    pub(crate) fn closers(&self) -> Option<String> {
        if self.excess > 0 || self.frames.is_empty() {
            return None;
        }
        match self.lex {
            Lex::Idle => {}
            Lex::Scalar { key: false, .. } => {}
            Lex::Str { .. } | Lex::Scalar { key: true, .. } => return None,
        }
        match self.expect {
            Expect::CommaOrClose | Expect::ValueOrClose | Expect::KeyOrClose => {}
            Expect::Value | Expect::Colon => {
                if !matches!(self.lex, Lex::Scalar { key: false, .. }) {
                    return None;
                }
            }
        }
        Some(
            self.frames
                .iter()
                .rev()
                .map(|f| if f.obj { '}' } else { ']' })
                .collect(),
        )
    }

    /// Scans `buf` from where the last call stopped. With `eof`, a number or literal at the
    /// very end is complete.
    pub(crate) fn scan(&mut self, buf: &[u8], eof: bool) -> Step {
        if let Some(end) = self.done_pending.take() {
            return Step::Done { end };
        }
        let len = buf.len();
        let mut i = self.pos;
        loop {
            match self.lex {
                Lex::Str {
                    quote,
                    key,
                    start,
                    escaped,
                } => {
                    let mut j = i;
                    if escaped {
                        if j >= len {
                            self.pos = j;
                            return Step::NeedMore;
                        }
                        j += 1;
                    }
                    loop {
                        match find_quote(quote, &buf[j.min(len)..]) {
                            None => {
                                self.lex = Lex::Str {
                                    quote,
                                    key,
                                    start,
                                    escaped: false,
                                };
                                self.pos = len;
                                return Step::NeedMore;
                            }
                            Some(k) => {
                                let at = j + k;
                                if buf[at] == b'\\' {
                                    if at + 1 >= len {
                                        self.lex = Lex::Str {
                                            quote,
                                            key,
                                            start,
                                            escaped: true,
                                        };
                                        self.pos = len;
                                        return Step::NeedMore;
                                    }
                                    j = at + 2;
                                    continue;
                                }
                                self.lex = Lex::Idle;
                                i = at + 1;
                                if self.excess == 0 {
                                    if key {
                                        self.key_done(&buf[start + 1..at]);
                                    } else {
                                        self.value_done();
                                    }
                                }
                                break;
                            }
                        }
                    }
                }
                Lex::Scalar { key, start } => {
                    while i < len && is_scalar_byte(buf[i]) {
                        i += 1;
                    }
                    if i == len && !eof {
                        self.pos = i;
                        return Step::NeedMore;
                    }
                    self.lex = Lex::Idle;
                    let token = &buf[start..i];
                    if key {
                        self.key_done(token);
                    } else if valid_scalar(token) {
                        self.value_done();
                    } else {
                        self.pos = start;
                        return Step::Abort { at: start };
                    }
                }
                Lex::Idle => {
                    if i >= len {
                        self.pos = i;
                        return Step::NeedMore;
                    }
                    let b = buf[i];
                    if self.excess > 0 {
                        match b {
                            b'{' | b'[' => self.excess += 1,
                            b'}' | b']' => {
                                self.excess -= 1;
                                if self.excess == 0 {
                                    self.expect = Expect::CommaOrClose;
                                }
                            }
                            b'"' | b'\'' => {
                                self.lex = Lex::Str {
                                    quote: b,
                                    key: false,
                                    start: i,
                                    escaped: false,
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                        continue;
                    }
                    match b {
                        b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                        b'{' | b'[' => {
                            if !matches!(self.expect, Expect::Value | Expect::ValueOrClose) {
                                return self.abort(i);
                            }
                            if self.frames.len() >= lenient::MAX_DEPTH {
                                self.excess = 1;
                                self.overflowed = true;
                                i += 1;
                                continue;
                            }
                            let cand = self.calls_inside
                                && match self.frames.last() {
                                    None => true,
                                    Some(f) if !f.obj => f.cand,
                                    Some(f) => f.cand && self.wrapper_next,
                                };
                            self.wrapper_next = false;
                            let obj = b == b'{';
                            self.frames.push(Frame {
                                obj,
                                start: i,
                                cand,
                                call_key: false,
                            });
                            self.expect = if obj {
                                Expect::KeyOrClose
                            } else {
                                Expect::ValueOrClose
                            };
                            i += 1;
                        }
                        b'}' | b']' => {
                            let obj = b == b'}';
                            let Some(top) = self.frames.last().copied() else {
                                return self.abort(i);
                            };
                            let allowed = top.obj == obj
                                && match self.expect {
                                    Expect::CommaOrClose => true,
                                    Expect::KeyOrClose => obj,
                                    Expect::ValueOrClose => !obj,
                                    Expect::Value | Expect::Colon => false,
                                };
                            if !allowed {
                                return self.abort(i);
                            }
                            self.frames.pop();
                            i += 1;
                            self.pos = i;
                            self.value_done();
                            let call = top.obj && top.cand && top.call_key;
                            if self.frames.is_empty() {
                                if call {
                                    self.done_pending = Some(i);
                                    return Step::Candidate {
                                        start: top.start,
                                        end: i,
                                    };
                                }
                                return Step::Done { end: i };
                            }
                            if call {
                                return Step::Candidate {
                                    start: top.start,
                                    end: i,
                                };
                            }
                        }
                        b',' => {
                            if self.expect != Expect::CommaOrClose {
                                return self.abort(i);
                            }
                            let obj = self.frames.last().is_some_and(|f| f.obj);
                            self.expect = if obj {
                                Expect::KeyOrClose
                            } else {
                                Expect::ValueOrClose
                            };
                            i += 1;
                        }
                        b':' => {
                            if self.expect != Expect::Colon {
                                return self.abort(i);
                            }
                            self.expect = Expect::Value;
                            i += 1;
                        }
                        b'"' | b'\'' => {
                            let key = match self.expect {
                                Expect::KeyOrClose => true,
                                Expect::Value | Expect::ValueOrClose => false,
                                Expect::Colon | Expect::CommaOrClose => return self.abort(i),
                            };
                            self.lex = Lex::Str {
                                quote: b,
                                key,
                                start: i,
                                escaped: false,
                            };
                            i += 1;
                        }
                        c if is_scalar_byte(c) => {
                            let key = match self.expect {
                                Expect::KeyOrClose if is_ident_start(c) => true,
                                Expect::Value | Expect::ValueOrClose => false,
                                _ => return self.abort(i),
                            };
                            self.lex = Lex::Scalar { key, start: i };
                            i += 1;
                        }
                        _ => return self.abort(i),
                    }
                }
            }
        }
    }

    fn abort(&mut self, at: usize) -> Step {
        self.pos = at;
        Step::Abort { at }
    }

    fn key_done(&mut self, key: &[u8]) {
        self.expect = Expect::Colon;
        if let Some(top) = self.frames.last_mut().filter(|f| f.cand) {
            // Most keys are argument names: rule them out by length and first byte before comparing.
            let maybe = matches!((key.len(), key.first()), (4, Some(b'n')) | (8, Some(b'f')))
                || matches!(
                    (key.len(), key.first()),
                    (10 | 13, Some(b't' | b'f')) | (5, Some(b'c')) | (7, Some(b'c' | b'm'))
                );
            if maybe {
                if key == b"name" || key == b"function" {
                    top.call_key = true;
                }
                self.wrapper_next = WRAPPER_KEYS.contains(&key);
            } else {
                self.wrapper_next = false;
            }
        }
    }

    fn value_done(&mut self) {
        self.wrapper_next = false;
        self.expect = Expect::CommaOrClose;
    }
}

/// The next `quote` or backslash; a plain loop for the short tails streaming leaves.
#[inline]
fn find_quote(quote: u8, hay: &[u8]) -> Option<usize> {
    // Most strings are short keys and values: look at the first bytes before paying for
    // memchr's set-up.
    let head = hay.len().min(16);
    if let Some(i) = hay[..head].iter().position(|&b| b == quote || b == b'\\') {
        return Some(i);
    }
    memchr::memchr2(quote, b'\\', &hay[head..]).map(|i| i + head)
}

fn valid_scalar(token: &[u8]) -> bool {
    match token {
        b"true" | b"false" | b"null" | b"True" | b"False" | b"None" => true,
        [b'0'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => true,
        _ => std::str::from_utf8(token)
            .ok()
            .and_then(lenient::number)
            .is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str) -> Vec<Step> {
        let mut scan = JsonScan::new(0);
        let mut out = Vec::new();
        loop {
            let step = scan.scan(text.as_bytes(), true);
            out.push(step);
            if !matches!(step, Step::Candidate { .. }) {
                return out;
            }
        }
    }

    #[test]
    fn reports_call_positions_only() {
        let text = r#"{"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}, {"name": "g", "arguments": {"name": "x", "arguments": {}}}]}"#;
        let s = steps(text);
        assert_eq!(s.len(), 3, "{s:?}");
        let Step::Candidate { start, end } = s[0] else {
            panic!()
        };
        assert!(text[start..end].starts_with(r#"{"function""#));
        let Step::Candidate { start, end } = s[1] else {
            panic!()
        };
        assert!(text[start..end].starts_with(r#"{"name": "g""#));
        assert_eq!(s[2], Step::Done { end: text.len() });
    }

    #[test]
    fn prose_braces_abort_early() {
        assert_eq!(steps("{ carefully. }"), vec![Step::Abort { at: 13 }]);
        assert_eq!(steps("{ it's fine }"), vec![Step::Abort { at: 4 }]);
        assert_eq!(steps("{'a': 1,}").last(), Some(&Step::Done { end: 9 }));
    }

    #[test]
    fn chunked_scan_agrees_with_whole() {
        let text = r#"[{"name": "f", "arguments": {"s": "a\"}b", 'k': [1, -2.5e3, True]}}]"#;
        let whole = steps(text);
        let mut scan = JsonScan::new(0);
        let mut got = Vec::new();
        for end in 1..=text.len() {
            loop {
                let step = scan.scan(&text.as_bytes()[..end], end == text.len());
                if step == Step::NeedMore {
                    break;
                }
                got.push(step);
                if !matches!(step, Step::Candidate { .. }) {
                    break;
                }
            }
        }
        assert_eq!(got, whole);
    }
}
