//! OpenTelemetry export, tested against what no one here wrote: Arize Phoenix (from PyPI,
//! installed by scripts/phoenix, started here on loopback) receives runs over OTLP/HTTP and
//! OTLP/gRPC and is read back through its own REST API; a plain OTLP receiver on the
//! official protobuf definitions (`opentelemetry-proto`, in Phoenix's environment) decodes
//! the HTTP/protobuf and HTTP/JSON bodies and `agentry trace export --format otlp-json`.
//! Skipped when Phoenix is not installed, unless AGENTRY_REQUIRE_PHOENIX is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use agentry_core::{RunSpans, hex};
use serde_json::Value;

mod common;

/// Phoenix's virtual environment, or `None` (skip) unless it is required.
fn phoenix_env() -> Option<PathBuf> {
    let dir = std::env::var_os("AGENTRY_PHOENIX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/agentry/phoenix")
        });
    if dir.join("bin/phoenix").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("AGENTRY_REQUIRE_PHOENIX").is_none(),
        "{} is missing: run scripts/phoenix",
        dir.display()
    );
    eprintln!("skipped: Phoenix is not installed (scripts/phoenix)");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentry-otel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Phoenix on loopback: its HTTP port (the UI, the REST API, OTLP/HTTP) and its gRPC port.
struct Phoenix {
    _server: Server,
    http: u16,
    grpc: u16,
}

