//! One compiled validator per tool: [`Validators`].

use std::collections::HashMap;

use agentry_core::{ToolError, ToolSpec};
use serde_json::Value;

use crate::{ArgValidator, Checked, Coercion, SchemaError};

/// The compiled validators of a set of tools, looked up by name.
#[derive(Debug, Default)]
pub struct Validators {
    by_name: HashMap<String, ArgValidator>,
    names: Vec<String>,
}

impl Validators {
    /// Compiles every tool's schema; the first bad schema is an error.
    pub fn new(specs: &[ToolSpec]) -> Result<Self, SchemaError> {
        let mut v = Self::default();
        for spec in specs {
            v.insert(ArgValidator::new(spec)?);
        }
        Ok(v)
    }

    /// Adds (or replaces) a tool's validator.
    pub fn insert(&mut self, validator: ArgValidator) {
        let name = validator.tool().to_owned();
        if self.by_name.insert(name.clone(), validator).is_none() {
            self.names.push(name);
        }
    }

    /// Allows `coercion` for the tool `name`; `false` if there is no such tool.
    pub fn allow_coercion(&mut self, name: &str, coercion: Coercion) -> bool {
        match self.by_name.remove(name) {
            Some(v) => {
                self.by_name.insert(name.to_owned(), v.coercion(coercion));
                true
            }
            None => false,
        }
    }

    /// The validator of the tool `name`.
    pub fn get(&self, name: &str) -> Option<&ArgValidator> {
        self.by_name.get(name)
    }

    /// The tool names, in the order they were added.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Checks a call: `UnknownTool` for a name not offered, `InvalidArguments` naming every
    /// violation otherwise.
    pub fn check(&self, name: &str, args: Value) -> Result<Checked, ToolError> {
        let Some(validator) = self.by_name.get(name) else {
            return Err(ToolError::unknown_tool(name, &self.names));
        };
        validator
            .check(args)
            .map_err(|invalid| invalid.to_tool_error())
    }
}
