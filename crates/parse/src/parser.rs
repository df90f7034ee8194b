//! The incremental call parser: [`CallParser`], and [`parse`] for a whole text.
//!
//! The parser holds only the text it has not decided yet: prose is handed back as
//! [`Event::Text`] as soon as it cannot be the start of a call, and a call is handed back as
//! [`Event::Call`] the moment its last byte arrives. Each byte is scanned once by a
//! resumable state machine ([`JsonScan`], [`PyScan`], and bounded look-aheads for markers
//! such as `<tool_call>`), so parsing stays linear however the stream is cut. A JSON value
//! that is whole in the buffer when it starts is read in one pass instead ([`fast_json`]),
//! and a token-sized chunk that cannot complete anything takes a [`Lane`] past the state
//! machine. Every decision depends only on the bytes, never on how they were chunked, so
//! chunked and whole-buffer parsing give the same events.

use std::{cell::Cell, collections::BTreeSet};

use serde_json::{Map, Value};

use crate::{
    Event, Format, Malformed, ParseError, ParsedCall, Repair,
    fast_json::{self, Built},
    json_scan::{JsonScan, Step},
    py_scan::{PyScan, PyStep, is_ident_byte, is_ident_start},
    python::{PyExpr, PyValueError, parse_expr},
    shape::{CallKeys, Shape, interpret, interpret_keys, kind},
};

/// Default limit on the total input, in bytes.
pub const DEFAULT_MAX_INPUT: usize = 64 * 1024 * 1024;

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const PYTHON_TAG: &str = "<|python_tag|>";
const MISTRAL_TAG: &str = "[TOOL_CALLS]";
const MISTRAL_ARGS: &str = "[ARGS]";
const MISTRAL_CALL_ID: &str = "[CALL_ID]";
const REACT_ACTION: &str = "Action:";
const REACT_INPUT: &str = "Action Input:";
const FENCE: &str = "```";
/// Inside JSON, small chunks are scanned at a closing bracket or after this many bytes:
/// more inside a call tag (what follows is a call, or a malformed one, either way) than in
/// prose (where a brace may be prose, to be handed back soon).
const JSON_WINDOW: usize = 64;
const TAGGED_JSON_WINDOW: usize = 256;
/// Look-aheads (a name, a fence's language tag, blank space) give up past this many bytes.
const LOOKAHEAD: usize = 128;

/// Which syntaxes a parser looks for.
#[derive(Debug, Clone, Copy)]
struct Active {
    json: bool,
    hermes: bool,
    python_tag: bool,
    mistral: bool,
    python: bool,
    react: bool,
}

impl Active {
    fn of(format: Format) -> Self {
        let none = Self {
            json: false,
            hermes: false,
            python_tag: false,
            mistral: false,
            python: false,
            react: false,
        };
        match format {
            Format::Auto => Self {
                json: true,
                hermes: true,
                python_tag: true,
                mistral: true,
                python: true,
                react: true,
            },
            Format::OpenAi => Self { json: true, ..none },
            Format::Llama => Self {
                json: true,
                python_tag: true,
                python: false,
                ..none
            },
            Format::Hermes => Self {
                hermes: true,
                ..none
            },
            Format::Mistral => Self {
                mistral: true,
                ..none
            },
            Format::Python => Self {
                python: true,
                ..none
            },
            Format::React => Self {
                react: true,
                ..none
            },
        }
    }

    fn triggers(self) -> [bool; 256] {
        let mut t = [false; 256];
        t[usize::from(b'\n')] = true;
        t[usize::from(b'`')] = self.json || self.python || self.hermes;
        t[usize::from(b'{')] = self.json;
        t[usize::from(b'[')] = self.json || self.python || self.mistral;
        t[usize::from(b'<')] = self.hermes || self.python_tag;
        t
    }
}

/// Why a JSON value is being read.
#[derive(Debug, Clone, PartialEq)]
enum Ctx {
    /// JSON found in free text: it counts only if it has the shape of a call.
    Bare,
    /// Inside `<tool_call>…</tool_call>`.
    Hermes,
    /// After `<|python_tag|>`.
    PythonTag,
    /// After `[TOOL_CALLS]`.
    Mistral,
    /// The arguments object of a call whose name came before (`[ARGS]`, `Action Input:`).
    Args {
        name: String,
        id: Option<String>,
        format: Format,
    },
}

impl Ctx {
    fn format(&self, llama_style: bool, parser: Format) -> Format {
        match self {
            Self::Hermes => Format::Hermes,
            Self::PythonTag => Format::Llama,
            Self::Mistral => Format::Mistral,
            Self::Args { format, .. } => *format,
            Self::Bare => match parser {
                Format::Llama => Format::Llama,
                Format::OpenAi => Format::OpenAi,
                _ if llama_style => Format::Llama,
                _ => Format::OpenAi,
            },
        }
    }

    fn tagged(&self) -> bool {
        !matches!(self, Self::Bare)
    }
}

/// A tag after which a call follows.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(clippy::enum_variant_names)] // `PythonTag` is the tag's own name.
enum Tag {
    Hermes,
    PythonTag,
    Mistral,
}

/// Where the parser is.
#[derive(Debug)]
enum State {
    /// In prose, scanning for the start of a call.
    Text,
    /// After a call tag, waiting for what follows it.
    AfterTag { tag: Tag, at: usize },
    /// Reading a JSON value (boxed: the state moves on every step, the box is cheap to move).
    Json(Box<JsonState>),
    /// Reading Python calls.
    Python(Box<PyState>),
    /// After `[TOOL_CALLS]name`, looking for `[ARGS]`.
    MistralName { start: usize },
    /// After `Action:`, reading the tool's name to the end of the line.
    ReactName { start: usize },
    /// After `Action: name`, waiting for `Action Input:`.
    ReactInput { name: String, at: usize },
    /// After a malformed tagged call, skipping to the closing tag to report the whole span.
    SkipTo {
        marker: &'static str,
        from: usize,
        reason: String,
        format: Format,
    },
    /// After a call: an optional closing tag, `;` separator or closing fence.
    AfterCall { at: usize, ctx: Ctx },
}

/// Progress through one JSON value.
#[derive(Debug)]
struct JsonState {
    scan: JsonScan,
    ctx: Ctx,
    calls: usize,
    malformed: bool,
    closed: bool,
    /// A step the fast path in `run` already took and left for the state machine.
    pending: Option<Step>,
    /// Whether reading the value in one pass was tried (once: chunked parsing stays linear).
    tried: bool,
    /// The value read in one pass: its calls, then its end, replace the scanner's steps.
    built: Option<Built>,
}

