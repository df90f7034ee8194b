//! Flags several commands share: the embedded local model's settings ([`LocalArgs`]), how to
//! drive the model ([`ModeArg`]) and how to send it tools ([`ToolModeArg`]).

use agentry_parse::Format;
use clap::ValueEnum;

/// Settings of the embedded local model (`--model local` or `local:PATH`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LocalArgs {
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
}

impl LocalArgs {
    /// The options that open a model with these settings, `tool_mode`, and a server's
    /// address and key when given.
    pub(crate) fn options(
        &self,
        tool_mode: agentry_llm::ToolMode,
        base_url: Option<String>,
        api_key: Option<String>,
    ) -> agentry_llm::OpenOptions {
        agentry_llm::OpenOptions {
            tool_mode: Some(tool_mode),
            base_url,
            api_key,
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
