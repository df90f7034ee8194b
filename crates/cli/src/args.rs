//! Flags several commands share: how to reach the model ([`ModelArgs`]: the embedded local
//! model's settings, a server's address and key), how to drive it ([`ModeArg`]) and how to
//! send it tools ([`ToolModeArg`]).

use agentry_parse::Format;
use clap::ValueEnum;

/// How to reach the model: the embedded local model's settings (`--model local` or
/// `local:PATH`), an OpenAI-compatible server's address and key (`--model openai:…`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ModelArgs {
    /// Local model: CPU threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<u32>,
    /// Local model: context size in tokens; a longer prompt is an error (default 4096;
    /// 16384 for τ-bench, whose policy and tools alone take 4,300).
    #[arg(long, value_name = "TOKENS")]
    pub(crate) context: Option<u32>,
    /// Local model: decode without the grammar that keeps calls valid (for comparison).
    #[arg(long)]
    pub(crate) no_constrain: bool,
    /// Base URL of an OpenAI-compatible server (instead of OPENAI_BASE_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// API key (instead of OPENAI_API_KEY).
    #[arg(long, value_name = "KEY")]
    pub(crate) api_key: Option<String>,
}

impl ModelArgs {
    /// The options that open a model with these settings and `tool_mode`.
    pub(crate) fn options(&self, tool_mode: agentry_llm::ToolMode) -> agentry_llm::OpenOptions {
        agentry_llm::OpenOptions {
            tool_mode: Some(tool_mode),
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            threads: self.threads,
            context: Some(self.context.unwrap_or(4096)),
            constrain: Some(!self.no_constrain),
        }
    }
}

/// `--mode`: how to drive the model.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Sequential,
    Compiled,
}

impl From<ModeArg> for agentry_exec::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Sequential => Self::Sequential,
            ModeArg::Compiled => Self::Compiled,
        }
    }
}

/// `--tool-mode`: send tools natively, or render them into the prompt.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ToolModeArg {
    Native,
    Prompted,
}

impl From<ToolModeArg> for agentry_llm::ToolMode {
    fn from(m: ToolModeArg) -> Self {
        match m {
            ToolModeArg::Native => Self::Native,
            ToolModeArg::Prompted => Self::Prompted(Format::Auto),
        }
    }
}