/// Progress through a run of Python calls.
#[derive(Debug)]
struct PyState {
    scan: PyScan,
    calls: usize,
    malformed: bool,
    in_list: bool,
    /// A step the fast path in `run` already took and left for the state machine.
    pending: Option<PyStep>,
}

impl State {
    fn json(scan: JsonScan, ctx: Ctx) -> Self {
        Self::Json(Box::new(JsonState {
            scan,
            ctx,
            calls: 0,
            malformed: false,
            closed: false,
            pending: None,
            tried: false,
            built: None,
        }))
    }

    fn python(scan: PyScan, in_list: bool) -> Self {
        Self::Python(Box::new(PyState {
            scan,
            calls: 0,
            malformed: false,
            in_list,
            pending: None,
        }))
    }
}

/// What a look-ahead at a trigger byte found.
enum Start {
    /// A call starts; its trigger is `offset` bytes after the look-ahead's start.
    Go(Kind, usize),
    /// Not a call; treat the byte as text.
    No,
    /// Cannot tell yet.
    Wait,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Json,
    Tag(Tag, usize),
    PyList,
    PyCall,
    React,
}

/// Extracts tool calls from model text fed in chunks.
///
/// Feed text with [`push`](Self::push) (or bytes with [`push_bytes`](Self::push_bytes)),
/// then call [`finish`](Self::finish) once for what the end of the input decides.
#[derive(Debug)]
pub struct CallParser {
    format: Format,
    on: Active,
    triggers: [bool; 256],
    buf: String,
    /// Start of the undecided text in `buf`; everything before it is consumed.
    head: usize,
    base: usize,
    pos: usize,
    state: State,
    line_start: bool,
    skip_trigger_at: Option<usize>,
    fenced: bool,
    synthetic: usize,
    /// Where the synthetic closers were inserted, relative to `head`.
    synthetic_at: usize,
    total: usize,
    max_input: usize,
    utf8_tail: Vec<u8>,
    finished: bool,
    /// Whether the consumed text ends a line (blank space aside).
    last_newline: bool,
    /// What a small chunk may do without the state machine (see [`Lane`]).
    lane: Lane,
    /// The marker the last look-ahead ran out of input inside, and where it starts in `buf`.
    waiting: Cell<Option<(&'static str, usize)>>,
}

/// Where a small chunk can go without a trip through the state machine, because the bytes
/// it would need to change anything are known. Any other chunk takes the general path,
/// which decides from the buffer alone, so taking a lane never changes a result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lane {
    /// Every chunk takes the general path.
    None,
    /// Inside JSON: only a closing bracket can complete a call, so a chunk without one is
    /// appended unread until the buffer reaches this length; the scanner then reads the
    /// bytes in one go (a bounded delay before text that is not JSON after all is given back).
    Json(usize),
    /// Partway through this marker, which starts at this offset of `buf`: a chunk that goes
    /// on with it without completing it is only appended.
    Marker(&'static str, usize),
    /// Waiting for this byte (the end of a line): a chunk without it is only appended.
    Until(u8),
    /// Waiting for something other than blank space: blank space is only appended.
    Blank,
    /// Mid-line prose with nothing held back: a chunk without a trigger byte is text.
    Prose,
}

impl CallParser {
    /// A parser for `format` ([`Format::Auto`] detects every format).
    pub fn new(format: Format) -> Self {
        let on = Active::of(format);
        Self {
            format,
            on,
            triggers: on.triggers(),
            buf: String::new(),
            head: 0,
            base: 0,
            pos: 0,
            state: State::Text,
            line_start: true,
            skip_trigger_at: None,
            fenced: false,
            synthetic: 0,
            synthetic_at: 0,
            total: 0,
            max_input: DEFAULT_MAX_INPUT,
            utf8_tail: Vec::new(),
            finished: false,
            last_newline: true,
            lane: Lane::None,
            waiting: Cell::new(None),
        }
    }

    /// Sets the limit on the total input; past it [`push`](Self::push) fails.
    #[must_use]
    pub fn max_input_bytes(mut self, limit: usize) -> Self {
        self.max_input = limit;
        self
    }

    /// The format this parser was made for.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Feeds a chunk of text; returns every event it completed.
    #[inline(always)]
    pub fn push(&mut self, chunk: &str) -> Result<Vec<Event>, ParseError> {
        if chunk.len() <= 16
            && self.total + chunk.len() <= self.max_input
            && self.only_append(chunk)
        {
            return Ok(Vec::new());
        }
        self.push_chunk(chunk)
    }

    /// Appends a token-sized chunk that its [`Lane`] says cannot complete anything; `false`
    /// (nothing done) when the chunk needs the state machine.
    #[inline(always)]
    fn only_append(&mut self, chunk: &str) -> bool {
        let bytes = chunk.as_bytes();
        let quiet =
            match self.lane {
                Lane::None | Lane::Prose => false,
                Lane::Json(until) => {
                    self.buf.len() + bytes.len() < until
                        && !bytes.iter().any(|&b| matches!(b, b'}' | b']'))
                }
                Lane::Marker(marker, at) => marker
                    .as_bytes()
                    .get(self.buf.len() - at..)
                    .is_some_and(|rest| {
                        !bytes.is_empty() && bytes.len() < rest.len() && rest.starts_with(bytes)
                    }),
                Lane::Until(end) => !bytes.contains(&end),
                Lane::Blank => bytes.iter().all(u8::is_ascii_whitespace),
            };
        if quiet {
            self.append(chunk);
        }
        quiet
    }

    /// Appends a chunk to the buffer (a single byte without a call to `memcpy`).
    #[inline(always)]
    fn append(&mut self, chunk: &str) {
        self.total += chunk.len();
        match chunk.as_bytes() {
            &[b] => self.buf.push(char::from(b)),
            _ => self.buf.push_str(chunk),
        }
    }

    /// [`Lane::Prose`]: a chunk without a trigger byte is text.
    fn push_prose(&mut self, chunk: &str) -> Option<Vec<Event>> {
        let bytes = chunk.as_bytes();
        if bytes.is_empty() || bytes.iter().any(|&b| self.triggers[usize::from(b)]) {
            return None;
        }
        self.total += bytes.len();
        self.base += bytes.len();
        self.skip_trigger_at = None;
        if bytes.iter().any(|&b| !matches!(b, b' ' | b'\t' | b'\r')) {
            self.last_newline = false;
        }
        Some(vec![Event::Text {
            text: chunk.to_owned(),
        }])
    }

