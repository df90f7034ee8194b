//! The embedded local model: llama.cpp in process, [`LocalModel`].
//!
//! A GGUF model is loaded once per process (per file and settings) by a worker thread that
//! owns it and one llama.cpp context; requests queue to that thread and are served one at a
//! time. The conversation is rendered with the model's own chat template, tokens are read by
//! the incremental call parser as they are sampled (so the engine dispatches each call while
//! the model is still writing), and the KV cache keeps [`SLOTS`] recent prompts: a request
//! reuses the slot sharing the longest prefix with it, so tools and system prompt are not
//! processed again every turn, even when planner and joiner turns alternate.
//!
//! With tools on offer (or a plan asked for), decoding is constrained by default: an
//! llguidance grammar built from the tools' JSON Schemas masks every token that would make
//! the call name an unknown tool or break its schema ([`grammar`]). Sampling is done here,
//! not by llama.cpp's sampler chain: the mask is applied to the logits, one token is chosen,
//! and it is given to the grammar exactly once, which rules out the double-accept and
//! sampler-order failures of the C++ samplers by construction.

mod disk;
pub mod file;
pub mod grammar;
mod template;

use std::{
    collections::HashMap,
    num::NonZeroU32,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, Weak, mpsc},
    time::{Duration, Instant},
};

use agentry_parse::Format;
use llama_cpp_2::{
    context::{LlamaContext, params::LlamaContextParams},
    llama_backend::LlamaBackend,
    llama_batch::LlamaBatch,
    model::{LlamaModel, params::LlamaModelParams},
    token::LlamaToken,
};
use llguidance::{Matcher, ParserFactory, api::TopLevelGrammar};
use tokio::sync::mpsc as tokio_mpsc;
use toktrie::TokEnv;

pub use template::ChatTemplate;

use crate::{
    ChatRequest, FinishReason, LlmError, Model, ModelEvent, ModelStream, ReplyShape, SplitMix64,
    ToolChoice, Usage, assemble::Assembler,
};

/// Prompts kept in the KV cache at once (each up to the context size).
pub const SLOTS: usize = 4;

/// Settings of the local backend.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalConfig {
    /// The GGUF file.
    pub path: PathBuf,
    /// CPU threads for generation and prompt processing (default: all cores).
    pub threads: Option<u32>,
    /// Context size in tokens; a longer prompt is an error ([`LlmError::TooLong`]).
    pub context: u32,
    /// Whether calls and plans are grammar-constrained.
    pub constrain: bool,
    /// Cap on generated tokens when the request sets none.
    pub max_tokens: u32,
    /// Seed for sampling at a temperature above zero (zero or unset: greedy).
    pub seed: u64,
    /// Where long prompts' KV caches are kept between processes (`None`: nowhere).
    pub prompt_cache: Option<PathBuf>,
}

impl LocalConfig {
    /// Defaults for the model at `path`: 4096 tokens of context, constrained, 1024 new tokens,
    /// prompt caches in the model directory's `prompt-cache` (`AGENTRY_PROMPT_CACHE`: another
    /// directory, or `off`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            threads: None,
            context: 4096,
            constrain: true,
            max_tokens: 1024,
            seed: 0,
            prompt_cache: match std::env::var_os("AGENTRY_PROMPT_CACHE") {
                Some(v) if v == "off" => None,
                Some(v) => Some(PathBuf::from(v)),
                None => Some(file::model_dir().join("prompt-cache")),
            },
        }
    }
}

/// What one request cost the local backend, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LocalStats {
    /// Prompt tokens in all.
    pub prompt_tokens: usize,
    /// Of those, tokens whose KV cache entries were reused from the previous request.
    pub reused_tokens: usize,
    /// Time to process the rest of the prompt.
    pub prompt_time: Duration,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time from the first to the last generated token (decode, grammar and sampling).
    pub generation_time: Duration,
    /// Of that, time spent computing grammar masks.
    pub mask_time: Duration,
    /// Whether the reused tokens were read from a prompt cache on disk.
    pub from_disk: bool,
    /// Whether the reply was constrained.
    pub constrained: bool,
}

