//! The tools a run may call, with their compiled schemas: [`ToolSet`].

use std::{collections::HashMap, sync::Arc};

use agentry_core::{ToolError, ToolSpec};
use agentry_schema::{ArgValidator, Checked, SchemaError, Validators};
use serde_json::Value;

use crate::DynTool;

/// A set of tools, each with its schema compiled once.
#[derive(Default)]
pub struct ToolSet {
    tools: HashMap<String, Arc<dyn DynTool>>,
    specs: Vec<ToolSpec>,
    validators: Validators,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.specs.iter().map(|s| &s.name))
            .finish()
    }
}

impl ToolSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; its schema must compile and its name must be new.
    pub fn add(&mut self, tool: impl DynTool + 'static) -> Result<&mut Self, SchemaError> {
        self.add_arc(Arc::new(tool))
    }

    /// Adds a shared tool.
    pub fn add_arc(&mut self, tool: Arc<dyn DynTool>) -> Result<&mut Self, SchemaError> {
        let spec = tool.spec();
        if self.tools.contains_key(&spec.name) {
            return Err(SchemaError {
                tool: spec.name.clone(),
                reason: "a tool with this name is already in the set".into(),
            });
        }
        let validator = ArgValidator::new(&spec)?;
        self.validators.insert(validator);
        self.tools.insert(spec.name.clone(), tool);
        self.specs.push(spec);
        Ok(self)
    }

    /// The specs, in the order the tools were added.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynTool>> {
        self.tools.get(name)
    }

    /// The tool names, in order.
    pub fn names(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.name.clone()).collect()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Checks a call before it runs: `UnknownTool`, or `InvalidArguments` naming every violation.
    pub fn check(&self, name: &str, args: Value) -> Result<Checked, ToolError> {
        self.validators.check(name, args)
    }

    /// Keeps only the tools `keep` says yes to.
    #[must_use]
    pub fn filtered(&self, keep: impl Fn(&ToolSpec) -> bool) -> Self {
        let mut out = Self::new();
        for spec in &self.specs {
            if keep(spec)
                && let Some(tool) = self.tools.get(&spec.name)
            {
                // Names are unique and schemas compiled already: this cannot fail.
                let _ = out.add_arc(Arc::clone(tool));
            }
        }
        out
    }
}
