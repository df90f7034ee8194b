//! Tools that come from elsewhere and can change while an agent runs (an MCP server's):
//! a [`ToolSource`]; a [`Toolbox`] merges sources with a base set, and merges again when a
//! source's tools change.
//!
//! A source's tool whose name is taken (by the base set or by an earlier source) is
//! offered as `ALIAS__name`: no tool hides another, and the model can tell them apart.
//! Sources are merged in order, so the same sources give the same names every time.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use agentry_schema::SchemaError;
use futures::future::BoxFuture;

use crate::{DynTool, ToolSet};

/// Tools listed from elsewhere (an MCP server, say), which may change while agents use them.
pub trait ToolSource: Send + Sync {
    /// The name that sets its tools apart when one's name is taken (`ALIAS__name`).
    fn alias(&self) -> &str;

    /// Its tools now, each named `name`, or `ALIAS__name` when `taken(name)`; a tool may
    /// hold on to its source (`self`).
    fn tools<'a>(
        self: Arc<Self>,
        taken: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> BoxFuture<'a, Vec<Arc<dyn DynTool>>>;

    /// Whether its tools changed since they were last listed.
    fn changed(&self) -> bool;
}

/// A source's tool could not join the set (its schema does not compile).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a tool of `{alias}`: {source}")]
pub struct MergeError {
    /// The source's alias.
    pub alias: String,
    /// Why the tool was refused.
    pub source: SchemaError,
}

/// A base set of tools and sources whose tools can change: [`Toolbox::current`] merges
/// them; [`Toolbox::changes`] merges again only when a source's tools changed.
pub struct Toolbox {
    base: ToolSet,
    sources: Vec<Arc<dyn ToolSource>>,
    listed: AtomicBool,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("base", &self.base)
            .field(
                "sources",
                &self.sources.iter().map(|s| s.alias()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Toolbox {
    /// `base`'s tools, then each source's, in order.
    pub fn new(base: ToolSet, sources: Vec<Arc<dyn ToolSource>>) -> Self {
        Self {
            base,
            sources,
            listed: AtomicBool::new(false),
        }
    }

    /// The sources, in the order their tools are named.
    pub fn sources(&self) -> &[Arc<dyn ToolSource>] {
        &self.sources
    }

    /// Whether a source said its tools changed since they were last listed.
    pub fn changed(&self) -> bool {
        self.sources.iter().any(|s| s.changed())
    }

    /// The tools on offer now: the base set's, then each source's (listed again).
    pub async fn current(&self) -> Result<ToolSet, MergeError> {
        let mut tools = self.base.filtered(|_| true);
        for source in &self.sources {
            let taken = tools.names();
            let is_taken = |n: &str| taken.iter().any(|t| t == n);
            for tool in Arc::clone(source).tools(&is_taken).await {
                tools.add_arc(tool).map_err(|e| MergeError {
                    alias: source.alias().to_owned(),
                    source: e,
                })?;
            }
        }
        self.listed.store(true, Ordering::Relaxed);
        Ok(tools)
    }

    /// The whole new set when this is the first listing or a source said its tools
    /// changed, else `None`.
    pub async fn changes(&self) -> Option<Result<ToolSet, MergeError>> {
        if self.listed.load(Ordering::Relaxed) && !self.changed() {
            return None;
        }
        Some(self.current().await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use pretty_assertions::assert_eq;

    use super::*;
    use crate::{Sleep, Weather, tool_fn};

    /// A source whose tools are whatever its list holds now.
    struct Listed {
        tools: Mutex<Vec<Arc<dyn DynTool>>>,
        changed: AtomicBool,
    }

    impl ToolSource for Listed {
        fn alias(&self) -> &str {
            "srv"
        }

        fn tools<'a>(
            self: Arc<Self>,
            taken: &'a (dyn Fn(&str) -> bool + Sync),
        ) -> BoxFuture<'a, Vec<Arc<dyn DynTool>>> {
            self.changed.store(false, Ordering::Relaxed);
            let tools = self.tools.lock().map(|t| t.clone()).unwrap_or_default();
            Box::pin(async move {
                tools
                    .into_iter()
                    .map(|t| {
                        let name = t.spec().name;
                        if taken(&name) {
                            let renamed = format!("srv__{name}");
                            Arc::new(tool_fn(renamed, "renamed", |_: serde_json::Value| async {
                                Ok::<_, agentry_core::ToolError>(serde_json::Value::Null)
                            })) as Arc<dyn DynTool>
                        } else {
                            t
                        }
                    })
                    .collect()
            })
        }

        fn changed(&self) -> bool {
            self.changed.load(Ordering::Relaxed)
        }
    }

    #[tokio::test]
    async fn the_first_listing_merges_and_later_ones_only_when_a_source_changed() {
        let source = Arc::new(Listed {
            tools: Mutex::new(vec![Arc::new(Weather::default())]),
            changed: AtomicBool::new(false),
        });
        let mut base = ToolSet::new();
        base.add(Weather::default()).unwrap();
        let toolbox = Toolbox::new(base, vec![source.clone() as Arc<dyn ToolSource>]);
        let first = toolbox.changes().await.unwrap().unwrap();
        assert_eq!(first.names(), ["get_weather", "srv__get_weather"]);
        assert!(toolbox.changes().await.is_none());
        source.tools.lock().unwrap().push(Arc::new(Sleep));
        source.changed.store(true, Ordering::Relaxed);
        let next = toolbox.changes().await.unwrap().unwrap();
        assert_eq!(next.names(), ["get_weather", "srv__get_weather", "sleep"]);
        assert!(toolbox.changes().await.is_none());
    }
}