    #[inline(never)]
    fn push_chunk(&mut self, chunk: &str) -> Result<Vec<Event>, ParseError> {
        if self.lane == Lane::Prose
            && chunk.len() <= 64
            && self.total + chunk.len() <= self.max_input
            && let Some(events) = self.push_prose(chunk)
        {
            return Ok(events);
        }
        if self.finished {
            return Err(ParseError::Finished);
        }
        self.total += chunk.len();
        if self.total > self.max_input {
            return Err(ParseError::InputTooLarge {
                limit: self.max_input,
            });
        }
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            // Compact only when the decided prefix is at least half the buffer: amortized linear.
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.push_str(chunk);
        // A large chunk holds many calls: reserve for them up front (a call is rarely < 128 bytes).
        let mut out = Vec::with_capacity(chunk.len() >> 7);
        self.run(false, &mut out);
        Ok(out)
    }

    /// Feeds a chunk of bytes, which may split a UTF-8 character.
    pub fn push_bytes(&mut self, chunk: &[u8]) -> Result<Vec<Event>, ParseError> {
        let owned;
        let bytes = if self.utf8_tail.is_empty() {
            chunk
        } else {
            let mut joined = std::mem::take(&mut self.utf8_tail);
            joined.extend_from_slice(chunk);
            owned = joined;
            &owned
        };
        let offset = self.total;
        match std::str::from_utf8(bytes) {
            Ok(text) => self.push(text),
            Err(e) if e.error_len().is_none() => {
                let (valid, tail) = bytes.split_at(e.valid_up_to());
                let tail = tail.to_vec();
                let text =
                    std::str::from_utf8(valid).map_err(|_| ParseError::InvalidUtf8 { offset })?;
                let events = self.push(text)?;
                self.utf8_tail = tail;
                Ok(events)
            }
            Err(e) => Err(ParseError::InvalidUtf8 {
                offset: offset + e.valid_up_to(),
            }),
        }
    }

    /// Ends the input; returns the events that only the end could decide (a call left
    /// unclosed, trailing text).
    pub fn finish(&mut self) -> Result<Vec<Event>, ParseError> {
        if self.finished {
            return Err(ParseError::Finished);
        }
        if !self.utf8_tail.is_empty() {
            return Err(ParseError::InvalidUtf8 { offset: self.total });
        }
        self.finished = true;
        self.lane = Lane::None;
        let mut out = Vec::new();
        self.run(true, &mut out);
        Ok(out)
    }

    #[inline]
    fn run(&mut self, eof: bool, out: &mut Vec<Event>) {
        // Fast path: mid-value, a new chunk usually only needs scanning. Scan it in place and
        // go through the state machine only when the scanner stops for a reason.
        let bytes = &self.buf.as_bytes()[self.head..];
        match &mut self.state {
            State::Json(js) if js.pending.is_none() => {
                let step = js.scan.scan(bytes, eof);
                if step == Step::NeedMore && !eof {
                    self.lane = json_lane(self.buf.len(), js);
                    return;
                }
                js.pending = Some(step);
            }
            State::Python(ps) if ps.pending.is_none() => {
                let step = ps.scan.scan(bytes, eof);
                if step == PyStep::NeedMore && !eof {
                    return;
                }
                ps.pending = Some(step);
            }
            _ => {}
        }
        self.waiting.set(None);
        while self.step(eof, out) {}
        self.lane = if eof { Lane::None } else { self.lane() };
    }

    /// The lane for the next small chunk, from where the state machine stopped.
    fn lane(&self) -> Lane {
        match &self.state {
            State::Json(js) if js.pending.is_none() && js.built.is_none() => {
                json_lane(self.buf.len(), js)
            }
            // After a call tag, only blank space has come.
            State::AfterTag { .. } => Lane::Blank,
            State::Text | State::AfterCall { .. } | State::ReactInput { .. } => {
                match self.waiting.get() {
                    Some((marker, at)) => Lane::Marker(marker, at),
                    // After a call, only blank space has come.
                    None if matches!(self.state, State::AfterCall { .. }) => Lane::Blank,
                    // After `Action: name`, only blank space has come so far.
                    None if matches!(self.state, State::ReactInput { at, .. }
                        if self.buf.as_bytes()[self.head + at..].iter().all(u8::is_ascii_whitespace)) =>
                    {
                        Lane::Blank
                    }
                    None if matches!(self.state, State::Text)
                        && !self.line_start
                        && self.head == self.buf.len()
                        && self.pos == 0
                        && self.synthetic == 0 =>
                    {
                        Lane::Prose
                    }
                    None => Lane::None,
                }
            }
            State::ReactName { .. } => Lane::Until(b'\n'),
            _ => Lane::None,
        }
    }

    /// Whether `marker` is at `i` of the undecided text (see [`marker_at`]); when the text
    /// ends inside it, remembers that for the [`Lane::Marker`].
    fn marker_at(&self, i: usize, marker: &'static str, eof: bool) -> Option<bool> {
        let found = marker_at(&self.buf.as_bytes()[self.head..], i, marker, eof);
        if found.is_none() {
            self.waiting.set(Some((marker, self.head + i)));
        }
        found
    }

    /// Advances the state machine once; `false` when it needs more input.
    fn step(&mut self, eof: bool, out: &mut Vec<Event>) -> bool {
        match std::mem::replace(&mut self.state, State::Text) {
            State::Text => self.text(eof, out),
            State::AfterTag { tag, at } => self.after_tag(tag, at, eof, out),
            State::Json(js) => self.json(js, eof, out),
            State::Python(ps) => self.python(ps, eof, out),
            State::MistralName { start } => self.mistral_name(start, eof, out),
            State::ReactName { start } => self.react_name(start, eof, out),
            State::ReactInput { name, at } => self.react_input(name, at, eof, out),
            State::SkipTo {
                marker,
                from,
                reason,
                format,
            } => self.skip_to(marker, from, reason, format, eof, out),
            State::AfterCall { at, ctx } => self.after_call(at, ctx, eof, out),
        }
    }

    // ---- prose ----------------------------------------------------------------------