impl Phoenix {
    fn start(env: &Path, dir: &Path) -> Self {
        let (http, grpc) = (free_port(), free_port());
        let log = std::fs::File::create(dir.join("phoenix.log")).unwrap();
        let child = Command::new(env.join("bin/phoenix"))
            .arg("serve")
            .env("PHOENIX_WORKING_DIR", dir.join("phoenix"))
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", http.to_string())
            .env("PHOENIX_GRPC_PORT", grpc.to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let phoenix = Self {
            _server: Server(child),
            http,
            grpc,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        while get(http, "/healthz").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "Phoenix did not start: {}",
                std::fs::read_to_string(dir.join("phoenix.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        phoenix
    }

    /// The spans of `trace_id` in `project`, once at least `n` have arrived.
    fn spans(&self, project: &str, trace_id: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = get(
                self.http,
                &format!("/v1/projects/{project}/spans?trace_id={trace_id}&limit=1000"),
            );
            if status == 200 {
                let spans = serde_json::from_str::<Value>(&body).unwrap()["data"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if spans.len() >= n {
                    return spans;
                }
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} in {project}: status {status}, {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A GET on loopback: the status and the body (HTTP/1.1, closed after one request).
fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, text);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `agentry ARGS…` in `dir` with `env`; its `--json` line. Nothing may be lost in export.
fn agentry(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Value {
    let (json, stderr) = agentry_lossy(dir, args, env);
    assert!(
        !stderr.contains("could not be exported") && !stderr.contains("dropped"),
        "{stderr}"
    );
    json
}

/// `agentry ARGS…` in `dir` with `env`; its `--json` line and what it printed on stderr.
fn agentry_lossy(dir: &Path, args: &[&str], env: &[(&str, String)]) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .current_dir(dir)
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "agentry {args:?}: {stderr}");
    let json = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (json, stderr.into_owned())
}

fn run_compiled(dir: &Path, env: &[(&str, String)]) -> Value {
    agentry(
        dir,
        &[
            "run",
            "How much warmer is Oslo than Paris?",
            "--model",
            "sim:plan",
            "--mode",
            "compiled",
            "--json",
        ],
        env,
    )
}

fn trace_id(run: &Value) -> String {
    hex(&RunSpans::new(run["run_id"].as_str().unwrap(), None).trace_id)
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

/// Checks the tree of sim:plan's compiled run as Phoenix shows it: run → plan (the planner's
/// LLM span and three tool spans, the two weather calls overlapping) → join (its LLM span).
fn check_compiled_tree(spans: &[Value], run: &Value, content: bool) {
    assert_eq!(spans.len(), 8, "{spans:#?}");
    let by_id: HashMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["context"]["span_id"].as_str().unwrap(), s))
        .collect();
    let parent_name = |s: &Value| -> String {
        s["parent_id"]
            .as_str()
            .map(|p| by_id[p]["name"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let root: Vec<&Value> = spans.iter().filter(|s| s["parent_id"].is_null()).collect();
    assert_eq!(root.len(), 1);
    let root = root[0];
    assert_eq!(root["name"], "invoke_agent agentry");
    assert_eq!(root["span_kind"], "AGENT");
    assert_eq!(root["status_code"], "OK");
    assert_eq!(attr(root, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(
        attr(root, "gen_ai.usage.input_tokens"),
        &run["prompt_tokens"]
    );
    assert_eq!(
        attr(root, "gen_ai.usage.output_tokens"),
        &run["completion_tokens"]
    );
    let kinds: Vec<(String, String, String)> = spans
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["span_kind"].as_str().unwrap().to_owned(),
                parent_name(s),
            )
        })
        .collect();
    for expected in [
        ("plan", "CHAIN", "invoke_agent agentry"),
        ("join", "CHAIN", "invoke_agent agentry"),
        ("chat plan", "LLM", "plan"),
        ("chat plan", "LLM", "join"),
        ("execute_tool calculator", "TOOL", "plan"),
    ] {
        let e = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(kinds.contains(&e), "{e:?} not in {kinds:#?}");
    }
    let weather: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "execute_tool get_weather")
        .collect();
    assert_eq!(weather.len(), 2);
    for w in &weather {
        assert_eq!(w["span_kind"], "TOOL");
        assert_eq!(parent_name(w), "plan");
        assert_eq!(attr(w, "gen_ai.tool.name"), "get_weather");
        assert!(attr(w, "gen_ai.tool.call.id").is_string());
    }
    // Dispatched while the plan streamed: the two weather calls overlap in time.
    let (a, b) = (weather[0], weather[1]);
    let time = |s: &Value, k: &str| s[k].as_str().unwrap().to_owned();
    assert!(
        time(a, "start_time") < time(b, "end_time") && time(b, "start_time") < time(a, "end_time"),
        "not parallel: {a:#?} {b:#?}"
    );
    // LLM spans carry their token counts, and the two add up to the run's.
    let llm: Vec<&Value> = spans.iter().filter(|s| s["span_kind"] == "LLM").collect();
    let prompt: i64 = llm
        .iter()
        .map(|s| attr(s, "llm.token_count.prompt").as_i64().unwrap())
        .sum();
    assert_eq!(prompt, run["prompt_tokens"].as_i64().unwrap());
    for s in &llm {
        assert_eq!(attr(s, "gen_ai.operation.name"), "chat");
        assert_eq!(attr(s, "llm.model_name"), "plan");
    }
    // Content only when asked for.
    assert_eq!(attr(root, "input.value").is_string(), content);
    assert_eq!(attr(weather[0], "input.value").is_string(), content);
    if content {
        assert_eq!(attr(root, "output.value").as_str(), run["answer"].as_str());
    }
}

#[test]
fn phoenix_shows_compiled_runs_sent_over_http_and_grpc_and_one_trace_across_mcp() {
    let Some(env) = phoenix_env() else { return };
    let dir = scratch("phoenix");
    let phoenix = Phoenix::start(&env, &dir);
    let project = "agentry-tests";
    let common = [(
        "OTEL_RESOURCE_ATTRIBUTES",
        format!("openinference.project.name={project}"),
    )];

    // OTLP/HTTP (protobuf, the default), content captured.
    let mut http = common.to_vec();
    http.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", phoenix.http),
    ));
    http.push((
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "true".into(),
    ));
    let run = run_compiled(&dir, &http);
    let spans = phoenix.spans(project, &trace_id(&run), 8);
    check_compiled_tree(&spans, &run, true);

    // OTLP/gRPC, content left out (the default).
    let mut grpc = common.to_vec();
    grpc.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", phoenix.grpc),
    ));
    grpc.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()));
    let run = run_compiled(&dir, &grpc);
    let spans = phoenix.spans(project, &trace_id(&run), 8);
    check_compiled_tree(&spans, &run, false);

