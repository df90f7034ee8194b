//! Demo tools for examples, tests and benchmarks: weather, calculator, key-value store,
//! clock (with a fake time source), sleep, and search over a small bundled corpus.
//!
//! All are deterministic (weather and search derive their answers from their input), so
//! runs can be replayed and benchmarked. An optional simulated latency makes parallelism
//! visible in demos.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use agentry_core::ToolError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{CallContext, Tool, ToolSet};

/// Waits `latency`, or fails with `Timeout`-free cancellation when the call is cancelled.
async fn delay(latency: Duration, cx: &CallContext) -> Result<(), ToolError> {
    if latency.is_zero() {
        return Ok(());
    }
    tokio::select! {
        () = tokio::time::sleep(latency) => Ok(()),
        () = cx.cancel.cancelled() => Err(ToolError::unavailable("the call was cancelled")),
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `get_weather`: current weather for a city (deterministic, derived from the name).
#[derive(Debug, Clone, Default)]
pub struct Weather {
    /// Simulated network latency per call.
    pub latency: Duration,
}

/// Arguments of `get_weather`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeatherArgs {
    /// City name, e.g. "Paris".
    pub city: String,
}

impl Tool for Weather {
    const NAME: &'static str = "get_weather";
    type Args = WeatherArgs;

    fn description(&self) -> &str {
        "Current weather for a city: temperature in °C, condition and humidity."
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    async fn call(&self, args: WeatherArgs, cx: CallContext) -> Result<Value, ToolError> {
        delay(self.latency, &cx).await?;
        let city = args.city.trim();
        if city.is_empty() {
            return Err(ToolError::invalid_arguments(
                "`city` is empty; give a city name such as \"Paris\"",
            ));
        }
        let h = fnv(&city.to_lowercase());
        let conditions = ["sunny", "cloudy", "light rain", "windy", "clear", "foggy"];
        Ok(json!({
            "city": city,
            "temp_c": (h % 35) as i64 - 5,
            "condition": conditions[(h / 35 % conditions.len() as u64) as usize],
            "humidity": 30 + (h / 211 % 60),
        }))
    }
}

/// `calculator`: evaluates an arithmetic expression.
#[derive(Debug, Clone, Default)]
pub struct Calculator {
    /// Simulated latency per call.
    pub latency: Duration,
}

/// Arguments of `calculator`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculatorArgs {
    /// An expression with numbers, + - * / % ^, parentheses, and sqrt, abs, round, min, max.
    pub expression: String,
}

impl Tool for Calculator {
    const NAME: &'static str = "calculator";
    type Args = CalculatorArgs;

    fn description(&self) -> &str {
        "Evaluates an arithmetic expression, e.g. \"(2 + 3) * 4 ^ 2\" or \"sqrt(2) * max(1, 3)\"."
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    async fn call(&self, args: CalculatorArgs, cx: CallContext) -> Result<Value, ToolError> {
        delay(self.latency, &cx).await?;
        let value = crate::calc::eval(&args.expression)
            .map_err(|e| ToolError::invalid_arguments(e.to_string()))?;
        Ok(number(value))
    }
}

/// `x` as JSON: a whole number within f64's exact integers as an integer (`17*23` is
/// `391`, not `391.0`), anything else as a float.
fn number(x: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() < EXACT {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The key-value store shared by `kv_get` and `kv_set`.
#[derive(Debug, Clone, Default)]
pub struct KvStore(Arc<Mutex<BTreeMap<String, Value>>>);

impl KvStore {
    /// A snapshot of the store.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// `kv_set`: stores a value under a key.
#[derive(Debug, Clone, Default)]
pub struct KvSet(pub KvStore);

/// Arguments of `kv_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvSetArgs {
    /// The key.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
}

impl Tool for KvSet {
    const NAME: &'static str = "kv_set";
    type Args = KvSetArgs;

    fn description(&self) -> &str {
        "Stores a JSON value under a key, replacing what was there."
    }

    async fn call(&self, args: KvSetArgs, _cx: CallContext) -> Result<Value, ToolError> {
        let mut map = self
            .0
            .0
            .lock()
            .map_err(|_| ToolError::failed("the store is unavailable"))?;
        let previous = map.insert(args.key, args.value);
        Ok(json!({"stored": true, "replaced": previous.is_some()}))
    }
}

/// `kv_get`: reads the value under a key.
#[derive(Debug, Clone, Default)]
pub struct KvGet(pub KvStore);

/// Arguments of `kv_get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvGetArgs {
    /// The key.
    pub key: String,
}

impl Tool for KvGet {
    const NAME: &'static str = "kv_get";
    type Args = KvGetArgs;

    fn description(&self) -> &str {
        "Reads the JSON value stored under a key."
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    async fn call(&self, args: KvGetArgs, _cx: CallContext) -> Result<Value, ToolError> {
        let map = self
            .0
            .0
            .lock()
            .map_err(|_| ToolError::failed("the store is unavailable"))?;
        map.get(&args.key).cloned().ok_or_else(|| {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(20).collect();
            ToolError::failed(format!(
                "no value under `{}`; stored keys: {}",
                args.key,
                if keys.is_empty() {
                    "none".into()
                } else {
                    keys.join(", ")
                }
            ))
        })
    }
}

/// A fake time source: seconds since the Unix epoch, moved only by [`FakeClock::advance`].
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<AtomicU64>);

impl Default for FakeClock {
    fn default() -> Self {
        // 2025-01-06T09:00:00Z, a Monday.
        Self(Arc::new(AtomicU64::new(1_736_154_000)))
    }
}

impl FakeClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::Relaxed);
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `clock_now`: the current date and time (from a [`FakeClock`]).
#[derive(Debug, Clone, Default)]
pub struct Clock(pub FakeClock);

/// Arguments of `clock_now` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockArgs {}

impl Tool for Clock {
    const NAME: &'static str = "clock_now";
    type Args = ClockArgs;

    fn description(&self) -> &str {
        "The current date and time (UTC) and weekday."
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    async fn call(&self, _args: ClockArgs, _cx: CallContext) -> Result<Value, ToolError> {
        let secs = self.0.now();
        let days = (secs / 86_400) as i64;
        let (y, m, d) = civil_from_days(days);
        let rem = secs % 86_400;
        let weekday = [
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
        ][(days % 7) as usize];
        Ok(json!({
            "iso": format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60),
            "weekday": weekday,
            "unix": secs,
        }))
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `sleep`: waits, then answers (a tool of known latency for benchmarks).
#[derive(Debug, Clone, Default)]
pub struct Sleep;

/// Arguments of `sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// Milliseconds to wait, at most 600000.
    #[schemars(range(max = 600_000))]
    pub ms: u64,
    /// Returned as is, to tell calls apart.
    #[serde(default)]
    pub tag: Option<String>,
}

impl Tool for Sleep {
    const NAME: &'static str = "sleep";
    type Args = SleepArgs;

    fn description(&self) -> &str {
        "Waits the given number of milliseconds, then returns."
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    async fn call(&self, args: SleepArgs, cx: CallContext) -> Result<Value, ToolError> {
        delay(Duration::from_millis(args.ms), &cx).await?;
        Ok(json!({"slept_ms": args.ms, "tag": args.tag}))
    }
}

const CORPUS: &[(&str, &str)] = &[
    (
        "Paris",
        "Paris is the capital of France, on the Seine; about 2.1 million people live in the city proper.",
    ),
    (
        "Oslo",
        "Oslo is the capital of Norway, at the head of the Oslofjord; winters are cold and snowy.",
    ),
    (
        "Lima",
        "Lima is the capital of Peru, on the Pacific coast; it rarely rains there.",
    ),
    (
        "Rome",
        "Rome is the capital of Italy, founded according to legend in 753 BC.",
    ),
    (
        "Tokyo",
        "Tokyo is the capital of Japan and one of the most populous metropolitan areas in the world.",
    ),
    (
        "Nairobi",
        "Nairobi is the capital of Kenya, at about 1,795 m above sea level.",
    ),
    (
        "Eiffel Tower",
        "The Eiffel Tower in Paris is 330 m tall and was completed in 1889.",
    ),
    (
        "Seine",
        "The Seine is a 777 km river that flows through Paris into the English Channel.",
    ),
    (
        "Fjord",
        "A fjord is a long, narrow inlet with steep sides, created by a glacier.",
    ),
    (
        "Celsius",
        "To convert Celsius to Fahrenheit, multiply by 9/5 and add 32.",
    ),
    (
        "LLMCompiler",
        "LLMCompiler plans function calls as a DAG and runs independent calls in parallel.",
    ),
    (
        "ReAct",
        "ReAct interleaves reasoning and acting: the model thinks, calls one tool, observes, repeats.",
    ),
    (
        "JSON Schema",
        "JSON Schema describes the shape of JSON data; draft 2020-12 is the current version.",
    ),
    (
        "MCP",
        "The Model Context Protocol connects models to tools and data sources over JSON-RPC.",
    ),
    (
        "Rust",
        "Rust is a systems programming language focused on safety, speed and concurrency.",
    ),
];

/// `search`: ranked lookup in a small bundled encyclopedia.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Simulated latency per call.
    pub latency: Duration,
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,
    /// How many results, 1 to 10 (default 3).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub k: Option<u8>,
}

impl Tool for Search {
    const NAME: &'static str = "search";
    type Args = SearchArgs;

    fn description(&self) -> &str {
        "Searches a small encyclopedia (cities, rivers, units, AI agents) and returns the best passages."
    }

    fn is_idempotent(&self) -> bool {
        true
    }

    async fn call(&self, args: SearchArgs, cx: CallContext) -> Result<Value, ToolError> {
        delay(self.latency, &cx).await?;
        let words: Vec<String> = args
            .query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 1)
            .map(str::to_lowercase)
            .collect();
        let mut scored: Vec<(usize, &str, &str)> = CORPUS
            .iter()
            .map(|(title, text)| {
                let hay = format!("{title} {title} {text}").to_lowercase();
                (
                    words.iter().filter(|w| hay.contains(w.as_str())).count(),
                    *title,
                    *text,
                )
            })
            .filter(|(s, _, _)| *s > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let hits: Vec<Value> = scored
            .into_iter()
            .take(usize::from(args.k.unwrap_or(3)))
            .map(|(score, title, text)| json!({"title": title, "text": text, "score": score}))
            .collect();
        Ok(json!({"query": args.query, "results": hits}))
    }
}

/// Every demo tool, sharing one store and one clock; `latency` applies to the lookup tools.
pub fn demo_tools(latency: Duration) -> ToolSet {
    let store = KvStore::default();
    let mut set = ToolSet::new();
    // The demo schemas are derived from types above and known to compile.
    let _ = set.add(Weather { latency });
    let _ = set.add(Search { latency });
    let _ = set.add(Calculator {
        latency: Duration::ZERO,
    });
    let _ = set.add(KvSet(store.clone()));
    let _ = set.add(KvGet(store));
    let _ = set.add(Clock::default());
    let _ = set.add(Sleep);
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DynTool;
    use pretty_assertions::assert_eq;

    async fn call(set: &ToolSet, name: &str, args: Value) -> Result<Value, ToolError> {
        let checked = set.check(name, args)?;
        set.get(name)
            .unwrap()
            .call_json(checked.arguments, CallContext::detached("t"))
            .await
    }

    #[tokio::test]
    async fn demo_tools_answer_deterministically() {
        let set = demo_tools(Duration::ZERO);
        assert_eq!(
            set.names(),
            vec![
                "get_weather",
                "search",
                "calculator",
                "kv_set",
                "kv_get",
                "clock_now",
                "sleep"
            ]
        );
        let a = call(&set, "get_weather", json!({"city": "Paris"}))
            .await
            .unwrap();
        assert_eq!(
            a,
            call(&set, "get_weather", json!({"city": "paris"}))
                .await
                .unwrap()
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("city".into(), json!("Paris"));
                    Value::Object(o)
                })
                .unwrap()
        );
        assert_eq!(
            call(&set, "calculator", json!({"expression": "(2 + 3) * 4 ^ 2"}))
                .await
                .unwrap(),
            json!(80)
        );
        // Integers stay integers; anything else stays a float.
        for (expression, want) in [
            ("17*23", json!(391)),
            ("7/2", json!(3.5)),
            ("2^60", json!(2f64.powi(60))),
        ] {
            assert_eq!(
                call(&set, "calculator", json!({"expression": expression}))
                    .await
                    .unwrap(),
                want,
                "{expression}"
            );
        }
        call(&set, "kv_set", json!({"key": "a", "value": [1, 2]}))
            .await
            .unwrap();
        assert_eq!(
            call(&set, "kv_get", json!({"key": "a"})).await.unwrap(),
            json!([1, 2])
        );
        let err = call(&set, "kv_get", json!({"key": "b"})).await.unwrap_err();
        assert_eq!(err.for_model(), "no value under `b`; stored keys: a");
        assert_eq!(
            call(&set, "clock_now", json!({})).await.unwrap()["iso"],
            "2025-01-06T09:00:00Z"
        );
        assert_eq!(
            call(&set, "clock_now", json!({})).await.unwrap()["weekday"],
            "Monday"
        );
        let hits = call(
            &set,
            "search",
            json!({"query": "capital of Norway", "k": 1}),
        )
        .await
        .unwrap();
        assert_eq!(hits["results"][0]["title"], "Oslo");
    }

    #[tokio::test]
    async fn schemas_come_from_the_argument_types() {
        let set = demo_tools(Duration::ZERO);
        let spec = set.specs().iter().find(|s| s.name == "search").unwrap();
        assert_eq!(
            spec.parameters["properties"]["query"]["description"],
            "What to look for."
        );
        assert_eq!(spec.parameters["required"], json!(["query"]));
        let err = call(&set, "search", json!({"query": "x", "k": 50}))
            .await
            .unwrap_err();
        assert!(
            err.for_model()
                .contains("`$.k`: 50 is greater than the maximum 10"),
            "{}",
            err.for_model()
        );
        let err = call(&set, "get_weather", json!({"town": "Paris"}))
            .await
            .unwrap_err();
        assert!(
            err.for_model()
                .contains("required property `city` is missing"),
            "{}",
            err.for_model()
        );
    }

    #[tokio::test]
    async fn sleep_stops_when_cancelled() {
        let cx = CallContext::detached("t");
        let cancel = cx.cancel.clone();
        let task = tokio::spawn(async move { Sleep.call_json(json!({"ms": 60_000}), cx).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
        let err = tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), agentry_core::ErrorKind::Unavailable);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_094), (2025, 1, 6));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
