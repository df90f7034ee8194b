//! Arguments that arrive in pieces: [`ArgumentStream`].
//!
//! OpenAI-compatible servers stream a native tool call's `arguments` as fragments of a JSON
//! text. [`ArgumentStream::push`] feeds each fragment to the same resumable scanner the call
//! parser uses and returns the arguments the moment their closing brace arrives, so the call
//! can be dispatched before the server sends `finish_reason`.

use serde_json::Value;

use crate::{
    Repair,
    json_scan::{JsonScan, Step},
    lenient::parse_json,
};

/// Outcome of reading a whole arguments text.
pub type ArgumentsResult = Result<(Value, Vec<Repair>), ArgumentsError>;

/// Why a call's arguments cannot be read; the text is a sentence for the model, with an
/// excerpt of what it sent (cut to 200 bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentsError {
    /// The text does not start with `{`.
    #[error("the arguments must be a JSON object, got `{excerpt}`")]
    NotAnObject {
        /// The text received.
        excerpt: String,
    },
    /// The scanner gave up at a byte.
    #[error("the arguments are not valid JSON at byte {at}: `{excerpt}`")]
    InvalidJsonAt {
        /// Byte offset where reading stopped.
        at: usize,
        /// The text received.
        excerpt: String,
    },
    /// The text is not JSON, found when the stream ended.
    #[error("the arguments are not valid JSON: `{excerpt}`")]
    InvalidJson {
        /// The text received.
        excerpt: String,
    },
    /// The stream ended inside the object, in a place that closing brackets cannot mend.
    #[error("the arguments ended before the JSON was complete: `{excerpt}`")]
    Incomplete {
        /// The text received.
        excerpt: String,
    },
    /// Text follows the closing brace.
    #[error("unexpected text after the arguments object: `{excerpt}`")]
    TrailingText {
        /// The text after the object.
        excerpt: String,
    },
    /// The object closed but even lenient reading fails; the reader's reason.
    #[error("{0}")]
    Json(String),
}

/// Incremental reader of one call's JSON arguments.
#[derive(Debug, Default)]
pub struct ArgumentStream {
    text: String,
    scan: Option<JsonScan>,
    done: bool,
}

impl ArgumentStream {
    /// A reader with nothing read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the arguments already completed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds a fragment; returns the arguments once the object closes (once only).
    pub fn push(&mut self, fragment: &str) -> Option<ArgumentsResult> {
        self.text.push_str(fragment);
        if self.done {
            return None;
        }
        if self.scan.is_none() {
            let start = self.text.find(|c: char| !c.is_whitespace())?;
            if self.text.as_bytes()[start] != b'{' {
                self.done = true;
                return Some(Err(ArgumentsError::NotAnObject {
                    excerpt: excerpt(&self.text),
                }));
            }
            self.scan = Some(JsonScan::new(start).without_calls());
        }
        let scan = self.scan.as_mut()?;
        match scan.scan(self.text.as_bytes(), false) {
            Step::NeedMore => None,
            Step::Candidate { .. } => None,
            Step::Done { end } => {
                self.done = true;
                Some(self.read(end))
            }
            Step::Abort { at } => {
                self.done = true;
                Some(Err(ArgumentsError::InvalidJsonAt {
                    at,
                    excerpt: excerpt(&self.text),
                }))
            }
        }
    }

    /// Ends the stream: the arguments if they were not returned yet (empty text is `{}`;
    /// an object left open is closed and says so), or why they cannot be read.
    pub fn finish(&mut self) -> Option<ArgumentsResult> {
        if self.done {
            return None;
        }
        self.done = true;
        if self.text.trim().is_empty() {
            return Some(Ok((Value::Object(Default::default()), Vec::new())));
        }
        let Some(scan) = self.scan.as_mut() else {
            return Some(Err(ArgumentsError::NotAnObject {
                excerpt: excerpt(&self.text),
            }));
        };
        match scan.scan(self.text.as_bytes(), true) {
            Step::Done { end } => Some(self.read(end)),
            Step::NeedMore => match scan.closers() {
                Some(closers) => {
                    let mut closed = self.text.clone();
                    closed.push_str(&closers);
                    Some(
                        parse_json(&closed)
                            .map(|(v, mut r)| {
                                r.insert(Repair::ClosedBrackets);
                                (v, r.into_iter().collect())
                            })
                            .map_err(ArgumentsError::Json),
                    )
                }
                None => Some(Err(ArgumentsError::Incomplete {
                    excerpt: excerpt(&self.text),
                })),
            },
            Step::Candidate { .. } | Step::Abort { .. } => Some(Err(ArgumentsError::InvalidJson {
                excerpt: excerpt(&self.text),
            })),
        }
    }

    fn read(&self, end: usize) -> ArgumentsResult {
        let rest = self.text[end..].trim();
        if !rest.is_empty() {
            return Err(ArgumentsError::TrailingText {
                excerpt: excerpt(rest),
            });
        }
        parse_json(&self.text[..end])
            .map(|(v, r)| (v, r.into_iter().collect()))
            .map_err(ArgumentsError::Json)
    }
}

fn excerpt(text: &str) -> String {
    if text.len() <= 200 {
        return text.to_owned();
    }
    let mut cut = 200;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn completes_on_the_closing_brace() {
        let mut s = ArgumentStream::new();
        assert_eq!(s.push("{\"city\": \"Pa"), None);
        assert_eq!(s.push("ris}\", \"n\": 1"), None);
        assert_eq!(
            s.push("}"),
            Some(Ok((json!({"city": "Paris}", "n": 1}), vec![])))
        );
        assert_eq!(s.push(" "), None);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn empty_truncated_and_bad_arguments() {
        assert_eq!(
            ArgumentStream::new().finish(),
            Some(Ok((json!({}), vec![])))
        );
        let mut s = ArgumentStream::new();
        s.push("{\"a\": [1, 2]");
        assert_eq!(
            s.finish(),
            Some(Ok((json!({"a": [1, 2]}), vec![Repair::ClosedBrackets])))
        );
        let mut s = ArgumentStream::new();
        assert!(
            s.push("[1]")
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("must be a JSON object")
        );
        let mut s = ArgumentStream::new();
        assert!(
            s.push("{\"a\" 1}")
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
        let mut s = ArgumentStream::new();
        s.push("{\"a\": \"unterminated");
        assert_eq!(
            s.finish().unwrap().unwrap_err().to_string(),
            "the arguments ended before the JSON was complete: `{\"a\": \"unterminated`"
        );
    }
}