    // One trace across two processes: an agent calls `mcp serve`'s `agent` tool; the call
    // carries its span's traceparent in `_meta`, and the served agent's run nests under it.
    let (server, url) = {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .current_dir(&dir)
            .args(["mcp", "serve", "--http", "0", "--model", "sim:plan"])
            .envs(http.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        (Server(child), url)
    };
    let script = dir.join("delegate.yaml");
    std::fs::write(
        &script,
        r#"name: delegate
format: openai
turns:
  - when: { last: user }
    calls:
      - name: agent
        arguments: { task: "How much warmer is Oslo than Paris?" }
  - when: { last: tool }
    text: "{{tool}}"
"#,
    )
    .unwrap();
    let outer = agentry(
        &dir,
        &[
            "run",
            "Ask the agent how much warmer Oslo is than Paris.",
            "--model",
            &format!("sim:{}", script.display()),
            "--mode",
            "sequential",
            "--no-demo-tools",
            "--mcp",
            &format!("remote={url}"),
            "--json",
        ],
        &http,
    );
    assert!(
        outer["answer"].as_str().unwrap().contains("warmer"),
        "{outer}"
    );
    // The outer run: run, two model turns, one call; the inner: eight.
    let spans = phoenix.spans(project, &trace_id(&outer), 12);
    drop(server);
    let call = spans
        .iter()
        .find(|s| s["name"] == "execute_tool agent")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    let inner: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "invoke_agent agentry" && !s["parent_id"].is_null())
        .collect();
    assert_eq!(inner.len(), 1, "{spans:#?}");
    assert_eq!(inner[0]["parent_id"], call["context"]["span_id"]);
    assert_eq!(attr(inner[0], "agentry.mode"), "compiled");
}

/// A plain OTLP receiver (the official protobuf definitions) writing what it decodes to
/// `out`; returns it and its port.
fn receiver(env: &Path, out: &Path) -> (Server, u16) {
    let mut child = Command::new(env.join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/otlp_receiver.py"
        ))
        .arg("serve")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    (Server(child), port)
}

/// The spans of every request `out` holds, keyed by span id, with the resource's service name.
fn received(out: &Path) -> (Vec<String>, HashMap<String, Value>) {
    let mut services = Vec::new();
    let mut spans = HashMap::new();
    for line in std::fs::read_to_string(out).unwrap_or_default().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(entry["error"].is_null(), "the receiver refused: {entry}");
        collect(&entry["request"], &mut services, &mut spans);
    }
    (services, spans)
}

fn collect(request: &Value, services: &mut Vec<String>, spans: &mut HashMap<String, Value>) {
    for rs in request["resourceSpans"].as_array().unwrap() {
        for a in rs["resource"]["attributes"].as_array().unwrap() {
            if a["key"] == "service.name" {
                services.push(a["value"]["stringValue"].as_str().unwrap().to_owned());
            }
        }
        for ss in rs["scopeSpans"].as_array().unwrap() {
            for s in ss["spans"].as_array().unwrap() {
                spans.insert(s["spanId"].as_str().unwrap().to_owned(), s.clone());
            }
        }
    }
}

#[test]
fn plain_otlp_over_http_protobuf_and_json_and_the_export_of_a_recorded_run() {
    let Some(env) = phoenix_env() else { return };
    let dir = scratch("receiver");
    for protocol in ["http/protobuf", "http/json"] {
        let out = dir.join(format!("{}.jsonl", protocol.replace('/', "-")));
        let (server, port) = receiver(&env, &out);
        let run = run_compiled(
            &dir,
            &[
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{port}"),
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
                ("OTEL_SERVICE_NAME", "shop-agent".into()),
            ],
        );
        drop(server);
        let (services, live) = received(&out);
        assert_eq!(live.len(), 8, "{protocol}: {live:#?}");
        assert!(services.iter().all(|s| s == "shop-agent"), "{services:?}");
        let trace = trace_id(&run);
        assert!(live.values().all(|s| s["traceId"] == trace.as_str()));
        let root = live
            .values()
            .find(|s| s["name"] == "invoke_agent agentry")
            .unwrap();
        assert!(root.get("parentSpanId").is_none_or(|p| p == ""), "{root}");
        // Every other span's parent is one of the run's spans.
        for s in live.values() {
            if let Some(p) = s["parentSpanId"].as_str().filter(|p| !p.is_empty()) {
                assert!(live.contains_key(p), "{protocol}: dangling parent of {s}");
            }
        }

        // The recorded run exports as the same spans (the same ids), and the official
        // definitions decode it.
        let id = run["run_id"].as_str().unwrap();
        let exported = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .current_dir(&dir)
            .args(["trace", "export", id, "--format", "otlp-json"])
            .output()
            .unwrap();
        assert!(exported.status.success());
        let file = dir.join("export.json");
        std::fs::write(&file, &exported.stdout).unwrap();
        let checked = Command::new(env.join("bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/otlp_receiver.py"
            ))
            .arg("check")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        let mut services = Vec::new();
        let mut from_store = HashMap::new();
        collect(
            &serde_json::from_slice(&checked.stdout).unwrap(),
            &mut services,
            &mut from_store,
        );
        let mut a: Vec<&String> = live.keys().collect();
        let mut b: Vec<&String> = from_store.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for (k, s) in &from_store {
            assert_eq!(s["name"], live[k]["name"]);
            assert_eq!(s["parentSpanId"], live[k]["parentSpanId"]);
        }
    }
}

