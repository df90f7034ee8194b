//! The one dispatch loop both modes run. A model reply streams in; each call it makes ready
//! (a turn's call in sequential mode, a plan's task whose inputs are resolved in compiled
//! mode) starts at once, up to `max_concurrency` at a time, each taken from the run's call
//! budget, until the reply has ended and every call it started has finished. What a reply
//! means for the calls is the mode's [`Round`]; running them, the budget and cancellation
//! are here, once.

use agentry_core::{ToolCall, ToolError, ToolResult};
use agentry_llm::{ModelEvent, ModelStream};
use futures::{StreamExt, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;

use crate::{
    engine::{Ended, Engine, NO_FINAL_EVENT, RunState, model_failed},
    record::Recorder,
};

/// What one model reply means for the calls: the mode's half of the dispatch loop.
pub(crate) trait Round {
    /// A streamed piece of the reply: text, a native call, a call that could not be read.
    fn event(&mut self, event: ModelEvent, rec: &Recorder<'_>);
    /// The reply has ended (nothing more will come from the model this round).
    fn close(&mut self, rec: &Recorder<'_>);
    /// The next call ready to run, if any.
    fn ready(&mut self) -> Option<Ready>;
    /// A call's result; also a call refused before it ran.
    fn finish(&mut self, key: u32, result: ToolResult);
    /// The reply for the trace: its text, its calls, the sentences on calls that could not
    /// be read.
    fn response(&self) -> (&str, &[ToolCall], &[String]);
}

/// A call ready to run.
pub(crate) struct Ready {
    /// The round's key for it, given back with its result.
    pub(crate) key: u32,
    pub(crate) call: ToolCall,
    /// Its plan task (compiled mode).
    pub(crate) task: Option<u32>,
    /// The steps it waited for (the model turn; the tasks whose results it uses).
    pub(crate) after: Vec<String>,
}

/// How a round's dispatch ended, when the run goes on.
pub(crate) struct Dispatched {
    /// A call was refused because the run's call budget was used up.
    pub(crate) out_of_calls: bool,
}

impl Engine {
    /// Runs one model reply's calls to the end: `who` names the model's role in the
    /// failure sentences ("model", "planner"). `Err` ends the run.
    #[allow(clippy::too_many_arguments)] // the run's context travels as three references
    pub(crate) async fn dispatch<R: Round>(
        &self,
        mut stream: ModelStream,
        round: &mut R,
        step: &str,
        who: &str,
        rec: &Recorder<'_>,
        st: &RunState,
        cancel: &CancellationToken,
    ) -> Result<Dispatched, Ended> {
        let mut running = FuturesUnordered::new();
        let mut open = true;
        let mut out_of_calls = false;
        let most = self.config().max_concurrency.max(1);
        loop {
            while running.len() < most {
                let Some(next) = round.ready() else {
                    break;
                };
                if !self.take_call(st) {
                    out_of_calls = true;
                    let refused = ToolError::denied("the run's tool-call budget is used up");
                    round.finish(next.key, ToolResult::err(&next.call, refused));
                    continue;
                }
                running.push(
                    self.run_call(next.key, next.call, next.task, next.after, rec, st, cancel),
                );
            }
            if !open && running.is_empty() {
                return Ok(Dispatched { out_of_calls });
            }
            tokio::select! {
                event = stream.next(), if open => match event {
                    Some(Ok(ModelEvent::Done(done))) => {
                        open = false;
                        round.close(rec);
                        let (text, calls, malformed) = round.response();
                        self.record_response(rec, st, step, text, calls, malformed, &done);
                    }
                    Some(Ok(event)) => round.event(event, rec),
                    Some(Err(e)) => {
                        return Err(model_failed(rec, step, e.to_string(), format!("the {who} failed: {e}")));
                    }
                    None => {
                        let why = format!("the {who}'s stream ended without a final event");
                        return Err(model_failed(rec, step, NO_FINAL_EVENT.into(), why));
                    }
                },
                Some((key, result)) = running.next(), if !running.is_empty() => round.finish(key, result),
                () = cancel.cancelled() => return Err(Ended::Cancelled),
            }
        }
    }
}