    fn text(&mut self, eof: bool, out: &mut Vec<Event>) -> bool {
        let len = self.buf.len() - self.head;
        let mut i = self.pos;
        let mut line_start = self.line_start;
        while i < len {
            let b = self.buf.as_bytes()[self.head + i];
            let skip = self.skip_trigger_at == Some(i);
            if line_start {
                if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                    i += 1;
                    continue;
                }
                if !skip && is_ident_start(b) && (self.on.python || self.on.react) {
                    match self.look(i, eof, true) {
                        Start::Go(kind, offset) => return self.begin(i, kind, offset, out),
                        Start::Wait => return self.hold(i, true, out),
                        Start::No => {}
                    }
                }
                line_start = false;
            }
            if b == b'\n' {
                line_start = true;
                i += 1;
                continue;
            }
            if self.triggers[usize::from(b)] && !skip {
                match self.look(i, eof, false) {
                    Start::Go(kind, offset) => return self.begin(i, kind, offset, out),
                    Start::Wait => return self.hold(i, false, out),
                    Start::No => {}
                }
            }
            i += 1;
            let bytes = &self.buf.as_bytes()[self.head..];
            while i < len && !self.triggers[usize::from(bytes[i])] {
                i += 1;
            }
        }
        self.hold(i, line_start, out)
    }

    /// Emits the text before `i` and keeps the rest for the next chunk.
    fn hold(&mut self, i: usize, line_start: bool, out: &mut Vec<Event>) -> bool {
        self.line_start = line_start;
        self.emit_text(i, out);
        self.consume(i);
        self.pos = 0;
        self.state = State::Text;
        false
    }

    /// Starts a call structure whose region (fence included) begins at `i`.
    fn begin(&mut self, i: usize, kind: Kind, offset: usize, out: &mut Vec<Event>) -> bool {
        self.emit_text(i, out);
        self.consume(i);
        self.fenced = offset > 0 && self.buf.as_bytes()[self.head] == b'`';
        self.line_start = false;
        let t = offset;
        self.state = match kind {
            Kind::Json => State::json(JsonScan::new(t), Ctx::Bare),
            Kind::Tag(tag, len) => State::AfterTag { tag, at: t + len },
            Kind::PyList => State::python(PyScan::new(t, true), true),
            Kind::PyCall => State::python(PyScan::new(t, false), false),
            Kind::React => State::ReactName {
                start: t + REACT_ACTION.len(),
            },
        };
        true
    }

    /// Looks at the trigger byte at `i`: does a call start here?
    fn look(&self, i: usize, eof: bool, line_start: bool) -> Start {
        let bytes = &self.buf.as_bytes()[self.head..];
        let b = bytes[i];
        match b {
            b'`' => self.look_fence(i, eof),
            b'{' if self.on.json => Start::Go(Kind::Json, 0),
            b'<' => {
                for (on, marker, tag) in [
                    (self.on.hermes, HERMES_OPEN, Tag::Hermes),
                    (self.on.python_tag, PYTHON_TAG, Tag::PythonTag),
                ] {
                    if !on {
                        continue;
                    }
                    match self.marker_at(i, marker, eof) {
                        Some(true) => return Start::Go(Kind::Tag(tag, marker.len()), 0),
                        None => return Start::Wait,
                        Some(false) => {}
                    }
                }
                Start::No
            }
            b'[' => {
                if self.on.mistral {
                    match self.marker_at(i, MISTRAL_TAG, eof) {
                        Some(true) => {
                            return Start::Go(Kind::Tag(Tag::Mistral, MISTRAL_TAG.len()), 0);
                        }
                        None => return Start::Wait,
                        Some(false) => {}
                    }
                }
                let Some(j) = skip_blank(bytes, i + 1, eof) else {
                    return Start::Wait;
                };
                match bytes.get(j) {
                    None => Start::No,
                    Some(b'{') if self.on.json => Start::Go(Kind::Json, 0),
                    Some(&c) if self.on.python && is_ident_start(c) => {
                        match call_name_end(bytes, j, eof) {
                            None => Start::Wait,
                            Some(k) if bytes.get(k) == Some(&b'(') => Start::Go(Kind::PyList, 0),
                            Some(_) => Start::No,
                        }
                    }
                    Some(_) => Start::No,
                }
            }
            c if line_start && is_ident_start(c) => {
                if self.on.react {
                    match self.marker_at(i, REACT_ACTION, eof) {
                        Some(true) => return Start::Go(Kind::React, 0),
                        None => return Start::Wait,
                        Some(false) => {}
                    }
                }
                if self.on.python {
                    return match call_name_end(bytes, i, eof) {
                        None => Start::Wait,
                        Some(k) if bytes.get(k) == Some(&b'(') => Start::Go(Kind::PyCall, 0),
                        Some(_) => Start::No,
                    };
                }
                Start::No
            }
            _ => Start::No,
        }
    }