/// The local model: a handle to the worker that owns it. Cheap to clone.
#[derive(Clone)]
pub struct LocalModel {
    shared: Arc<Shared>,
    constrain: bool,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.shared.name)
            .finish()
    }
}

struct Shared {
    name: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    stats: Mutex<LocalStats>,
    notes: Mutex<Vec<String>>,
}

struct Job {
    request: ChatRequest,
    constrain: bool,
    events: tokio_mpsc::UnboundedSender<Result<ModelEvent, LlmError>>,
}

/// Models loaded in this process, by file, threads and context size.
type Loaded = Mutex<HashMap<(PathBuf, Option<u32>, u32), Weak<Shared>>>;

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

fn backend() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlmError::Local(format!("llama.cpp did not start: {e}")))
}

impl LocalModel {
    /// Loads the model `config` names (or reuses it if this process loaded it already).
    ///
    /// Checks the file first ([`file::check`]), so a missing, foreign or corrupt file is an
    /// error that says how to fix it, never a failure inside llama.cpp.
    pub fn load(config: LocalConfig) -> Result<Self, LlmError> {
        let key = (config.path.clone(), config.threads, config.context);
        let mut loaded = loaded().lock().map_err(|_| poisoned())?;
        if let Some(shared) = loaded.get(&key).and_then(Weak::upgrade) {
            return Ok(Self {
                shared,
                constrain: config.constrain,
            });
        }
        file::check(&config.path)?;
        let name = format!(
            "local:{}",
            config.path.file_stem().map_or_else(
                || config.path.display().to_string(),
                |s| s.to_string_lossy().into_owned()
            )
        );
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), LlmError>>();
        let shared = Arc::new(Shared {
            name,
            jobs: Mutex::new(jobs_tx),
            stats: Mutex::new(LocalStats::default()),
            notes: Mutex::new(Vec::new()),
        });
        let worker_shared = Arc::downgrade(&shared);
        let cfg = config.clone();
        std::thread::Builder::new()
            .name("agentry-local-model".into())
            .spawn(move || worker(cfg, jobs_rx, ready_tx, worker_shared))
            .map_err(|e| LlmError::Local(format!("cannot start the model thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| LlmError::Local("the model thread stopped while loading".into()))??;
        loaded.insert(key, Arc::downgrade(&shared));
        Ok(Self {
            shared,
            constrain: config.constrain,
        })
    }

    /// The same model with constrained decoding on or off.
    #[must_use]
    pub fn constrained(mut self, on: bool) -> Self {
        self.constrain = on;
        self
    }

    /// What the last finished request cost.
    pub fn last_stats(&self) -> LocalStats {
        self.shared.stats.lock().map(|s| *s).unwrap_or_default()
    }
}

fn poisoned() -> LlmError {
    LlmError::Local("a thread panicked while holding the model registry".into())
}

impl Model for LocalModel {
    fn name(&self) -> String {
        self.shared.name.clone()
    }

    /// Notes the backend made about what it could not do (a schema the grammar compiler
    /// rejected, so that tool's calls were left unconstrained); each once.
    fn take_notes(&self) -> Vec<String> {
        self.shared
            .notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    fn stream(&self, request: ChatRequest) -> ModelStream {
        let shared = Arc::clone(&self.shared);
        let constrain = self.constrain;
        Box::pin(async_stream::stream! {
            let (tx, mut rx) = tokio_mpsc::unbounded_channel();
            let sent = shared
                .jobs
                .lock()
                .map_err(|_| poisoned())
                .and_then(|jobs| {
                    jobs.send(Job { request, constrain, events: tx })
                        .map_err(|_| LlmError::Local("the model thread has stopped".into()))
                });
            if let Err(e) = sent {
                yield Err(e);
                return;
            }
            // Dropping this stream drops `rx`; the worker sees that and stops generating.
            while let Some(event) = rx.recv().await {
                yield event;
            }
        })
    }
}

/// Everything the worker thread keeps between requests.
struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: ChatTemplate,
    /// Per slot (KV sequence): the tokens whose KV entries it holds, and when it was used.
    slots: Vec<(Vec<LlamaToken>, u64)>,
    /// Requests served, for least-recently-used eviction.
    served: u64,
    /// Most tokens one slot may hold.
    per_slot: usize,
    /// Long prompts' KV caches on disk, across processes.
    disk: Option<disk::DiskCache>,
    /// Whether each tool's schema (by name and schema) compiles into a grammar.
    compiles: HashMap<String, bool>,
    /// Compiled grammars by their text: a conversation asks for the same one every turn.
    parsers: HashMap<String, llguidance::TokenParser>,
    /// Tools whose fallback was already noted.
    noted: std::collections::HashSet<String>,
    /// The tokenizer as llguidance sees it, built on first use (~0.3 s).
    factory: Option<ParserFactory>,
    n_batch: usize,
    max_tokens: u32,
    rng: SplitMix64,
    shared: Weak<Shared>,
}

fn worker(
    cfg: LocalConfig,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Result<(), LlmError>>,
    shared: Weak<Shared>,
) {
    let loaded = (|| {
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, &cfg.path, &LlamaModelParams::default())
            .map_err(|e| {
                LlmError::Local(format!(
                    "llama.cpp could not load {} ({e}): the file is corrupt or of an unsupported \
                     architecture; fetch it again with `scripts/local-model` or name another GGUF",
                    cfg.path.display()
                ))
            })?;
        Ok::<_, LlmError>(model)
    })();
    let model = match loaded {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let threads = cfg.threads.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get() as i32),
        |t| t.max(1) as i32,
    );
    let n_batch = 2048u32;
    let per_slot = cfg.context.max(256);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(per_slot * SLOTS as u32))
        .with_n_seq_max(SLOTS as u32)
        .with_kv_unified(false)
        .with_n_batch(n_batch)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let setup = (|| {
        let backend = backend()?;
        let source = model.meta_val_str("tokenizer.chat_template").map_err(|_| {
            LlmError::Local(format!(
                "{} has no chat template (GGUF key tokenizer.chat_template); use an instruct model",
                cfg.path.display()
            ))
        })?;
        let template = ChatTemplate::new(&source)?;
        let ctx = model.new_context(backend, params).map_err(|e| {
            LlmError::Local(format!(
                "llama.cpp could not make a context of {} tokens: {e}",
                cfg.context
            ))
        })?;
        Ok::<_, LlmError>((template, ctx))
    })();
    let (template, ctx) = match setup {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut w = Worker {
        model: &model,
        ctx,
        template,
        slots: vec![(Vec::new(), 0); SLOTS],
        served: 0,
        per_slot: per_slot as usize,
        disk: cfg
            .prompt_cache
            .as_deref()
            .map(|root| disk::DiskCache::new(root, &cfg.path)),
        compiles: HashMap::new(),
        parsers: HashMap::new(),
        noted: Default::default(),
        factory: None,
        n_batch: n_batch as usize,
        max_tokens: cfg.max_tokens,
        rng: SplitMix64::new(cfg.seed),
        shared,
    };
    while let Ok(job) = jobs.recv() {
        if job.events.is_closed() {
            continue; // Dropped before its turn came.
        }
        let events = job.events.clone();
        if let Err(e) = w.run(job) {
            // The KV cache may be half-written; start every slot from scratch.
            for slot in &mut w.slots {
                slot.0.clear();
            }
            w.ctx.clear_kv_cache();
            let _ = events.send(Err(e));
        }
    }
}

