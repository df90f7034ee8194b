//! The one trait every model backend implements: [`Model`].

use std::pin::Pin;

use futures::{Stream, StreamExt};

use crate::{ChatRequest, LlmError, ModelEvent, Response};

/// A stream of what a model produces for one request; dropping it cancels the request.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, LlmError>> + Send>>;

/// A model backend: takes a conversation, streams text and calls back.
///
/// Streaming first: [`Model::stream`] returns at once and the request starts when the stream
/// is polled, so the caller sees each call the moment it is complete. A stream ends with
/// [`ModelEvent::Done`], or with an error; dropping it early closes the connection.
pub trait Model: Send + Sync {
    /// A short name for traces (`openai:gpt-4o-mini`, `sim:weather`).
    fn name(&self) -> String;

    /// Streams the response to `request`.
    fn stream(&self, request: ChatRequest) -> ModelStream;

    /// Things the backend could not do as asked and fell back on (each said once), for the
    /// user to see: e.g. a tool schema its grammar compiler rejected.
    fn take_notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Runs `request` to the end and collects the response.
pub async fn complete(model: &dyn Model, request: ChatRequest) -> Result<Response, LlmError> {
    let mut stream = model.stream(request);
    let mut response = Response::default();
    while let Some(event) = stream.next().await {
        match event? {
            ModelEvent::Text(t) => response.text.push_str(&t),
            ModelEvent::Call(c) => response.calls.push(c),
            ModelEvent::Malformed(m) => response.malformed.push(m),
            ModelEvent::Done(done) => {
                response.completion = done;
                return Ok(response);
            }
        }
    }
    Err(LlmError::Truncated {
        message: "the stream ended without a final event".into(),
        bytes: String::new(),
    })
}