    /// A code fence: "```lang" and blank space, then a call.
    fn look_fence(&self, i: usize, eof: bool) -> Start {
        let bytes = &self.buf.as_bytes()[self.head..];
        match self.marker_at(i, FENCE, eof) {
            None => return Start::Wait,
            Some(false) => return Start::No,
            Some(true) => {}
        }
        let mut j = i + FENCE.len();
        while j < bytes.len()
            && j - i < LOOKAHEAD
            && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'-' | b'+'))
        {
            j += 1;
        }
        if j == bytes.len() && !eof {
            return Start::Wait;
        }
        let Some(k) = skip_blank(bytes, j, eof) else {
            return Start::Wait;
        };
        if k >= bytes.len() || bytes[k] == b'`' {
            return Start::No;
        }
        match self.look(k, eof, true) {
            Start::Go(kind, _) => Start::Go(kind, k - i),
            other => other,
        }
    }

    // ---- tags -----------------------------------------------------------------------

    fn after_tag(&mut self, tag: Tag, at: usize, eof: bool, out: &mut Vec<Event>) -> bool {
        let bytes = &self.buf.as_bytes()[self.head..];
        let Some(j) = skip_blank(bytes, at, eof) else {
            self.state = State::AfterTag { tag, at };
            return false;
        };
        let format = match tag {
            Tag::Hermes => Format::Hermes,
            Tag::PythonTag => Format::Llama,
            Tag::Mistral => Format::Mistral,
        };
        let Some(&c) = bytes.get(j) else {
            if !eof {
                self.state = State::AfterTag { tag, at };
                return false;
            }
            self.malformed(
                0..j,
                "the output ended right after the call tag",
                format,
                out,
            );
            self.consume(j);
            return true;
        };
        let ctx = match tag {
            Tag::Hermes => Ctx::Hermes,
            Tag::PythonTag => Ctx::PythonTag,
            Tag::Mistral => Ctx::Mistral,
        };
        match (tag, c) {
            (_, b'{' | b'[') => {
                self.state = State::json(JsonScan::new(j), ctx);
            }
            (Tag::PythonTag, c) if is_ident_start(c) => {
                self.state = State::python(PyScan::new(j, false), false);
            }
            (Tag::Mistral, c) if is_ident_start(c) => self.state = State::MistralName { start: j },
            (Tag::Hermes, _) => {
                self.state = State::SkipTo {
                    marker: HERMES_CLOSE,
                    from: j,
                    reason:
                        "expected a JSON object with \"name\" and \"arguments\" after <tool_call>"
                            .into(),
                    format,
                };
            }
            (Tag::PythonTag | Tag::Mistral, _) => {
                self.malformed(0..j, "expected a JSON call after the call tag", format, out);
                self.consume(j);
            }
        }
        true
    }

    fn mistral_name(&mut self, start: usize, eof: bool, out: &mut Vec<Event>) -> bool {
        let bytes = &self.buf.as_bytes()[self.head..];
        let window = &bytes[start..bytes.len().min(start + LOOKAHEAD)];
        let Some(k) = memchr::memmem::find(window, MISTRAL_ARGS.as_bytes()) else {
            if !eof && window.len() < LOOKAHEAD {
                self.state = State::MistralName { start };
                return false;
            }
            // The window may end inside a character; the span must not.
            let mut end = start + window.len();
            while !self.buf.is_char_boundary(self.head + end) {
                end -= 1;
            }
            self.malformed(
                0..end,
                "expected `[ARGS]` after the tool name",
                Format::Mistral,
                out,
            );
            self.consume(end);
            return true;
        };
        let head = &self.buf[self.head + start..self.head + start + k];
        let (name, id) = match head.split_once(MISTRAL_CALL_ID) {
            Some((name, id)) => (
                name.trim().to_owned(),
                Some(id.trim().to_owned()).filter(|s| !s.is_empty()),
            ),
            None => (head.trim().to_owned(), None),
        };
        let args_at = start + k + MISTRAL_ARGS.len();
        let Some(j) = skip_blank(bytes, args_at, eof) else {
            self.state = State::MistralName { start };
            return false;
        };
        if bytes.get(j) == Some(&b'{') {
            let ctx = Ctx::Args {
                name,
                id,
                format: Format::Mistral,
            };
            self.state = State::json(JsonScan::new(j).without_calls(), ctx);
        } else if j >= bytes.len() && !eof {
            self.state = State::MistralName { start };
            return false;
        } else {
            self.malformed(
                0..j,
                "expected a JSON object of arguments after `[ARGS]`",
                Format::Mistral,
                out,
            );
            self.consume(j);
        }
        true
    }

    fn react_name(&mut self, start: usize, eof: bool, out: &mut Vec<Event>) -> bool {
        let bytes = &self.buf.as_bytes()[self.head..];
        let end = match memchr::memchr(b'\n', &bytes[start..]) {
            Some(k) => start + k,
            None if eof => bytes.len(),
            None => {
                self.state = State::ReactName { start };
                return false;
            }
        };
        let name = self.buf[self.head + start..self.head + end]
            .trim()
            .trim_matches(|c| matches!(c, '`' | '"' | '\''))
            .trim()
            .to_owned();
        if name.is_empty() {
            self.malformed(0..end, "`Action:` must name a tool", Format::React, out);
            self.consume(end);
            return true;
        }
        self.state = State::ReactInput { name, at: end };
        true
    }

    fn react_input(&mut self, name: String, at: usize, eof: bool, out: &mut Vec<Event>) -> bool {
        let bytes = &self.buf.as_bytes()[self.head..];
        let Some(j) = skip_blank(bytes, at, eof) else {
            self.state = State::ReactInput { name, at };
            return false;
        };
        match self.marker_at(j, REACT_INPUT, eof) {
            None => {
                self.state = State::ReactInput { name, at };
                false
            }
            Some(false) => {
                let why = format!(
                    "`Action: {name}` must be followed by `Action Input:` and a JSON object of arguments"
                );
                self.malformed(0..at, why, Format::React, out);
                self.consume(at);
                self.line_start = true;
                true
            }
            Some(true) => {
                let mut k = j + REACT_INPUT.len();
                while bytes.get(k).is_some_and(|b| matches!(b, b' ' | b'\t')) {
                    k += 1;
                }
                match bytes.get(k) {
                    Some(b'{') => {
                        let ctx = Ctx::Args {
                            name,
                            id: None,
                            format: Format::React,
                        };
                        self.state = State::json(JsonScan::new(k).without_calls(), ctx);
                        true
                    }
                    None if !eof => {
                        self.state = State::ReactInput { name, at };
                        false
                    }
                    _ => {
                        let end = memchr::memchr(b'\n', &bytes[k..]).map_or(bytes.len(), |e| k + e);
                        if end == bytes.len() && !eof {
                            self.state = State::ReactInput { name, at };
                            return false;
                        }
                        let why = format!(
                            "the Action Input of `{name}` must be a JSON object of arguments"
                        );
                        self.malformed(0..end, why, Format::React, out);
                        self.consume(end);
                        true
                    }
                }
            }
        }
    }

    fn skip_to(
        &mut self,
        marker: &'static str,
        from: usize,
        reason: String,
        format: Format,
        eof: bool,
        out: &mut Vec<Event>,
    ) -> bool {
        let bytes = &self.buf.as_bytes()[self.head..];
        match memchr::memmem::find(&bytes[from..], marker.as_bytes()) {
            Some(k) => {
                let end = from + k + marker.len();
                self.malformed(0..end, reason, format, out);
                self.consume(end);
                true
            }
            None if eof => {
                let end = bytes.len();
                self.malformed(0..end, reason, format, out);
                self.consume(end);
                true
            }
            None => {
                let from = bytes.len().saturating_sub(marker.len() - 1).max(from);
                self.state = State::SkipTo {
                    marker,
                    from,
                    reason,
                    format,
                };
                false
            }
        }
    }

    fn after_call(&mut self, at: usize, ctx: Ctx, eof: bool, _out: &mut Vec<Event>) -> bool {
        let bytes = &self.buf.as_bytes()[self.head..];
        let mut j = at;
        let mut newline = false;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            newline |= bytes[j] == b'\n';
            j += 1;
        }
        if j >= bytes.len() && !eof {
            self.state = State::AfterCall { at, ctx };
            return false;
        }
        let mut closers: Vec<&'static str> = Vec::new();
        if ctx == Ctx::Hermes {
            closers.push(HERMES_CLOSE);
        }
        if ctx == Ctx::PythonTag || ctx == Ctx::Bare {
            closers.push(";");
        }
        if self.fenced {
            closers.push(FENCE);
        }
        for marker in closers {
            match self.marker_at(j, marker, eof) {
                None => {
                    self.state = State::AfterCall { at, ctx };
                    return false;
                }
                Some(true) => {
                    let end = j + marker.len();
                    if marker == FENCE {
                        self.fenced = false;
                    }
                    self.consume(end);
                    self.line_start = newline;
                    // More may follow: another separator, or the fence.
                    self.state = State::AfterCall { at: 0, ctx };
                    return true;
                }
                Some(false) => {}
            }
        }
        // Only blank space was between the call and what follows; drop it.
        self.consume(j);
        self.line_start = newline || self.line_start;
        let bytes = &self.buf.as_bytes()[self.head..];
        if ctx == Ctx::PythonTag && bytes.first() == Some(&b'{') {
            self.state = State::json(JsonScan::new(0), ctx);
            return true;
        }
        if self.fenced && !bytes.is_empty() && !matches!(bytes[0], b'{' | b'[' | b'<') {
            self.fenced = false;
        }
        self.state = State::Text;
        self.pos = 0;
        true
    }

    // ---- JSON -----------------------------------------------------------------------

    fn json(&mut self, mut js: Box<JsonState>, eof: bool, out: &mut Vec<Event>) -> bool {
        if !js.tried {
            js.tried = true;
            // The whole value is often here already (a whole buffer, a large chunk): read it
            // and its calls in one pass. If it is not plain JSON, or not all here, the scanner
            // takes over from its start.
            if js.pending.is_none() && js.scan.is_fresh() {
                let calls = !matches!(js.ctx, Ctx::Args { .. });
                js.built = fast_json::read_root(&self.buf[self.head..], js.scan.start(), calls);
            }
        }
        loop {
            let pending = js.pending.take();
            let JsonState {
                scan,
                ctx,
                calls,
                malformed,
                closed,
                built,
                ..
            } = &mut *js;
            let mut value = None;
            let step = match (pending, built.as_mut()) {
                (Some(step), _) => step,
                (None, Some(built)) => match built.candidates.pop_front() {
                    Some((start, end, members)) => {
                        value = Some(Value::Object(members));
                        Step::Candidate { start, end }
                    }
                    None => {
                        value = Some(std::mem::take(&mut built.root));
                        Step::Done { end: built.end }
                    }
                },
                (None, None) => scan.scan(&self.buf.as_bytes()[self.head..], eof),
            };
            match step {
                Step::Candidate { start, end } => {
                    if !matches!(*ctx, Ctx::Args { .. }) {
                        match self.candidate(start, end, value, ctx, *closed, out) {
                            Some(true) => *calls += 1,
                            Some(false) => *malformed = true,
                            None => {}
                        }
                    }
                }
                Step::Done { end } => {
                    let root = scan.start();
                    if scan.overflowed {
                        let why = format!(
                            "the JSON is nested deeper than {} levels",
                            crate::lenient::MAX_DEPTH
                        );
                        self.malformed(root..end, why, ctx.format(false, self.format), out);
                        self.consume(end);
                        return self.after_structure(js.ctx);
                    }
                    if let Ctx::Args { name, id, format } = &*ctx {
                        let (name, id, format, closed) =
                            (name.clone(), id.clone(), *format, *closed);
                        self.args_call(&name, id, format, root..end, value, closed, out);
                        self.consume(end);
                        return self.after_structure(js.ctx);
                    }
                    if *calls == 0 && !*malformed {
                        if ctx.tagged() {
                            let why = "expected a JSON object with \"name\" and \"arguments\"";
                            self.malformed(root..end, why, ctx.format(false, self.format), out);
                        } else {
                            return self.give_back(end, out);
                        }
                    }
                    self.consume(end);
                    return self.after_structure(js.ctx);
                }
                Step::Abort { at } => {
                    if ctx.tagged()
                        && !*closed
                        && let Some(closers) = scan.closers()
                    {
                        self.buf.insert_str(self.head + at, &closers);
                        self.synthetic += closers.len();
                        self.synthetic_at = at;
                        *closed = true;
                        continue;
                    }
                    if !ctx.tagged() {
                        if *calls == 0 && !*malformed {
                            return self.give_back(at, out);
                        }
                        self.consume(at);
                        self.state = State::Text;
                        self.pos = 0;
                        return true;
                    }
                    let root = scan.start();
                    let why = if self.buf.as_bytes()[self.head..].get(at).is_some() {
                        format!(
                            "the JSON is not valid at `{}`",
                            char_at(&self.buf[self.head..], at)
                        )
                    } else {
                        "the JSON is not valid".to_owned()
                    };
                    if *ctx == Ctx::Hermes {
                        self.state = State::SkipTo {
                            marker: HERMES_CLOSE,
                            from: at,
                            reason: why,
                            format: Format::Hermes,
                        };
                        let _ = root;
                        return true;
                    }
                    self.malformed(root..at, why, ctx.format(false, self.format), out);
                    self.consume(at);
                    self.state = State::Text;
                    self.pos = 0;
                    return true;
                }
                Step::NeedMore if !eof => {
                    self.state = State::Json(js);
                    return false;
                }
                Step::NeedMore => {
                    if !*closed
                        && (ctx.tagged() || scan.looks_like_call() || *calls > 0)
                        && let Some(closers) = scan.closers()
                    {
                        self.synthetic_at = self.buf.len() - self.head;
                        self.buf.push_str(&closers);
                        self.synthetic += closers.len();
                        *closed = true;
                        continue;
                    }
                    let end = self.buf.len() - self.head;
                    if ctx.tagged() || scan.looks_like_call() {
                        let root = scan.start();
                        let why = "the output ended inside the call";
                        self.malformed(root..end, why, ctx.format(false, self.format), out);
                        self.consume(end);
                        return true;
                    }
                    if *calls == 0 && !*malformed {
                        return self.give_back(end, out);
                    }
                    self.consume(end);
                    return true;
                }
            }
        }
    }

    /// A call-shaped object closed at `start..end`: `Some(true)` for a call, `Some(false)`
    /// for a malformed one, `None` when it is not a call after all.
    fn candidate(
        &mut self,
        start: usize,
        end: usize,
        value: Option<Value>,
        ctx: &Ctx,
        closed: bool,
        out: &mut Vec<Event>,
    ) -> Option<bool> {
        let text = &self.buf[self.head + start..self.head + end];
        // Fast paths: the members read in one pass, or strict JSON read now.
        let keys = match value.or_else(|| fast_json::read(text)) {
            Some(Value::Object(members)) => Some(CallKeys::from_object(members)),
            _ => CallKeys::from_json(text),
        };
        if let Some(keys) = keys {
            let mut repairs = BTreeSet::new();
            return self.emit_shape(
                interpret_keys(keys, !ctx.tagged(), &mut repairs),
                repairs,
                start,
                end,
                ctx,
                closed,
                out,
            );
        }
        let (value, mut repairs) = match crate::lenient::parse_json(text) {
            Ok(parsed) => parsed,
            Err(why) => {
                let format = ctx.format(false, self.format);
                self.malformed(
                    start..end,
                    format!("the JSON is not valid ({why})"),
                    format,
                    out,
                );
                return Some(false);
            }
        };
        let shape = interpret(value, !ctx.tagged(), &mut repairs);
        self.emit_shape(shape, repairs, start, end, ctx, closed, out)
    }

    /// Emits what a call-shaped object turned out to be.
    #[allow(clippy::too_many_arguments)] // the span, context and repairs of one candidate
    fn emit_shape(
        &mut self,
        shape: Shape,
        mut repairs: BTreeSet<Repair>,
        start: usize,
        end: usize,
        ctx: &Ctx,
        closed: bool,
        out: &mut Vec<Event>,
    ) -> Option<bool> {
        match shape {
            Shape::Call(parts) => {
                self.note_structural_repairs(&mut repairs, closed);
                let format = ctx.format(parts.llama_style, self.format);
                out.push(Event::Call(ParsedCall {
                    id: parts.id,
                    name: parts.name,
                    arguments: parts.arguments,
                    format,
                    span: self.span(start..end),
                    repairs: repairs.into_iter().collect(),
                }));
                Some(true)
            }
            Shape::Bad(why) => {
                self.malformed(start..end, why, ctx.format(false, self.format), out);
                Some(false)
            }
            Shape::NotACall => None,
        }
    }

    #[allow(clippy::too_many_arguments)] // the call's name, id, format, span and value
    fn args_call(
        &mut self,
        name: &str,
        id: Option<String>,
        format: Format,
        range: std::ops::Range<usize>,
        value: Option<Value>,
        closed: bool,
        out: &mut Vec<Event>,
    ) {
        let text = &self.buf[self.head + range.start..self.head + range.end];
        let parsed = match value {
            Some(value) => Ok((value, BTreeSet::new())),
            None => crate::lenient::parse_json(text),
        };
        match parsed {
            Ok((Value::Object(arguments), mut repairs)) => {
                self.note_structural_repairs(&mut repairs, closed);
                out.push(Event::Call(ParsedCall {
                    id,
                    name: name.to_owned(),
                    arguments: Value::Object(arguments),
                    format,
                    span: self.span(0..range.end),
                    repairs: repairs.into_iter().collect(),
                }));
            }
            Ok((other, _)) => {
                let why = format!(
                    "the arguments of `{name}` must be a JSON object, not {}",
                    kind(&other)
                );
                self.malformed(0..range.end, why, format, out);
            }
            Err(why) => self.malformed(
                0..range.end,
                format!("the arguments of `{name}` are not valid JSON ({why})"),
                format,
                out,
            ),
        }
    }

    fn note_structural_repairs(&self, repairs: &mut BTreeSet<Repair>, closed: bool) {
        if closed {
            repairs.insert(Repair::ClosedBrackets);
        }
        if self.fenced {
            repairs.insert(Repair::CodeFence);
        }
    }

    /// The structure was not a call after all: its text up to `at` is prose.
    fn give_back(&mut self, at: usize, out: &mut Vec<Event>) -> bool {
        let trigger = self.trigger_offset();
        if at <= trigger {
            // Nothing but the fence (if any) before the trigger: re-scan from the trigger as text.
            self.emit_text(trigger, out);
            self.consume(trigger);
            self.skip_trigger_at = Some(0);
        } else {
            self.emit_text(at, out);
            self.consume(at);
        }
        self.fenced = false;
        self.line_start = self.last_newline;
        self.state = State::Text;
        self.pos = 0;
        true
    }

    /// Where the trigger byte of the current structure is (after a fence, if any).
    fn trigger_offset(&self) -> usize {
        if !self.fenced {
            return 0;
        }
        let bytes = &self.buf.as_bytes()[self.head..];
        let mut j = FENCE.len();
        while j < bytes.len()
            && !bytes[j].is_ascii_whitespace()
            && !matches!(bytes[j], b'{' | b'[' | b'<')
        {
            j += 1;
        }
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    }

    fn after_structure(&mut self, ctx: Ctx) -> bool {
        self.state = State::AfterCall { at: 0, ctx };
        true
    }

    // ---- Python ---------------------------------------------------------------------

    fn python(&mut self, mut ps: Box<PyState>, eof: bool, out: &mut Vec<Event>) -> bool {
        loop {
            let pending = ps.pending.take();
            let PyState {
                scan,
                calls,
                malformed,
                in_list,
                ..
            } = &mut *ps;
            let (calls, malformed, in_list) = (calls, malformed, *in_list);
            let step = match pending {
                Some(step) => step,
                None => scan.scan(&self.buf.as_bytes()[self.head..], eof),
            };
            match step {
                PyStep::NeedMore => {
                    self.state = State::Python(ps);
                    return false;
                }
                PyStep::Call { start, end } => match self.python_call(start, end) {
                    Ok(call) => {
                        out.push(Event::Call(call));
                        *calls += 1;
                    }
                    Err(why) => {
                        let deliberate =
                            in_list || *calls > 0 || *malformed || self.format == Format::Python;
                        if !deliberate {
                            return self.give_back(end, out);
                        }
                        self.malformed(start..end, why, Format::Python, out);
                        *malformed = true;
                    }
                },
                PyStep::End { at, truncated } => {
                    let deliberate =
                        in_list || *calls > 0 || *malformed || self.format == Format::Python;
                    if let Some(start) = truncated.filter(|_| deliberate) {
                        let end = self.buf.len() - self.head;
                        self.malformed(
                            start..end,
                            "the output ended inside the call",
                            Format::Python,
                            out,
                        );
                        self.consume(end);
                        return true;
                    }
                    if *calls == 0 && !*malformed {
                        return self.give_back(at, out);
                    }
                    self.consume(at);
                    return self.after_structure(Ctx::Args {
                        name: String::new(),
                        id: None,
                        format: Format::Python,
                    });
                }
            }
        }
    }

    fn python_call(&self, start: usize, end: usize) -> Result<ParsedCall, String> {
        let text = &self.buf[self.head + start..self.head + end];
        let expr = parse_expr(text).map_err(|e| format!("not a Python call: {}", e.message))?;
        let PyExpr::Call { func, args, kwargs } = expr else {
            return Err("not a Python call".into());
        };
        let name = func
            .dotted_name()
            .ok_or("the called name must be a plain or dotted name")?;
        if !args.is_empty() {
            return Err(format!(
                "`{name}` was given positional arguments; write every argument as name=value"
            ));
        }
        let mut repairs = BTreeSet::new();
        let mut arguments = Map::new();
        for (key, value) in kwargs {
            let Some(key) = key else {
                return Err(format!(
                    "`{name}` was given `**` arguments; write every argument as name=value"
                ));
            };
            let value = py_json(&value, &mut repairs)
                .map_err(|why| format!("argument `{key}` of `{name}`: {why}"))?;
            arguments.insert(key, value);
        }
        if self.fenced {
            repairs.insert(Repair::CodeFence);
        }
        Ok(ParsedCall {
            id: None,
            name,
            arguments: Value::Object(arguments),
            format: Format::Python,
            span: self.span(start..end),
            repairs: repairs.into_iter().collect(),
        })
    }

    // ---- output ---------------------------------------------------------------------

    fn emit_text(&mut self, end: usize, out: &mut Vec<Event>) {
        if end == 0 {
            return;
        }
        let text = &self.buf[self.head..self.head + end];
        if let Some(Event::Text { text: last }) = out.last_mut() {
            last.push_str(text);
        } else {
            out.push(Event::Text {
                text: text.to_owned(),
            });
        }
    }

    fn malformed(
        &mut self,
        range: std::ops::Range<usize>,
        reason: impl Into<String>,
        format: Format,
        out: &mut Vec<Event>,
    ) {
        let end = range.end.min(self.buf.len() - self.head);
        let start = range.start.min(end);
        let text = &self.buf[self.head + start..self.head + end];
        out.push(Event::Malformed(Malformed::new(
            self.span(start..end),
            text,
            reason,
            format,
        )));
    }

    /// An absolute span for `range` of the buffer.
    fn span(&self, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        // Closers the parser inserted (at most one run, at `synthetic_at`) are not input.
        let real = |r: usize| {
            if self.synthetic == 0 || r <= self.synthetic_at {
                self.base + r
            } else {
                self.base + r.saturating_sub(self.synthetic).max(self.synthetic_at)
            }
        };
        real(range.start)..real(range.end)
    }

    /// Drops the first `n` bytes of the buffer, decided.
    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        for &b in self.buf.as_bytes()[self.head..][..n].iter().rev() {
            match b {
                b' ' | b'\t' | b'\r' => continue,
                b'\n' => self.last_newline = true,
                _ => self.last_newline = false,
            }
            break;
        }
        let real = if self.synthetic == 0 || n <= self.synthetic_at {
            n
        } else {
            n.saturating_sub(self.synthetic).max(self.synthetic_at)
        };
        if self.synthetic > 0 {
            if n <= self.synthetic_at {
                self.synthetic_at -= n;
            } else {
                self.synthetic = (self.synthetic_at + self.synthetic).saturating_sub(n);
                self.synthetic_at = 0;
            }
        }
        self.base += real;
        self.head += n;
        self.skip_trigger_at = None;
    }
}