impl Worker<'_> {
    fn run(&mut self, job: Job) -> Result<(), LlmError> {
        let started = Instant::now();
        let request = &job.request;
        let shaped = request.shape.is_some();
        let tools = if shaped || request.tool_choice == ToolChoice::None {
            &[][..]
        } else {
            &request.tools[..]
        };
        let prompt = self.template.render(&request.messages, tools)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), false, true);
        let n_ctx = self.per_slot;
        if tokens.len() + 1 >= n_ctx {
            return Err(LlmError::TooLong {
                tokens: tokens.len(),
                context: n_ctx,
            });
        }
        let budget = request.max_tokens.unwrap_or(self.max_tokens) as usize;
        let max_new = budget.min(n_ctx - tokens.len() - 1);

        let grammar = if !job.constrain {
            None
        } else if let Some(shape) = &request.shape {
            match shape {
                ReplyShape::Plan(plan_tools) => Some(grammar::plan(plan_tools)),
                ReplyShape::StartsWith(prefixes) => grammar::starts_with(prefixes),
            }
        } else {
            let loose = self.loose_tools(tools);
            let parallel = request.parallel_tool_calls != Some(false);
            grammar::calls(tools, &request.tool_choice, &loose, parallel)
        };
        let mut matcher = match &grammar {
            Some(g) => Some(self.matcher(g)?),
            None => None,
        };

        // Reuse the slot sharing the longest prefix (else the least recently used); always
        // recompute the last prompt token so there are logits to sample from.
        let (slot, mut common) = pick_slot(&self.slots, &tokens);
        self.served += 1;
        self.slots[slot].1 = self.served;
        let prompt_started = Instant::now();
        let from_disk = self.load_from_disk(slot, &tokens, &mut common);
        self.ctx
            .clear_kv_cache_seq(Some(slot as u32), Some(common as u32), None)
            .map_err(|e| LlmError::Local(format!("KV cache: {e}")))?;
        self.slots[slot].0.truncate(common);
        let mut logits_at = self.decode(slot, &tokens[common..])?;
        let prompt_time = prompt_started.elapsed();
        if !from_disk && tokens.len() >= 256 && common * 2 < tokens.len() {
            self.save_to_disk(slot, &tokens);
        }

        let format = if shaped || tools.is_empty() {
            None
        } else {
            Some(Format::Auto)
        };
        let mut assembler = Assembler::new(format, started);
        let mut pending_bytes: Vec<u8> = Vec::new();
        let mut generated = 0usize;
        let mut mask_time = Duration::ZERO;
        let mut finish = FinishReason::Stop;
        let gen_started = Instant::now();
        let temperature = request.temperature.unwrap_or(0.0);
        loop {
            if generated >= max_new {
                finish = FinishReason::Length;
                break;
            }
            if matcher.as_ref().is_some_and(Matcher::is_stopped) {
                break;
            }
            let mask = match &mut matcher {
                Some(m) => {
                    let t = Instant::now();
                    let mask = m
                        .compute_mask()
                        .map_err(|e| LlmError::Local(format!("the grammar failed: {e}")))?;
                    mask_time += t.elapsed();
                    Some(mask)
                }
                None => None,
            };
            let logits = self.ctx.get_logits_ith(logits_at);
            let token = sample(logits, mask.as_ref(), temperature, &mut self.rng);
            let Some(token) = token else {
                // The grammar allows nothing (not even the end): stop here.
                break;
            };
            if self.model.vocab().is_eog(token) {
                break;
            }
            if let Some(m) = &mut matcher {
                m.consume_token(token.0 as u32).map_err(|e| {
                    LlmError::Local(format!("the grammar rejected a token it allowed: {e}"))
                })?;
            }
            generated += 1;
            pending_bytes.extend(self.model.vocab().token_to_piece(token, false, None));
            let text = take_utf8(&mut pending_bytes);
            if !text.is_empty() {
                for event in assembler.text_piece(&text) {
                    if job.events.send(Ok(event)).is_err() {
                        return Ok(()); // The caller hung up.
                    }
                }
            } else {
                assembler.text_piece("");
            }
            logits_at = self.decode(slot, &[token])?;
        }
        if !pending_bytes.is_empty() {
            let text = String::from_utf8_lossy(&pending_bytes).into_owned();
            for event in assembler.text_piece(&text) {
                let _ = job.events.send(Ok(event));
            }
        }
        let generation_time = gen_started.elapsed();
        tracing::debug!(
            slot,
            prompt = tokens.len(),
            reused = common,
            ?prompt_time,
            generated,
            ?generation_time,
            ?mask_time,
            "local model request"
        );
        if let Some(shared) = self.shared.upgrade()
            && let Ok(mut stats) = shared.stats.lock()
        {
            *stats = LocalStats {
                prompt_tokens: tokens.len(),
                reused_tokens: common,
                prompt_time,
                generated_tokens: generated,
                generation_time,
                mask_time,
                from_disk,
                constrained: matcher.is_some(),
            };
        }
        // Stats first: a caller reads them as soon as it sees the final event.
        assembler.set_usage(Usage {
            prompt_tokens: tokens.len() as u64,
            completion_tokens: generated as u64,
        });
        assembler.set_finish_reason(finish);
        for event in assembler.finish(1) {
            let _ = job.events.send(Ok(event));
        }
        Ok(())
    }

    /// Loads into `slot` the prompt cache on disk sharing more than `common` tokens with
    /// `tokens`, if there is one; updates `common`. A file llama.cpp cannot read is dropped.
    fn load_from_disk(&mut self, slot: usize, tokens: &[LlamaToken], common: &mut usize) -> bool {
        let Some(cache) = &self.disk else {
            return false;
        };
        let ids: Vec<i32> = tokens.iter().map(|t| t.0).collect();
        let Some((file, _)) = cache.best(&ids[..ids.len() - 1], *common) else {
            return false;
        };
        if !cache.intact(&file) {
            return false;
        }
        // What the slot held is replaced by what the file holds.
        if self
            .ctx
            .clear_kv_cache_seq(Some(slot as u32), None, None)
            .is_err()
        {
            return false;
        }
        self.slots[slot].0.clear();
        *common = 0;
        match self
            .ctx
            .state_seq_load_file(&file, slot as i32, self.per_slot)
        {
            Ok((loaded, _)) => {
                *common = shared_prefix(&loaded, tokens).min(tokens.len() - 1);
                self.slots[slot].0 = loaded;
                cache.touch(&file);
                true
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), "dropping an unreadable prompt cache: {e}");
                let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
                cache.forget(&file);
                false
            }
        }
    }

    /// Saves `slot`, which holds exactly `tokens`, as a prompt cache on disk.
    fn save_to_disk(&self, slot: usize, tokens: &[LlamaToken]) {
        let Some(cache) = &self.disk else { return };
        let ids: Vec<i32> = tokens.iter().map(|t| t.0).collect();
        let Some(file) = cache.slot_for(&ids) else {
            return;
        };
        match self.ctx.state_seq_save_file(&file, slot as i32, tokens) {
            Ok(_) => cache.seal(&file),
            Err(e) => {
                tracing::warn!(file = %file.display(), "cannot save a prompt cache: {e}");
                cache.forget(&file);
            }
        }
    }

    /// Runs `tokens` through the model after what slot `slot` holds; returns the batch index
    /// of the last token's logits.
    fn decode(&mut self, slot: usize, tokens: &[LlamaToken]) -> Result<i32, LlmError> {
        let mut last = 0;
        for chunk in tokens.chunks(self.n_batch) {
            let mut batch = LlamaBatch::new(chunk.len(), 1);
            for (i, &t) in chunk.iter().enumerate() {
                let pos = (self.slots[slot].0.len() + i) as i32;
                batch
                    .add(t, pos, &[slot as i32], i == chunk.len() - 1)
                    .map_err(|e| LlmError::Local(format!("batch: {e}")))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| LlmError::Local(format!("llama.cpp decode failed: {e}")))?;
            self.slots[slot].0.extend_from_slice(chunk);
            last = chunk.len() as i32 - 1;
        }
        Ok(last)
    }

    fn factory(&mut self) -> Result<&ParserFactory, LlmError> {
        if self.factory.is_none() {
            let env: TokEnv = llama_cpp_2::sampling::LlamaSampler::llguidance_tok_env(self.model);
            let mut factory = ParserFactory::new_simple(&env)
                .map_err(|e| LlmError::Local(format!("llguidance: {e}")))?;
            factory.set_stderr_log_level(0);
            self.factory = Some(factory);
        }
        self.factory
            .as_ref()
            .ok_or_else(|| LlmError::Local("llguidance did not start".into()))
    }

    fn matcher(&mut self, grammar: &str) -> Result<Matcher, LlmError> {
        if let Some(parser) = self.parsers.get(grammar) {
            // A clone shares the lexer's caches, so masks get cheaper turn after turn.
            return Ok(Matcher::new(Ok(parser.clone())));
        }
        let parser = self
            .factory()?
            .create_parser(TopLevelGrammar::from_lark(grammar.to_owned()))
            .map_err(|e| LlmError::Local(format!("the call grammar does not compile: {e}")))?;
        if self.parsers.len() >= 32 {
            self.parsers.clear();
        }
        self.parsers.insert(grammar.to_owned(), parser.clone());
        Ok(Matcher::new(Ok(parser)))
    }

    /// Tools whose schema the grammar compiler rejects: their arguments are left to
    /// validation, and a note says so.
    fn loose_tools(&mut self, tools: &[agentry_core::ToolSpec]) -> Vec<String> {
        let mut loose = Vec::new();
        for tool in tools {
            let key = format!("{}\u{0}{}", tool.name, tool.parameters);
            if let Some(&ok) = self.compiles.get(&key) {
                if !ok {
                    loose.push(tool.name.clone());
                }
                continue;
            }
            let Some(g) =
                grammar::calls(std::slice::from_ref(tool), &ToolChoice::Required, &[], true)
            else {
                continue;
            };
            let ok = self
                .factory()
                .is_ok_and(|f| f.create_parser(TopLevelGrammar::from_lark(g)).is_ok());
            self.compiles.insert(key, ok);
            if !ok {
                loose.push(tool.name.clone());
                if self.noted.insert(tool.name.clone())
                    && let Some(shared) = self.shared.upgrade()
                    && let Ok(mut notes) = shared.notes.lock()
                {
                    notes.push(format!(
                        "the schema of `{}` cannot be compiled into a grammar; its calls are \
                         decoded unconstrained and checked by validation",
                        tool.name
                    ));
                }
            }
        }
        loose
    }
}

