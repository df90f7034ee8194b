//! Choosing a backend by name: [`open`].

use std::{path::Path, sync::Arc};

use crate::{
    LlmError, Model, OpenAi, OpenAiConfig, ToolMode,
    sim::{Script, SimModel},
};

/// Scripts bundled with the binary, usable as `sim:NAME` from anywhere.
pub const BUNDLED_SCRIPTS: &[(&str, &str)] = &[
    ("weather", include_str!("../scripts/weather.yaml")),
    ("hermes", include_str!("../scripts/hermes.yaml")),
    ("plan", include_str!("../scripts/plan.yaml")),
    ("trip", include_str!("../scripts/trip.yaml")),
];

/// The bundled script called `name`, parsed, if there is one.
pub fn bundled_script(name: &str) -> Option<Result<Script, LlmError>> {
    BUNDLED_SCRIPTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Script::parse(text, &format!("sim:{n}")))
}

/// Settings for [`open`] beyond the spec itself; the environment fills what is `None`.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Native or prompted tool calling (OpenAI-compatible servers).
    pub tool_mode: Option<ToolMode>,
    /// Base URL, instead of `OPENAI_BASE_URL`.
    pub base_url: Option<String>,
    /// API key, instead of `OPENAI_API_KEY`.
    pub api_key: Option<String>,
    /// Local model: CPU threads (default: all cores).
    pub threads: Option<u32>,
    /// Local model: context size in tokens (default 4096).
    pub context: Option<u32>,
    /// Local model: whether calls and plans are grammar-constrained (default: yes).
    pub constrain: Option<bool>,
}

/// Whether this build has the embedded local model (the `local` feature).
pub const HAS_LOCAL: bool = cfg!(feature = "local");

/// Whether `local` names a model that can be loaded: the feature is built and the bundled
/// model file is in the model directory.
pub fn local_ready() -> bool {
    #[cfg(feature = "local")]
    {
        crate::local::file::default_path().is_file()
    }
    #[cfg(not(feature = "local"))]
    {
        false
    }
}

/// Opens the backend named by `spec`:
/// - `sim:NAME` — a bundled script (`weather`, `hermes`, `plan`, `trip`);
/// - `sim:PATH` — a script file (`.yaml`, `.yml`, `.json`);
/// - `openai:MODEL` or `openai` — an OpenAI-compatible server from `OPENAI_BASE_URL`,
///   `OPENAI_API_KEY` and (without `:MODEL`) `AGENTRY_MODEL`;
/// - `local` — the bundled local model (Qwen2.5-Coder-0.5B-Instruct, set up by
///   `scripts/local-model`); `local:PATH` — any GGUF file (builds with the `local` feature).
pub fn open(spec: &str, options: &OpenOptions) -> Result<Arc<dyn Model>, LlmError> {
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "sim" => {
            if let Some(script) = bundled_script(rest) {
                return Ok(Arc::new(SimModel::new(script?)));
            }
            let path = Path::new(rest);
            if rest.is_empty() || !path.exists() {
                let names: Vec<&str> = BUNDLED_SCRIPTS.iter().map(|(n, _)| *n).collect();
                return Err(LlmError::Config(format!(
                    "`{spec}`: no bundled script or file named `{rest}`; bundled scripts: {}",
                    names.join(", ")
                )));
            }
            Ok(Arc::new(SimModel::from_file(path)?))
        }
        "openai" => {
            let mut cfg = OpenAiConfig::from_env(Some(rest).filter(|m| !m.is_empty()))?
                .tool_mode(options.tool_mode.unwrap_or(ToolMode::Native));
            if let Some(url) = &options.base_url {
                cfg.base_url = url.clone();
            }
            if let Some(key) = &options.api_key {
                cfg.api_key = Some(key.clone());
            }
            Ok(Arc::new(OpenAi::new(cfg)?))
        }
        "local" => open_local(rest, options),
        _ => Err(LlmError::Config(format!(
            "unknown model `{spec}`; use local (the embedded model), local:PATH (a GGUF file), \
             sim:NAME (bundled: weather, hermes, plan, trip), sim:PATH (a script file) or openai:MODEL"
        ))),
    }
}

#[cfg(feature = "local")]
fn open_local(path: &str, options: &OpenOptions) -> Result<Arc<dyn Model>, LlmError> {
    use crate::local::{LocalConfig, LocalModel, file};
    let path = if path.is_empty() {
        file::default_path()
    } else {
        std::path::PathBuf::from(path)
    };
    let mut cfg = LocalConfig::new(path);
    cfg.threads = options.threads;
    if let Some(n) = options.context {
        cfg.context = n;
    }
    cfg.constrain = options.constrain.unwrap_or(true);
    Ok(Arc::new(LocalModel::load(cfg)?))
}

#[cfg(not(feature = "local"))]
fn open_local(_path: &str, _options: &OpenOptions) -> Result<Arc<dyn Model>, LlmError> {
    Err(LlmError::Config(
        "this agentry was built without the local model (cargo feature `local`, which needs \
         cmake and clang); rebuild with it, or use sim:NAME or openai:MODEL"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_scripts_parse_and_bad_specs_explain() {
        for (name, _) in BUNDLED_SCRIPTS {
            let model = open(&format!("sim:{name}"), &OpenOptions::default()).unwrap();
            assert_eq!(model.name(), format!("sim:{name}"));
        }
        let err = open("sim:nope", &OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bundled scripts: weather, hermes, plan, trip"),
            "{err}"
        );
        let err = open("gpt", &OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown model `gpt`"), "{err}");
    }
}
