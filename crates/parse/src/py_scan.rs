//! An incremental scanner for Python call syntax: [`PyScan`].
//!
//! It finds where each `name(…)` call ends (brackets balanced, strings skipped, triple
//! quotes and prefixes understood) without parsing it, so a call is handed to
//! [`crate::python::parse_expr`] the moment its closing parenthesis arrives. It also gives up
//! early on prose (`Note(this is prose)`): two plain words in a row are not Python.

/// Where the scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyStep {
    /// All input so far is consumed.
    NeedMore,
    /// A call spans `start..end`; scanning resumes at `end`.
    Call { start: usize, end: usize },
    /// The calls ended at `at` (not consumed). `truncated`: the input ended inside a call
    /// that starts at `call_start`.
    End { at: usize, truncated: Option<usize> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Atom,
    Keyword,
    Str,
    Op,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    ExpectCall,
    Name {
        start: usize,
    },
    Args {
        start: usize,
        depth: usize,
        prev: Tok,
    },
    Str {
        start: usize,
        depth: usize,
        quote: u8,
        triple: bool,
        escaped: bool,
    },
    AfterCall {
        newline: bool,
    },
}

/// Resumable state for a run of Python calls, optionally inside `[…]`.
#[derive(Debug, Clone)]
pub(crate) struct PyScan {
    in_list: bool,
    phase: Phase,
    pos: usize,
}

const KEYWORDS: &[&[u8]] = &[
    b"not", b"and", b"or", b"in", b"is", b"if", b"else", b"lambda", b"for",
];

impl PyScan {
    /// A scan starting at `start`: a `[` when `in_list`, else the first call's name.
    pub(crate) fn new(start: usize, in_list: bool) -> Self {
        Self {
            in_list,
            phase: Phase::ExpectCall,
            pos: if in_list { start + 1 } else { start },
        }
    }

