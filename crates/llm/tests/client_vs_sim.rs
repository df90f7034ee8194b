//! The OpenAI-compatible client against `SimServer` over real HTTP on loopback: streaming,
//! awkward chunk boundaries, retries, hangs, cut connections, garbage, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use agentry_core::{Message, ToolSpec};
use agentry_llm::{
    ChatRequest, FinishReason, LlmError, Model, ModelEvent, OpenAi, OpenAiConfig, RetryPolicy,
    ToolMode, complete,
    sim::{Script, SimServer},
};
use agentry_parse::Format;
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::json;

const TWO_CALLS: &str = r#"{
  "latency": {"ttft_ms": 20, "tokens_per_s": 400},
  "turns": [
    {"when": {"last": "user"}, "text": "Checking both.",
     "calls": [{"name": "get_weather", "arguments": {"city": "Paris", "note": "a \"quoted\" é string"}},
               {"name": "get_time", "arguments": {"zone": "Europe/Paris", "filler": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]},
    {"when": {"last": "tool"}, "text": "Done: {{tool}}"}
  ]
}"#;

async fn server(script: &str) -> SimServer {
    SimServer::bind(
        Script::parse(script, "test").unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

fn client(url: &str) -> OpenAi {
    let retry = RetryPolicy {
        max_retries: 3,
        base: Duration::from_millis(5),
        max: Duration::from_millis(50),
    };
    OpenAi::new(
        OpenAiConfig::new(url, "sim")
            .retry(retry)
            .timeouts(Duration::from_secs(5), Duration::from_millis(500)),
    )
    .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![Message::user("Weather and time in Paris?")]).tools(vec![
        ToolSpec::new("get_weather", "Weather.", json!({"type": "object"})),
        ToolSpec::new("get_time", "Time.", json!({"type": "object"})),
    ])
}

/// Every event with the time it arrived.
async fn timed_events(
    model: &dyn Model,
    req: ChatRequest,
) -> Result<Vec<(Duration, ModelEvent)>, LlmError> {
    let start = Instant::now();
    let mut stream = model.stream(req);
    let mut out = Vec::new();
    while let Some(e) = stream.next().await {
        out.push((start.elapsed(), e?));
    }
    Ok(out)
}

#[tokio::test]
async fn streams_native_calls_each_as_soon_as_it_is_complete() {
    let srv = server(TWO_CALLS).await;
    let events = timed_events(&client(&srv.url()), request()).await.unwrap();
    let calls: Vec<_> = events
        .iter()
        .filter_map(|(t, e)| match e {
            ModelEvent::Call(c) => Some((*t, c.call.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1.name, "get_weather");
    assert_eq!(
        calls[0].1.arguments,
        json!({"city": "Paris", "note": "a \"quoted\" é string"})
    );
    assert_eq!(calls[1].1.arguments["zone"], "Europe/Paris");
    assert!(calls[0].1.id.starts_with("call_") && calls[0].1.id != calls[1].1.id);
    let text: String = events
        .iter()
        .filter_map(|(_, e)| {
            if let ModelEvent::Text(t) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(text, "Checking both.");
    let (done_at, ModelEvent::Done(done)) = events.last().unwrap().clone() else {
        panic!("no Done")
    };
    // The first call is handed out while the second is still streaming (its ~40 tokens take ~100 ms).
    assert!(
        done_at - calls[0].0 > Duration::from_millis(40),
        "first call at {:?}, done at {done_at:?}",
        calls[0].0
    );
    assert_eq!(done.finish_reason, FinishReason::ToolCalls);
    assert!(
        done.usage.prompt_tokens > 0 && done.usage.completion_tokens > 40,
        "{:?}",
        done.usage
    );
    let ttft = done.timing.time_to_first_token.unwrap();
    assert!(
        ttft >= Duration::from_millis(20) && ttft < done.timing.total,
        "{:?}",
        done.timing
    );
    assert!(done.timing.time_per_output_token.unwrap() < Duration::from_millis(10));
    assert_eq!(done.timing.attempts, 1);
    srv.close().await;
}

#[tokio::test]
async fn awkward_chunk_boundaries_give_the_same_result() {
    let whole = {
        let srv = server(TWO_CALLS).await;
        let r = complete(&client(&srv.url()), request()).await.unwrap();
        srv.close().await;
        r
    };
    for n in [1, 2, 3, 7, 13] {
        let script = TWO_CALLS.replacen(
            "\"latency\"",
            &format!("\"faults\": {{\"chunk_bytes\": {n}}}, \"latency\""),
            1,
        );
        let srv = server(&script).await;
        let r = complete(&client(&srv.url()), request()).await.unwrap();
        assert_eq!(r.text, whole.text, "chunk_bytes {n}");
        let names = |r: &agentry_llm::Response| {
            r.calls
                .iter()
                .map(|c| (c.call.name.clone(), c.call.arguments.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&r), names(&whole), "chunk_bytes {n}");
        srv.close().await;
    }
}

#[tokio::test]
async fn retries_after_injected_429_and_500() {
    for status in [429, 500, 503] {
        let script = format!(
            r#"{{"faults": {{"fail_first": 2, "fail_status": {status}, "retry_after_s": 0.01}}, "turns": [{{"text": "ok"}}]}}"#
        );
        let srv = server(&script).await;
        let r = complete(&client(&srv.url()), request()).await.unwrap();
        assert_eq!(r.text, "ok");
        assert_eq!(r.completion.timing.attempts, 3, "status {status}");
        assert_eq!(srv.requests(), 3);
        srv.close().await;
    }
    // Out of retries: the server's status and message come through.
    let srv =
        server(r#"{"faults": {"fail_first": 9, "fail_status": 429}, "turns": [{"text": "ok"}]}"#)
            .await;
    let err = complete(&client(&srv.url()), request()).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::Status {
            status: 429,
            message: "injected failure 4 of 9".into()
        }
    );
    assert_eq!(srv.requests(), 4);
    srv.close().await;
}

#[tokio::test]
async fn client_errors_are_not_retried_and_carry_the_server_message() {
    let srv = server(r#"{"turns": [{"when": {"turn": 5}, "text": "never"}]}"#).await;
    let err = complete(&client(&srv.url()), request()).await.unwrap_err();
    let LlmError::Status {
        status: 400,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("no turn for assistant turn 1"),
        "{message}"
    );
    assert_eq!(srv.requests(), 1);
    srv.close().await;
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let srv = server(r#"{"faults": {"hang_after_chunks": 2}, "turns": [{"text": "one two three four five six"}]}"#).await;
    let t = Instant::now();
    let err = complete(&client(&srv.url()), request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::Timeout {
                what: "waiting for the next streamed chunk",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    srv.close().await;
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_an_error_not_a_partial_answer() {
    let srv = server(r#"{"faults": {"close_after_chunks": 3}, "turns": [{"calls": [{"name": "f", "arguments": {"long": "aaaaaaaaaaaaaaaaaaaa"}}]}]}"#).await;
    let err = complete(&client(&srv.url()), request()).await.unwrap_err();
    assert!(matches!(err, LlmError::Truncated { .. }), "{err:?}");
    srv.close().await;
}

#[tokio::test]
async fn a_malformed_event_names_its_bytes() {
    let srv = server(r#"{"faults": {"garbage": "{not json"}, "turns": [{"text": "ok"}]}"#).await;
    let err = complete(&client(&srv.url()), request()).await.unwrap_err();
    let LlmError::Protocol { message, bytes } = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("not JSON") && bytes.contains("{not json"),
        "{err}"
    );
    srv.close().await;
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = complete(&client(&format!("http://127.0.0.1:{port}/v1")), request())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn non_streaming_gives_the_same_answer() {
    let srv = server(TWO_CALLS).await;
    let url = srv.url();
    let streamed = complete(&client(&url), request()).await.unwrap();
    let whole_client = OpenAi::new(OpenAiConfig::new(&url, "sim").stream(false)).unwrap();
    let whole = complete(&whole_client, request()).await.unwrap();
    assert_eq!(whole.text, streamed.text);
    assert_eq!(whole.calls.len(), 2);
    assert_eq!(
        whole.calls[0].call.arguments,
        streamed.calls[0].call.arguments
    );
    assert_eq!(whole.completion.usage, streamed.completion.usage);
    assert_eq!(whole.completion.finish_reason, FinishReason::ToolCalls);
    srv.close().await;
}

#[tokio::test]
async fn prompted_mode_reads_calls_from_text() {
    let srv = server(r#"{"format": "hermes", "turns": [{"text": "Let me look.", "calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}]}"#).await;
    let model = OpenAi::new(
        OpenAiConfig::new(srv.url(), "sim").tool_mode(ToolMode::Prompted(Format::Auto)),
    )
    .unwrap();
    assert!(
        model.body(&request())["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("<tools>")
    );
    let r = complete(&model, request()).await.unwrap();
    assert_eq!(r.text.trim(), "Let me look.");
    assert_eq!(r.calls.len(), 1);
    assert_eq!(r.calls[0].call.arguments, json!({"city": "Rome"}));
    srv.close().await;
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let srv = server(r#"{"latency": {"tokens_per_s": 20}, "turns": [{"text": "a long answer that takes a few seconds to stream out token by token"}]}"#).await;
    let model = client(&srv.url());
    let mut stream = model.stream(request());
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    assert_eq!(srv.open_streams(), 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(2);
    while srv.open_streams() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        srv.open_streams(),
        0,
        "the server still streams to a client that left"
    );
    srv.close().await;
}

#[tokio::test]
async fn a_base_url_without_v1_gets_a_404_that_names_the_url_and_the_fix() {
    let srv = server(TWO_CALLS).await;
    let base = srv.url().trim_end_matches("/v1").to_owned();
    let err = complete(&client(&base), request()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("404"), "{text}");
    assert!(
        text.contains(&format!("POST {base}/chat/completions")),
        "{text}"
    );
    assert!(
        text.contains(&format!("try --base-url {base}/v1")),
        "{text}"
    );
}

#[tokio::test]
async fn the_sim_server_answers_every_error_in_json() {
    let srv = server(TWO_CALLS).await;
    let http = reqwest::Client::new();
    let big = vec![b' '; 3 * 1024 * 1024];
    let too_large = http
        .post(format!("{}/chat/completions", srv.url()))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let nowhere = http
        .get(format!("{}/nowhere", srv.url()))
        .send()
        .await
        .unwrap();
    for (response, status) in [(too_large, 413), (nowhere, 404)] {
        assert_eq!(response.status().as_u16(), status);
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "{body}");
    }
}