/// The lane inside a JSON value, for a buffer of `len` bytes.
fn json_lane(len: usize, js: &JsonState) -> Lane {
    let window = if js.ctx.tagged() {
        TAGGED_JSON_WINDOW
    } else {
        JSON_WINDOW
    };
    Lane::Json(len + window)
}

/// Converts a Python value to JSON, reading `true`/`false`/`null` names as JSON literals.
fn py_json(expr: &PyExpr, repairs: &mut BTreeSet<Repair>) -> Result<Value, PyValueError> {
    expr.to_json_with(&mut |e| {
        let literal = e.json_literal_name()?;
        repairs.insert(Repair::JsonLiteralInPython);
        Some(literal)
    })
}

/// Whether `marker` is at `i`: `Some(true)`, `Some(false)`, or `None` when the buffer ends
/// inside a prefix of it (and more input may come).
fn marker_at(bytes: &[u8], i: usize, marker: &str, eof: bool) -> Option<bool> {
    let m = marker.as_bytes();
    let have = &bytes[i.min(bytes.len())..];
    if have.len() >= m.len() {
        return Some(&have[..m.len()] == m);
    }
    if m.starts_with(have) && !eof {
        return None;
    }
    Some(false)
}

/// Skips blank space from `i` (bounded); `None` when the buffer ends first.
fn skip_blank(bytes: &[u8], i: usize, eof: bool) -> Option<usize> {
    let mut j = i;
    while j < bytes.len() && bytes[j].is_ascii_whitespace() && j - i < LOOKAHEAD {
        j += 1;
    }
    if j == bytes.len() && !eof {
        return None;
    }
    Some(j)
}

