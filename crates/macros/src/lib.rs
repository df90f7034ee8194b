//! `#[agentry::tool]`: a Rust function becomes a typed tool, its JSON Schema and its
//! description written by the function's own signature and doc comment.
//!
//! Users reach the attribute as `#[agentry::tool]` through the facade crate `agentry`, and
//! depend on that crate alone: every path the expansion writes goes through
//! `::agentry::__private` (`Tool`, `CallContext`, `ToolError`, `Value`, `serde`,
//! `schemars`, `serde_json`). Hand-writing a `Tool` stays possible and is what this
//! attribute writes; it exists so that the schema cannot drift from the function, and so a
//! tool is one function instead of a struct, an arguments struct and an impl.
//!
//! # What it makes
//!
//! On `async fn get_weather(city: String, units: Option<String>) -> Result<T, E>`, with
//! the function's visibility:
//!
//! - `struct get_weather;`: a unit struct of the function's name carrying its doc comment,
//!   so a registry takes the value: `tools.add(get_weather)?`.
//! - `get_weather::run(city, units)`: the function as written, to call directly (in unit
//!   tests, say), with its other attributes.
//! - a hidden arguments struct, one field per parameter, deriving `Deserialize` and
//!   `JsonSchema` with `deny_unknown_fields`: the schema offered to the model. A parameter
//!   of type `Option<T>` is not required, and a missing one decodes to `None`.
//! - `impl Tool for get_weather`: `NAME` is the function's name, `description()` its doc
//!   comment, `call` decodes the arguments and awaits `run` (a plain `fn` is called in
//!   place, on the executor's thread, so keep it quick or make it `async`).
//!
//! # Parameters
//!
//! Each parameter is `name: Type` with an owned type that has a JSON Schema and decodes
//! from JSON (`String`, numbers, `bool`, `Vec<T>`, `Option<T>`, your own types deriving
//! `Deserialize` and `JsonSchema`). A parameter whose type is `CallContext` or
//! `&CallContext` (matched by the last segment of its path), anywhere in the list, receives
//! the call's context (id, cancellation token, deadline) instead of an argument. Zero
//! parameters make a tool taking `{}`.
//!
//! A parameter's description, which the model reads, comes from the first of:
//!
//! 1. `#[describe("The city name, e.g. \"Oslo\".")]` on the parameter;
//! 2. a doc comment on the parameter (`/// The city name`). rustc refuses doc comments on
//!    parameters only after macros have run, and this macro removes them, so they compile;
//!    but rustfmt mangles them, so prefer the other two;
//! 3. an entry of a rustdoc-style `# Arguments` section in the function's doc comment:
//!    `` * `city` - The city name `` (a `*`, `-` or `+` bullet; `-`, `--`, `—`, `–` or `:`
//!    after the name; continuation lines indented under it). `# Args`, `# Parameters` and
//!    `# Params` are read too, at any heading level. An entry naming, in backticks, no
//!    parameter of the function is an error, so a renamed parameter cannot silently lose
//!    its description.
//!
//! `#[serde(..)]` and `#[schemars(..)]` written on a parameter move to its field:
//! `#[serde(default)] limit: u32` makes `limit` optional with `0` when missing.
//!
//! # Description
//!
//! The tool's description is its doc comment up to the `# Arguments` heading (what follows
//! that section is not part of it): a paragraph's lines joined with spaces, paragraphs kept
//! apart by a blank line, list items, headings and code blocks on their own lines.
//! `#[doc = include_str!(..)]` cannot be read by a macro; use `description = "..."` then.
//! A tool with no description is an error: the model picks tools by it.
//!
//! # Results
//!
//! - `Result<T, ToolError>` (matched by the last path segment `ToolError`): `Ok(T)` is
//!   serialised, the error is passed on as it is, so its kind is the author's choice.
//! - `Result<T, E>` for any other `E: Display`, including `anyhow::Result<T>` and
//!   `io::Result<T>`: `Err(e)` becomes `ToolError::failed(e.to_string())`, so write errors
//!   that tell the model what to do next.
//! - any other `T: Serialize` (`String`, `Value`, your types): always `Ok`; `()` is `null`.
//!
//! A value that fails to serialise becomes a `ToolFailed` error whose cause is recorded.
//!
//! # Options
//!
//! - `#[agentry::tool(name = "get-weather")]`: the name the model calls it by (1 to 64
//!   ASCII letters, digits, `_`, `-`), instead of the function's.
//! - `#[agentry::tool(idempotent)]` (or `idempotent = true`): running a call twice is
//!   harmless, so the executor may retry it. Tools are not idempotent by default.
//! - `#[agentry::tool(description = "...")]`: the description, instead of the doc comment.
//!
//! # Errors at compile time
//!
//! Each points at what is wrong: an item that is not a function; a `self` receiver; a
//! pattern parameter (`(a, b): (i32, i32)`: name it); generics, `impl Trait`, `_` or a
//! borrowed type (`&str`) in a parameter; `unsafe fn`; an unknown or repeated option; an
//! invalid name; a missing description; a `# Arguments` entry for no parameter; a
//! parameter type without `JsonSchema` or `DeserializeOwned` (the trait error is reported
//! at that parameter's type).
//!
//! # Example
//!
//! ```ignore
//! use agentry::ToolError;
//! use serde_json::{Value, json};
//!
//! /// Current weather for a city: temperature in °C and the sky.
//! ///
//! /// # Arguments
//! ///
//! /// * `city` - The city, e.g. "Oslo".
//! /// * `units` - `"c"` or `"f"`; Celsius when left out.
//! #[agentry::tool(idempotent)]
//! async fn get_weather(city: String, units: Option<String>) -> Result<Value, ToolError> {
//!     if city.trim().is_empty() {
//!         return Err(ToolError::invalid_arguments("`city` is empty; name a city"));
//!     }
//!     Ok(json!({ "city": city, "units": units.unwrap_or_else(|| "c".into()), "temp": 21 }))
//! }
//!
//! /// Reads a note by its key.
//! #[agentry::tool(name = "read-note")]
//! fn read_note(#[describe("The note's key.")] key: String) -> std::io::Result<String> {
//!     std::fs::read_to_string(format!("notes/{key}.txt"))
//! }
//!
//! let mut tools = agentry::tools::ToolSet::new();
//! tools.add(get_weather)?.add(read_note)?;
//! assert_eq!(tools.specs()[0].parameters["required"], json!(["city"]));
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod doc;
mod expand;
mod options;

use proc_macro::TokenStream;

/// Makes a tool of a function: a unit struct of the function's name implementing `Tool`.
///
/// See the crate documentation for the parameters, options, results and errors.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::tool(attr.into(), item.into()).into()
}