/// Chooses the next token: the most likely allowed one, or at `temperature` > 0 a sample
/// from the allowed ones. `None` when the mask allows nothing.
fn sample(
    logits: &[f32],
    mask: Option<&toktrie::SimpleVob>,
    temperature: f32,
    rng: &mut SplitMix64,
) -> Option<LlamaToken> {
    let allowed = |i: usize| mask.is_none_or(|m| m.is_allowed(i as u32));
    if temperature <= 0.0 {
        let mut best: Option<(usize, f32)> = None;
        for (i, &l) in logits.iter().enumerate() {
            if (best.is_none() || l > best.map_or(f32::MIN, |b| b.1)) && allowed(i) {
                best = Some((i, l));
            }
        }
        return best.map(|(i, _)| LlamaToken(i as i32));
    }
    let max = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed(*i))
        .map(|(_, &l)| l)
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return None;
    }
    let weights: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed(*i))
        .map(|(i, &l)| (i, f64::from((l - max) / temperature).exp()))
        .collect();
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut target = rng.next_f64() * total;
    for &(i, w) in &weights {
        target -= w;
        if target <= 0.0 {
            return Some(LlamaToken(i as i32));
        }
    }
    weights.last().map(|&(i, _)| LlamaToken(i as i32))
}

/// The slot to serve `tokens` from and how many of its tokens can be kept.
///
/// A slot fits when using it throws away little: what it holds beyond the shared prefix
/// is at most an eighth of that prefix, or 32 tokens (a reply the template renders a bit
/// differently). The fitting slot sharing the most wins; if none shares anything, an
/// empty slot. Only when every slot is taken does a request cut into another
/// conversation: the slot sharing the longest prefix unless that throws away more than
/// it saves (a joiner's prompt shares only the chat preamble with a planner's), else the
/// least recently used. So conversations that share a long preamble (τ-bench agents
/// with one policy) each keep their own slot instead of truncating each other's tails.
fn pick_slot<T: PartialEq>(slots: &[(Vec<T>, u64)], tokens: &[T]) -> (usize, usize) {
    let common: Vec<usize> = slots
        .iter()
        .map(|(held, _)| shared_prefix(held, tokens).min(tokens.len().saturating_sub(1)))
        .collect();
    let fits = |i: usize| slots[i].0.len() - common[i] <= (common[i] / 8).max(32);
    let best_fit = (0..slots.len())
        .filter(|&i| fits(i))
        .max_by_key(|&i| (common[i], std::cmp::Reverse(slots[i].1)));
    if let Some(i) = best_fit.filter(|&i| common[i] > 0) {
        return (i, common[i]);
    }
    if let Some(empty) = (0..slots.len()).find(|&i| slots[i].0.is_empty()) {
        return (empty, 0);
    }
    let by_reuse = (0..slots.len())
        .max_by_key(|&i| (common[i], std::cmp::Reverse(slots[i].1)))
        .unwrap_or(0);
    if common[by_reuse] * 2 >= slots[by_reuse].0.len() {
        return (by_reuse, common[by_reuse]);
    }
    let lru = (0..slots.len()).min_by_key(|&i| slots[i].1).unwrap_or(0);
    (lru, common[lru])
}

