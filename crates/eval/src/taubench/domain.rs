//! What a τ-bench domain is ([`Domain`]: tables, tools that mutate them, terminal tools) and
//! what it comes with on disk ([`DomainData`]: database, tool schemas, policy, tasks).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use agentry_core::{ToolError, ToolSpec};
use agentry_tools::{FnTool, ToolSet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Db, TauError, retail::Retail};

/// A domain: its tables and the behaviour of its tools. Adding a domain means writing one
/// of these; the harness (episodes, replay, reward, pass^k) stays as it is.
pub trait Domain: Send + Sync + 'static {
    /// Its name on the command line (`retail`).
    fn name(&self) -> &'static str;
    /// The tables its database holds, one `data/<table>.json` each.
    fn tables(&self) -> &'static [&'static str];
    /// Tools whose call ends the episode (a hand-off to a human).
    fn terminal_tools(&self) -> &'static [&'static str];
    /// Runs tool `name` on `db`: the observation, or the message of what the reference
    /// implementation raises (shown as `Error: <message>`). `None` when there is no such tool.
    fn call(
        &self,
        db: &mut Db,
        name: &str,
        kwargs: &Map<String, Value>,
    ) -> Option<Result<String, String>>;
}

/// The domains agentry knows, by name.
pub fn domain(name: &str) -> Result<Arc<dyn Domain>, TauError> {
    match name {
        "retail" => Ok(Arc::new(Retail)),
        other => Err(TauError::Usage(format!(
            "unknown domain `{other}`; known: retail"
        ))),
    }
}

/// One ground-truth action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Tool name.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
}

/// A task: who the user is, what they want, and what a correct agent does and says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Who wrote it (metadata).
    #[serde(default)]
    pub annotator: Option<String>,
    /// The user the simulator plays.
    pub user_id: String,
    /// The simulator's instruction.
    pub instruction: String,
    /// Ground-truth actions, in order.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Strings the agent must say.
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// A task split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The split published numbers use.
    Test,
    /// The small development split.
    Dev,
    /// The synthetic training split.
    Train,
}

impl Split {
    /// Every split, in the order a full replay walks them.
    pub const ALL: [Split; 3] = [Split::Test, Split::Dev, Split::Train];

    /// `test`, `dev` or `train`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Dev => "dev",
            Self::Train => "train",
        }
    }
}

impl std::str::FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Self::Test),
            "dev" => Ok(Self::Dev),
            "train" => Ok(Self::Train),
            other => Err(format!(
                "unknown split `{other}`; expected test, dev or train"
            )),
        }
    }
}

/// A domain with its data: the initial database, the tool schemas offered to the agent, the
/// policy the agent follows, and the tasks of one split.
#[derive(Clone)]
pub struct DomainData {
    /// The behaviour.
    pub domain: Arc<dyn Domain>,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The initial database (shared; [`Db::fresh`] gives each episode its own copy).
    pub db: Db,
    /// The tools, as offered to the agent (`tools.json`).
    pub tools: Vec<ToolSpec>,
    /// The policy (`wiki.md`), the agent's system prompt.
    pub wiki: String,
    /// The split's tasks; a task's id is its position.
    pub tasks: Vec<Task>,
    /// Which split.
    pub split: Split,
}

impl std::fmt::Debug for DomainData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainData")
            .field("domain", &self.domain.name())
            .field("dir", &self.dir)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl DomainData {
    /// Reads domain `name` from `data` (a τ-bench data directory holding `<name>/`, or the
    /// domain's directory itself).
    pub fn load(data: &Path, name: &str, split: Split) -> Result<Self, TauError> {
        let domain = domain(name)?;
        let dir = [data.join(name), data.to_owned()]
            .into_iter()
            .find(|d| d.join("data").is_dir() && d.join("tools.json").is_file())
            .ok_or_else(|| {
                TauError::Data(format!(
                    "{} holds no τ-bench `{name}` domain (expected {}/{name}/data/ and tools.json)",
                    data.display(),
                    data.display()
                ))
            })?;
        let db = Db::load(&dir.join("data"), domain.tables())?;
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read_to_string(&path)
                .map_err(|e| TauError::Data(format!("cannot read {}: {e}", path.display())))
        };
        let tools = ToolSpec::list_from_json(&read("tools.json")?)
            .map_err(|e| TauError::Data(format!("{}/tools.json: {e}", dir.display())))?;
        let wiki = read("wiki.md")?;
        let file = format!("tasks_{}.json", split.as_str());
        let tasks: Vec<Task> = serde_json::from_str(&read(&file)?)
            .map_err(|e| TauError::Data(format!("{}/{file}: {e}", dir.display())))?;
        Ok(Self {
            domain,
            dir,
            db,
            tools,
            wiki,
            tasks,
            split,
        })
    }

    /// A fresh environment for one episode.
    pub fn env(&self) -> Env {
        Env {
            domain: Arc::clone(&self.domain),
            db: Arc::new(Mutex::new(self.db.fresh())),
        }
    }
}

/// One episode's environment: the domain and its own database.
#[derive(Clone)]
pub struct Env {
    domain: Arc<dyn Domain>,
    db: Arc<Mutex<Db>>,
}

/// What one step of the environment returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The text the agent reads.
    pub text: String,
    /// Whether the tool ends the episode.
    pub done: bool,
}

impl Env {
    /// Runs one action as the reference harness does: a tool's return text, `Error: …` when
    /// it raises, `Unknown action <name>` when there is no such tool.
    pub fn step(&self, name: &str, kwargs: &Map<String, Value>) -> Observation {
        let done = self.domain.terminal_tools().contains(&name);
        let text = match self.db.lock() {
            Ok(mut db) => match self.domain.call(&mut db, name, kwargs) {
                Some(Ok(text)) => text,
                Some(Err(message)) => format!("Error: {message}"),
                None => format!("Unknown action {name}"),
            },
            Err(_) => "Error: the environment is unusable after a panic".to_owned(),
        };
        Observation { text, done }
    }

    /// A copy of the database as it is now.
    pub fn db(&self) -> Db {
        match self.db.lock() {
            Ok(db) => db.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The environment as agentry tools, one per spec; each call is a [`Env::step`] and
    /// its observation comes back to the model as the tool's text.
    pub fn toolset(&self, specs: &[ToolSpec]) -> Result<ToolSet, TauError> {
        let mut set = ToolSet::new();
        for spec in specs {
            let env = self.clone();
            let name = spec.name.clone();
            let tool = FnTool::new(spec.clone(), move |args: Value, _cx| {
                let env = env.clone();
                let name = name.clone();
                async move {
                    let Value::Object(kwargs) = args else {
                        return Err(ToolError::invalid_arguments(
                            "the arguments must be a JSON object",
                        ));
                    };
                    Ok(Value::String(env.step(&name, &kwargs).text))
                }
            });
            set.add(tool)
                .map_err(|e| TauError::Data(format!("tool `{}`: {e}", spec.name)))?;
        }
        Ok(set)
    }
}
