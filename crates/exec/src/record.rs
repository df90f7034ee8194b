//! Where a run's steps go: [`Observer`], and the per-run [`Recorder`] that numbers them.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use agentry_core::{RunSpans, TraceEvent, TraceKind};

/// Receives every step of a run as it happens (the trace store, a progress printer).
///
/// Called on the engine's task: keep it quick (hand the event to a channel or a buffer).
pub trait Observer: Send + Sync {
    /// One step.
    fn event(&self, event: &TraceEvent);

    /// Whether it wants the events only live consumers use ([`TraceKind::is_ephemeral`]:
    /// text deltas, planned tasks). The engine does not make them for a run none of whose
    /// observers want them.
    fn live(&self) -> bool {
        false
    }
}

/// Discards events.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn event(&self, _event: &TraceEvent) {}
}

/// Keeps events in memory (tests, replay).
#[derive(Debug, Default, Clone)]
pub struct Collect(Arc<Mutex<Vec<TraceEvent>>>);

impl Collect {
    /// A new, empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Observer for Collect {
    fn event(&self, event: &TraceEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
    }

    fn live(&self) -> bool {
        true
    }
}

/// Sends each event to several observers.
pub struct Fanout(pub Vec<Arc<dyn Observer>>);

impl Observer for Fanout {
    fn live(&self) -> bool {
        self.0.iter().any(|o| o.live())
    }

    fn event(&self, event: &TraceEvent) {
        for o in &self.0 {
            if o.live() || !event.kind.is_ephemeral() {
                o.event(event);
            }
        }
    }
}

/// Numbers and times one run's events.
pub(crate) struct Recorder<'a> {
    pub(crate) run_id: String,
    start: Instant,
    seq: AtomicU64,
    observer: &'a dyn Observer,
    /// Whether ephemeral events are made at all.
    live: bool,
    /// The run's span ids, when its steps carry a `traceparent` to the work they start.
    spans: Option<RunSpans>,
}

impl<'a> Recorder<'a> {
    /// A recorder for run `run_id`; with `spans`, its steps' `traceparent`s are on offer
    /// ([`Recorder::traceparent`]).
    pub(crate) fn new(run_id: String, observer: &'a dyn Observer, spans: Option<RunSpans>) -> Self {
        Self {
            run_id,
            start: Instant::now(),
            seq: AtomicU64::new(0),
            observer,
            live: observer.live(),
            spans,
        }
    }

    /// Emits an ephemeral event, made only when an observer wants it.
    pub(crate) fn live(&self, kind: impl FnOnce() -> TraceKind) {
        if self.live {
            self.emit(kind());
        }
    }

    /// The `traceparent` of the span begun by the event at `seq`, if the run propagates
    /// its trace.
    pub(crate) fn traceparent(&self, seq: u64) -> Option<String> {
        self.spans.as_ref().map(|s| s.traceparent(seq).header())
    }

    pub(crate) fn started(&self) -> Instant {
        self.start
    }

    /// Emits an event; returns its position in the run.
    pub(crate) fn emit(&self, kind: TraceKind) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let event = TraceEvent {
            run_id: self.run_id.clone(),
            seq,
            at_us: self.start.elapsed().as_micros() as u64,
            kind,
        };
        self.observer.event(&event);
        seq
    }
}

#[cfg(feature = "trace")]
impl Observer for agentry_trace::TraceWriter {
    fn event(&self, event: &TraceEvent) {
        self.record(event);
    }
}

#[cfg(feature = "otlp")]
impl Observer for agentry_trace::otlp::OtlpExporter {
    fn event(&self, event: &TraceEvent) {
        self.record(event);
    }
}