/// One HTTP/1.1 request read from `stream`: its request line and headers, and its body.
fn read_request(stream: &TcpStream) -> (Vec<String>, Vec<u8>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push(line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (head, body)
}

#[test]
fn model_requests_carry_their_spans_traceparent() {
    // A one-request OpenAI-compatible server that keeps the headers it was sent.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let (headers, _) = read_request(&stream);
        let sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello.\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sse}",
            sse.len()
        )
        .unwrap();
        headers
    });
    let dir = scratch("traceparent");
    let (run, stderr) = agentry_lossy(
        &dir,
        &[
            "run",
            "Say hello.",
            "--model",
            "openai:any",
            "--base-url",
            &format!("http://127.0.0.1:{port}/v1"),
            "--api-key",
            "k",
            "--mode",
            "sequential",
            "--no-demo-tools",
            "--quiet",
            "--json",
        ],
        // Export on, to a collector that is not there: the run answers all the same, the
        // loss is reported, and requests carry the traceparent of their span.
        &[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:9/v1/traces".into(),
        )],
    );
    assert_eq!(run["answer"], "Hello.");
    assert!(
        stderr.contains("warning: 2 spans could not be exported to http://127.0.0.1:9/v1/traces"),
        "{stderr}"
    );
    let headers = seen.join().unwrap();
    let traceparent = headers
        .iter()
        .find_map(|h| h.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent in {headers:?}"));
    // The run's first model request is its event 1.
    let expected = RunSpans::new(run["run_id"].as_str().unwrap(), None).traceparent(1);
    assert_eq!(traceparent, expected.header());
}

#[test]
fn agentry_toml_turns_export_on_and_bad_settings_are_refused_with_a_sentence() {
    // A collector that takes every POST and keeps its request line and Content-Type.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let (head, body) = read_request(&stream);
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            keep.lock().unwrap().push((head, body.len()));
        }
    });
    let dir = scratch("toml");
    std::fs::write(
        dir.join("agentry.toml"),
        format!(
            "model = \"sim:plan\"\n\n[otel]\nendpoint = \"http://127.0.0.1:{port}\"\nservice_name = \"from-toml\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .current_dir(&dir)
        .args(["run", "How much warmer is Oslo than Paris?", "--no-trace"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "spans: 8 exported to http://127.0.0.1:{port}/v1/traces"
        )),
        "{stderr}"
    );
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for (head, bytes) in &requests {
        assert_eq!(head[0], "POST /v1/traces HTTP/1.1");
        assert!(
            head.iter()
                .any(|h| h.eq_ignore_ascii_case("content-type: application/x-protobuf")),
            "{head:?}"
        );
        assert!(*bytes > 0);
    }

    // A protocol that does not exist, in the file and in the environment.
    std::fs::write(
        dir.join("agentry.toml"),
        "[otel]\nendpoint = \"http://127.0.0.1:9\"\nprotocol = \"udp\"\n",
    )
    .unwrap();
    let refused = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .current_dir(&dir)
            .args(["run", "hi", "--model", "sim:plan", "--no-trace"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused(&[]);
    assert!(
        stderr.contains("[otel] OpenTelemetry export: unknown OTLP protocol `udp`"),
        "{stderr}"
    );
    std::fs::remove_file(dir.join("agentry.toml")).unwrap();
    let stderr = refused(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
    ]);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_HEADERS: `api-key` is not `key=value`"),
        "{stderr}"
    );
}
