//! W3C trace context ([`TraceParent`]) and the span ids of a run's steps ([`RunSpans`]).
//!
//! A run's spans have ids derived from the run's id and each step's position in the run, so
//! the engine (which sends `traceparent` with a model request or a tool call) and an
//! exporter (which turns the run's events into spans, live or from the trace store) name
//! the same spans without sharing any state.

use sha2::{Digest, Sha256};

/// A W3C `traceparent`: the trace a piece of work belongs to and the span it was started
/// from (<https://www.w3.org/TR/trace-context/>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace's id (never all zeros).
    pub trace_id: [u8; 16],
    /// The parent span's id (never all zeros).
    pub span_id: [u8; 8],
    /// Whether the caller records this trace (the `sampled` flag).
    pub sampled: bool,
}

impl TraceParent {
    /// Reads a `traceparent` header value; `None` when it is not one. Version `00` must have
    /// exactly four fields; a later version may add fields after them; `ff` and all-zero ids
    /// are invalid, as the specification says.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = parse_hex::<1>(parts.next()?)?;
        let trace_id = parse_hex::<16>(parts.next()?)?;
        let span_id = parse_hex::<8>(parts.next()?)?;
        let flags = parse_hex::<1>(parts.next()?)?;
        let rest = parts.next();
        if version[0] == 0xff || (version[0] == 0 && rest.is_some()) {
            return None;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    /// The header value: `00-<trace id>-<span id>-<flags>`.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.header())
    }
}

/// The span ids of one run: its trace (its parent's, or one derived from the run's id) and
/// one span per step, named by the position (`seq`) of the event that began it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpans {
    /// The trace the run belongs to.
    pub trace_id: [u8; 16],
    /// The span the run was started from, when it was started inside another trace.
    pub parent: Option<[u8; 8]>,
    /// Whether the run's trace is recorded.
    pub sampled: bool,
    /// Drawn from the run's id; each span id is a bijective mix of it and the step.
    seed: u64,
}

/// What a span of a run stands for, beside the step's event that began it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanRole {
    /// The step itself: the run, a model request, a tool call.
    Step,
    /// A phase a step opens: the plan (or join) that a compiled-mode model request begins.
    Phase,
}

impl RunSpans {
    /// The spans of run `run_id`, started from `parent` if it was.
    pub fn new(run_id: &str, parent: Option<&TraceParent>) -> Self {
        let digest: [u8; 32] = Sha256::digest(run_id.as_bytes()).into();
        let mut derived = [0; 16];
        derived.copy_from_slice(&digest[..16]);
        let mut seed = [0; 8];
        seed.copy_from_slice(&digest[16..24]);
        let seed = u64::from_le_bytes(seed);
        match parent {
            Some(p) => Self {
                trace_id: p.trace_id,
                parent: Some(p.span_id),
                sampled: p.sampled,
                seed,
            },
            None => Self {
                trace_id: nonzero(derived),
                parent: None,
                sampled: true,
                seed,
            },
        }
    }

    /// The id of the span begun by the event at `seq` (the run's own is `seq` 0). Distinct
    /// for every `(seq, role)` of a run: SplitMix64's finalizer is a bijection, applied to
    /// the seed and the step (a few nanoseconds; this is on the engine's path).
    pub fn span_id(&self, seq: u64, role: SpanRole) -> [u8; 8] {
        let mut z = self.seed ^ (seq << 1 | role as u64);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        nonzero(z.to_be_bytes())
    }

    /// The `traceparent` naming the span begun by the event at `seq`, for work done on its
    /// behalf elsewhere (a model server, an MCP server, a sub-agent).
    pub fn traceparent(&self, seq: u64) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id,
            span_id: self.span_id(seq, SpanRole::Step),
            sampled: self.sampled,
        }
    }
}

fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id == [0; N] {
        id[N - 1] = 1;
    }
    id
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_and_writes_the_specifications_example() {
        let p = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p.span_id), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert_eq!(p.header(), EXAMPLE);
    }

    #[test]
    fn refuses_what_the_specification_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        assert!(!TraceParent::parse(later).unwrap().sampled);
    }

    #[test]
    fn a_runs_span_ids_are_stable_and_distinct() {
        let a = RunSpans::new("r1", None);
        assert_eq!(a, RunSpans::new("r1", None));
        assert_ne!(a.trace_id, RunSpans::new("r2", None).trace_id);
        let ids: std::collections::HashSet<_> = (0..1000)
            .flat_map(|s| [a.span_id(s, SpanRole::Step), a.span_id(s, SpanRole::Phase)])
            .collect();
        assert_eq!(ids.len(), 2000);
    }

    #[test]
    fn a_run_started_inside_a_trace_joins_it() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        let spans = RunSpans::new("r1", Some(&parent));
        assert_eq!(spans.trace_id, parent.trace_id);
        assert_eq!(spans.parent, Some(parent.span_id));
        let child = spans.traceparent(3);
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.span_id, spans.span_id(3, SpanRole::Step));
    }
}
