//! Server-sent events, decoded incrementally: [`SseDecoder`].
//!
//! Hand-written (about fifty lines) because the framing is tiny and the crates for it want to
//! own the HTTP client; what matters here is that a chunk boundary may fall anywhere, even
//! inside a UTF-8 character or between `\r` and `\n`, and that bad bytes become an error
//! naming them.

use crate::LlmError;

/// One event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when the server sent one.
    pub event: Option<String>,
    /// The data.
    pub data: String,
}

/// Splits a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    scanned: usize,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    /// A decoder with nothing read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received but not yet part of a complete line.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Feeds bytes; returns the events they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, LlmError> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = self.scanned;
        while let Some(k) = memchr_newline(&self.buf[i..]) {
            let end = i + k;
            let mut line_end = end;
            if self.buf[end] == b'\r' {
                // A lone `\r` ends a line too; `\r\n` is one line end. Wait to see which.
                if end + 1 == self.buf.len() {
                    break;
                }
                if self.buf[end + 1] == b'\n' {
                    i = end + 2;
                } else {
                    i = end + 1;
                }
            } else {
                i = end + 1;
            }
            if line_end > start && self.buf[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let line = &self.buf[start..line_end];
            let line = std::str::from_utf8(line)
                .map_err(|_| LlmError::protocol("an event-stream line is not UTF-8", line))?;
            if let Some(event) = apply_line(&mut self.event, &mut self.data, line) {
                events.push(event);
            }
            start = i;
        }
        self.buf.drain(..start);
        self.scanned = i - start;
        Ok(events)
    }
}

/// Applies one line to the event being built; a blank line completes it.
fn apply_line(
    event: &mut Option<String>,
    data: &mut Option<String>,
    line: &str,
) -> Option<SseEvent> {
    if line.is_empty() {
        let data = data.take()?;
        return Some(SseEvent {
            event: event.take(),
            data,
        });
    }
    if line.starts_with(':') {
        return None;
    }
    let (field, value) = match line.split_once(':') {
        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
        None => (line, ""),
    };
    match field {
        "data" => {
            let data = data.get_or_insert_with(String::new);
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value);
        }
        "event" => *event = Some(value.to_owned()),
        _ => {}
    }
    None
}

impl SseDecoder {
    /// Ends the stream: an event left without its blank line is returned.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.buf);
        if let Ok(line) = std::str::from_utf8(&rest) {
            let line = line.trim_end_matches(['\r', '\n']);
            if !line.is_empty() {
                apply_line(&mut self.event, &mut self.data, line);
            }
        }
        let data = self.data.take()?;
        Some(SseEvent {
            event: self.event.take(),
            data,
        })
    }
}

fn memchr_newline(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\n' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let stream = "data: {\"a\":1}\n\n: keep-alive\r\nevent: x\r\ndata: é1\r\ndata: 2\r\n\r\ndata: [DONE]\n\n";
        let want = vec![
            ev("{\"a\":1}"),
            SseEvent {
                event: Some("x".into()),
                data: "é1\n2".into(),
            },
            ev("[DONE]"),
        ];
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            for cut2 in cut..=bytes.len() {
                let mut d = SseDecoder::new();
                let mut got = d.push(&bytes[..cut]).unwrap();
                got.extend(d.push(&bytes[cut..cut2]).unwrap());
                got.extend(d.push(&bytes[cut2..]).unwrap());
                assert_eq!(got, want, "cuts at {cut} and {cut2}");
            }
        }
    }

    #[test]
    fn bad_bytes_are_named() {
        let mut d = SseDecoder::new();
        let err = d.push(b"data: \xff\xfe\n\n").unwrap_err();
        assert!(
            err.to_string().contains("not UTF-8") && err.to_string().contains("data: "),
            "{err}"
        );
    }

    #[test]
    fn a_final_event_without_blank_line_is_kept() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: last").unwrap().is_empty());
        assert_eq!(d.finish(), Some(ev("last")));
    }
}