    /// Scans `buf` from where the last call stopped.
    pub(crate) fn scan(&mut self, buf: &[u8], eof: bool) -> PyStep {
        let len = buf.len();
        let mut i = self.pos;
        loop {
            if i >= len {
                self.pos = i;
                if !eof {
                    return PyStep::NeedMore;
                }
                return match self.phase {
                    Phase::ExpectCall | Phase::AfterCall { .. } => PyStep::End {
                        at: len,
                        truncated: None,
                    },
                    Phase::Name { start } => PyStep::End {
                        at: start,
                        truncated: None,
                    },
                    Phase::Args { start, .. } | Phase::Str { start, .. } => PyStep::End {
                        at: start,
                        truncated: Some(start),
                    },
                };
            }
            let b = buf[i];
            match self.phase {
                Phase::ExpectCall => match b {
                    b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                    b']' if self.in_list => return self.end(i + 1),
                    c if is_ident_start(c) => self.phase = Phase::Name { start: i },
                    _ => return self.end(i),
                },
                Phase::Name { start } => match b {
                    c if is_ident_byte(c) || c == b'.' => i += 1,
                    b'(' => {
                        self.phase = Phase::Args {
                            start,
                            depth: 1,
                            prev: Tok::Open,
                        };
                        i += 1;
                    }
                    _ => return self.end(start),
                },
                Phase::Args { start, depth, prev } => {
                    let (tok, next) = match b {
                        b' ' | b'\t' | b'\n' | b'\r' => {
                            i += 1;
                            continue;
                        }
                        b'(' | b'[' | b'{' => {
                            self.phase = Phase::Args {
                                start,
                                depth: depth + 1,
                                prev: Tok::Open,
                            };
                            i += 1;
                            continue;
                        }
                        b')' | b']' | b'}' => {
                            if depth == 1 {
                                if b != b')' {
                                    return self.end(start);
                                }
                                self.phase = Phase::AfterCall { newline: false };
                                self.pos = i + 1;
                                return PyStep::Call { start, end: i + 1 };
                            }
                            self.phase = Phase::Args {
                                start,
                                depth: depth - 1,
                                prev: Tok::Close,
                            };
                            i += 1;
                            continue;
                        }
                        b'"' | b'\'' => (Tok::Str, i),
                        c if is_ident_start(c) => {
                            let mut j = i;
                            while j < len && is_ident_byte(buf[j]) {
                                j += 1;
                            }
                            if j == len && !eof {
                                self.pos = i;
                                return PyStep::NeedMore;
                            }
                            let word = &buf[i..j];
                            if j < len && matches!(buf[j], b'"' | b'\'') && is_string_prefix(word) {
                                (Tok::Str, j)
                            } else if KEYWORDS.contains(&word) {
                                (Tok::Keyword, j)
                            } else {
                                (Tok::Atom, j)
                            }
                        }
                        c if c.is_ascii_digit() => {
                            let mut j = i;
                            while j < len
                                && (buf[j].is_ascii_alphanumeric()
                                    || buf[j] == b'_'
                                    || buf[j] == b'.')
                            {
                                j += 1;
                            }
                            if j == len && !eof {
                                self.pos = i;
                                return PyStep::NeedMore;
                            }
                            (Tok::Atom, j)
                        }
                        b'=' | b',' | b':' | b'.' | b'+' | b'-' | b'*' | b'/' | b'%' | b'~'
                        | b'<' | b'>' | b'!' | b'&' | b'|' | b'^' | b'@' => (Tok::Op, i + 1),
                        _ => return self.end(start),
                    };
                    let adjacent = matches!(prev, Tok::Atom | Tok::Str | Tok::Close)
                        && matches!(tok, Tok::Atom | Tok::Str)
                        && !(prev == Tok::Str && tok == Tok::Str);
                    if adjacent {
                        return self.end(start);
                    }
                    if tok == Tok::Str {
                        let quote = buf[next];
                        let triple =
                            next + 2 < len && buf[next + 1] == quote && buf[next + 2] == quote;
                        if !triple && next + 2 >= len && !eof {
                            // Cannot tell `''` from `'''` yet.
                            self.pos = i;
                            return PyStep::NeedMore;
                        }
                        self.phase = Phase::Str {
                            start,
                            depth,
                            quote,
                            triple,
                            escaped: false,
                        };
                        i = next + if triple { 3 } else { 1 };
                    } else {
                        self.phase = Phase::Args {
                            start,
                            depth,
                            prev: tok,
                        };
                        i = next;
                    }
                }
                Phase::Str {
                    start,
                    depth,
                    quote,
                    triple,
                    escaped,
                } => {
                    let mut j = i;
                    if escaped {
                        j += 1;
                    }
                    let done = loop {
                        let Some(k) = memchr::memchr2(quote, b'\\', &buf[j.min(len)..]) else {
                            break None;
                        };
                        let at = j + k;
                        if buf[at] == b'\\' {
                            if at + 1 >= len {
                                self.phase = Phase::Str {
                                    start,
                                    depth,
                                    quote,
                                    triple,
                                    escaped: true,
                                };
                                self.pos = len;
                                return if eof {
                                    PyStep::End {
                                        at: start,
                                        truncated: Some(start),
                                    }
                                } else {
                                    PyStep::NeedMore
                                };
                            }
                            j = at + 2;
                            continue;
                        }
                        if !triple {
                            break Some(at + 1);
                        }
                        if at + 2 >= len {
                            if !eof {
                                // Wait for all three quotes; resume at this quote.
                                self.phase = Phase::Str {
                                    start,
                                    depth,
                                    quote,
                                    triple,
                                    escaped: false,
                                };
                                self.pos = at;
                                return PyStep::NeedMore;
                            }
                            break None;
                        }
                        if buf[at + 1] == quote && buf[at + 2] == quote {
                            break Some(at + 3);
                        }
                        j = at + 1;
                    };
                    match done {
                        Some(end) => {
                            self.phase = Phase::Args {
                                start,
                                depth,
                                prev: Tok::Str,
                            };
                            i = end;
                        }
                        None => {
                            self.phase = Phase::Str {
                                start,
                                depth,
                                quote,
                                triple,
                                escaped: false,
                            };
                            i = len;
                        }
                    }
                }
                Phase::AfterCall { newline } => match b {
                    b' ' | b'\t' | b'\r' => i += 1,
                    b'\n' => {
                        self.phase = Phase::AfterCall { newline: true };
                        i += 1;
                    }
                    b',' => {
                        self.phase = Phase::ExpectCall;
                        i += 1;
                    }
                    b']' if self.in_list => return self.end(i + 1),
                    c if newline && !self.in_list && is_ident_start(c) => {
                        self.phase = Phase::ExpectCall
                    }
                    _ => return self.end(i),
                },
            }
        }
    }

    fn end(&mut self, at: usize) -> PyStep {
        self.pos = at;
        PyStep::End {
            at,
            truncated: None,
        }
    }
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_string_prefix(word: &[u8]) -> bool {
    matches!(
        word.to_ascii_lowercase().as_slice(),
        b"r" | b"u" | b"b" | b"br" | b"rb" | b"f" | b"fr" | b"rf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, in_list: bool) -> Vec<PyStep> {
        let mut scan = PyScan::new(0, in_list);
        let mut out = Vec::new();
        loop {
            let step = scan.scan(text.as_bytes(), true);
            out.push(step);
            if !matches!(step, PyStep::Call { .. }) {
                return out;
            }
        }
    }

    #[test]
    fn finds_each_call_in_a_list() {
        let text = r#"[get_weather(city="Paris)", days=3), convert(x=1.5, unit='C')]"#;
        let second = text.find("convert").unwrap();
        assert_eq!(
            run(text, true),
            vec![
                PyStep::Call {
                    start: 1,
                    end: second - 2
                },
                PyStep::Call {
                    start: second,
                    end: text.len() - 1
                },
                PyStep::End {
                    at: text.len(),
                    truncated: None
                }
            ]
        );
    }

    #[test]
    fn prose_is_not_a_call() {
        assert_eq!(
            run("Note(this was prose)", false),
            vec![PyStep::End {
                at: 0,
                truncated: None
            }]
        );
        assert_eq!(
            run("f(a='''x)''')", false)[0],
            PyStep::Call { start: 0, end: 13 }
        );
        assert_eq!(
            run("f(a=1", false),
            vec![PyStep::End {
                at: 0,
                truncated: Some(0)
            }]
        );
    }
}