/// End of a dotted name at `i` (bounded); `None` when the buffer ends inside it.
fn call_name_end(bytes: &[u8], i: usize, eof: bool) -> Option<usize> {
    let mut j = i;
    while j < bytes.len() && (is_ident_byte(bytes[j]) || bytes[j] == b'.') && j - i < LOOKAHEAD {
        j += 1;
    }
    if j == bytes.len() && !eof {
        return None;
    }
    Some(j)
}

fn char_at(text: &str, at: usize) -> char {
    let mut i = at;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    text[i..].chars().next().unwrap_or(' ')
}

/// Everything [`parse`] found in a whole text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// The calls, in order.
    pub calls: Vec<ParsedCall>,
    /// The text outside calls, joined.
    pub text: String,
    /// What looked like a call but could not be read.
    pub malformed: Vec<Malformed>,
}

impl Parsed {
    /// Collects a stream of events.
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Self {
        let mut parsed = Self::default();
        parsed.extend(events);
        parsed
    }

    /// Adds more events.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        let events = events.into_iter();
        // Most events of a large chunk are calls: one reservation instead of a doubling each.
        self.calls.reserve(events.size_hint().0);
        for event in events {
            match event {
                Event::Text { text } => self.text.push_str(&text),
                Event::Call(call) => self.calls.push(call),
                Event::Malformed(m) => self.malformed.push(m),
            }
        }
    }
}

/// Parses a whole text at once.
pub fn parse(format: Format, text: &str) -> Result<Parsed, ParseError> {
    let mut parser = CallParser::new(format);
    let mut parsed = Parsed::from_events(parser.push(text)?);
    parsed.extend(parser.finish()?);
    Ok(parsed)
}
