//! Checking a call's arguments against its tool's JSON Schema before the call runs.
//!
//! [`ArgValidator`] compiles a tool's schema once (draft 2020-12 unless the schema names
//! another, formats checked) and answers each call with the arguments to run, or an
//! [`Invalid`] whose [`Violation`]s each name the JSON path, the rule and the offending value
//! in a sentence a model can act on: `` `$.date`: 'tomorrow' is not a date (YYYY-MM-DD) ``.
//! Validation is the `jsonschema` crate's; this crate owns the sentences and the optional,
//! explicit [`Coercion`] (numeric strings to numbers, a single value to a one-element array),
//! which is off by default and reported when it happens. [`Validators`] holds one validator
//! per tool and turns an unknown tool name into `ErrorKind::UnknownTool`.
//!
//! # Example
//!
//! ```
//! use agentry_core::ToolSpec;
//! use agentry_schema::ArgValidator;
//! use serde_json::json;
//!
//! let spec = ToolSpec::new("book", "Books a table.", json!({
//!     "type": "object",
//!     "properties": {"date": {"type": "string", "format": "date"}},
//!     "required": ["date"],
//! }));
//! let validator = ArgValidator::new(&spec)?;
//! assert!(validator.check(json!({"date": "2025-05-01"})).is_ok());
//! let err = validator.check(json!({"date": "tomorrow"})).unwrap_err();
//! assert_eq!(err.to_string(), "`$.date`: 'tomorrow' is not a date (YYYY-MM-DD)");
//! # Ok::<(), agentry_schema::SchemaError>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod message;
mod registry;

use std::fmt;

use agentry_core::{ToolError, ToolSpec};
use jsonschema::{Draft, Validator};
use serde::Serialize;
use serde_json::Value;

pub use message::Violation;
pub use registry::Validators;

/// A tool's schema could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the parameters schema of tool `{tool}` is not a valid JSON Schema: {reason}")]
pub struct SchemaError {
    /// The tool whose schema is wrong.
    pub tool: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Which coercions a tool allows; none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Coercion {
    /// `"3"` becomes `3` where the schema wants a number or integer.
    pub numeric_strings: bool,
    /// `"a"` becomes `["a"]` where the schema wants an array.
    pub single_to_array: bool,
}

impl Coercion {
    /// No coercion: arguments must be valid as written.
    pub const NONE: Coercion = Coercion {
        numeric_strings: false,
        single_to_array: false,
    };
    /// Every coercion this crate knows.
    pub const ALL: Coercion = Coercion {
        numeric_strings: true,
        single_to_array: true,
    };

    fn is_none(self) -> bool {
        !self.numeric_strings && !self.single_to_array
    }
}

/// One change a coercion made to the arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coerced {
    /// JSON path of the changed value (`$.days`).
    pub path: String,
    /// The value as the model wrote it.
    pub from: Value,
    /// The value the tool receives.
    pub to: Value,
}

impl fmt::Display for Coerced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: coerced {} to {}", self.path, self.from, self.to)
    }
}

/// Arguments that passed, with any coercions applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The arguments to run the tool with.
    pub arguments: Value,
    /// What coercion changed; empty when the arguments were valid as written.
    pub coerced: Vec<Coerced>,
}

/// Arguments that failed their schema: every violation found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invalid {
    /// The tool that was called.
    pub tool: String,
    /// Each rule broken, in the order the validator found them.
    pub violations: Vec<Violation>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    /// The error the model reads: `InvalidArguments` naming every violation.
    pub fn to_tool_error(&self) -> ToolError {
        ToolError::invalid_arguments(format!("invalid arguments for `{}`: {self}", self.tool))
    }
}

/// A tool's compiled argument schema.
pub struct ArgValidator {
    tool: String,
    validator: Validator,
    coercion: Coercion,
}

impl fmt::Debug for ArgValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgValidator")
            .field("tool", &self.tool)
            .field("coercion", &self.coercion)
            .finish()
    }
}

impl ArgValidator {
    /// Compiles the parameters schema of `spec`.
    pub fn new(spec: &ToolSpec) -> Result<Self, SchemaError> {
        Self::from_schema(&spec.name, &spec.parameters)
    }

    /// Compiles `schema` for the tool called `tool`.
    pub fn from_schema(tool: &str, schema: &Value) -> Result<Self, SchemaError> {
        let mut options = jsonschema::options().should_validate_formats(true);
        if schema.get("$schema").is_none() {
            options = options.with_draft(Draft::Draft202012);
        }
        let validator = options.build(schema).map_err(|e| SchemaError {
            tool: tool.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            tool: tool.to_owned(),
            validator,
            coercion: Coercion::NONE,
        })
    }

    /// Allows the given coercions for this tool.
    #[must_use]
    pub fn coercion(mut self, coercion: Coercion) -> Self {
        self.coercion = coercion;
        self
    }

    /// The tool's name.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// Whether `args` are valid as written.
    pub fn is_valid(&self, args: &Value) -> bool {
        self.validator.is_valid(args)
    }

    /// Every violation in `args` (empty when valid).
    pub fn violations(&self, args: &Value) -> Vec<Violation> {
        self.validator
            .iter_errors(args)
            .map(|e| Violation::from_error(&e))
            .collect()
    }

    /// Checks `args`, applying the allowed coercions if they make the arguments valid.
    pub fn check(&self, args: Value) -> Result<Checked, Invalid> {
        if self.validator.is_valid(&args) {
            return Ok(Checked {
                arguments: args,
                coerced: Vec::new(),
            });
        }
        if !self.coercion.is_none() {
            let mut fixed = args.clone();
            let mut coerced = Vec::new();
            // A wrap can expose a numeric string inside the new array; a few rounds suffice.
            for _ in 0..4 {
                let before = coerced.len();
                let errors: Vec<_> = self
                    .validator
                    .iter_errors(&fixed)
                    .map(|e| e.to_owned())
                    .collect();
                for error in &errors {
                    if let Some(change) = message::coerce(self.coercion, error, &mut fixed) {
                        coerced.push(change);
                    }
                }
                if self.validator.is_valid(&fixed) {
                    return Ok(Checked {
                        arguments: fixed,
                        coerced,
                    });
                }
                if coerced.len() == before {
                    break;
                }
            }
        }
        Err(Invalid {
            tool: self.tool.clone(),
            violations: self.violations(&args),
        })
    }
}

#[cfg(test)]
mod tests;