/// How many leading items `a` and `b` share.
pub(crate) fn shared_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The longest valid UTF-8 prefix of `bytes`, removed from it; invalid bytes that cannot
/// start a longer character become U+FFFD.
fn take_utf8(bytes: &mut Vec<u8>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let s = s.to_owned();
            bytes.clear();
            s
        }
        Err(e) if e.error_len().is_none() => {
            // An incomplete character at the end: keep it for the next token.
            let valid = e.valid_up_to();
            let rest = bytes.split_off(valid);
            let s = String::from_utf8_lossy(bytes).into_owned();
            *bytes = rest;
            s
        }
        Err(_) => {
            let s = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            s
        }
    }
}

#[cfg(test)]
mod slot_tests {
    use super::pick_slot;

    fn conv(preamble: usize, tag: u32, len: usize) -> Vec<u32> {
        (0..preamble as u32)
            .chain((0..len as u32).map(|i| tag * 100_000 + i))
            .collect()
    }

    #[test]
    fn conversations_sharing_a_preamble_keep_their_own_slots() {
        // Agent A holds the 4,300-token policy plus 1,000 tokens of its own conversation.
        let a = conv(4300, 1, 1000);
        let mut slots = vec![
            (a.clone(), 1),
            (Vec::new(), 0),
            (Vec::new(), 0),
            (Vec::new(), 0),
        ];
        // Agent B starts with the same policy: it takes an empty slot, not A's tail.
        let b = conv(4300, 2, 10);
        assert_eq!(pick_slot(&slots, &b), (1, 0));
        slots[1] = (b.clone(), 2);
        // A goes on where it was: its own slot, everything kept.
        let a_next = conv(4300, 1, 1040);
        assert_eq!(pick_slot(&slots, &a_next), (0, 5300));
        // A reply rendered slightly differently costs a few tokens, not the slot.
        let mut a_retemplated = a[..5290].to_vec();
        a_retemplated.extend([7, 7, 7]);
        assert_eq!(pick_slot(&slots, &a_retemplated), (0, 5290));
        // With every slot taken, an unrelated prompt replaces the least recently used.
        slots[2] = (conv(0, 3, 500), 3);
        slots[3] = (conv(0, 4, 500), 4);
        assert_eq!(pick_slot(&slots, &conv(0, 5, 100)).0, 0);
        // …and one sharing most of a slot's content extends it.
        assert_eq!(pick_slot(&slots, &conv(0, 4, 900)), (3, 500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_tokens_is_held_back() {
        let mut b = "é".as_bytes()[..1].to_vec();
        assert_eq!(take_utf8(&mut b), "");
        b.extend_from_slice(&"é".as_bytes()[1..]);
        b.extend_from_slice(b"x");
        assert_eq!(take_utf8(&mut b), "éx");
        assert!(b.is_empty());
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(take_utf8(&mut bad), "a\u{fffd}b");
    }

    #[test]
    fn greedy_sampling_respects_the_mask() {
        let logits = [0.1, 5.0, 2.0, 3.0];
        let mut rng = SplitMix64::new(1);
        assert_eq!(sample(&logits, None, 0.0, &mut rng), Some(LlamaToken(1)));
        let mut mask = toktrie::SimpleVob::alloc(4);
        mask.allow_token(2);
        mask.allow_token(0);
        assert_eq!(
            sample(&logits, Some(&mask), 0.0, &mut rng),
            Some(LlamaToken(2))
        );
        for _ in 0..50 {
            let t = sample(&logits, Some(&mask), 1.0, &mut rng).unwrap();
            assert!(t == LlamaToken(0) || t == LlamaToken(2));
        }
        let none = toktrie::SimpleVob::alloc(4);
        assert_eq!(sample(&logits, Some(&none), 0.0, &mut rng), None);
        assert_eq!(sample(&logits, Some(&none), 1.0, &mut rng), None);
    }
}
