//! Benchmarks inside agentry: the Berkeley Function-Calling Leaderboard's AST checker
//! ([`bfcl`]), reimplemented from the specification that ships with the BFCL data and checked
//! against its conformance vectors, with data loading, model runs and reports.
//!
//! # Example
//!
//! ```
//! use agentry_eval::bfcl::{check_python, decode_python};
//! use serde_json::json;
//!
//! let docs = vec![json!({"name": "math.factorial", "parameters": {"type": "dict",
//!     "properties": {"number": {"type": "integer"}}, "required": ["number"]}})];
//! let ground_truth = vec![json!({"math.factorial": {"number": [5]}})];
//! let calls = decode_python("[math.factorial(number=5)]")?;
//! assert!(check_python("simple_python", &docs, &calls, &ground_truth, false).valid);
//! let calls = decode_python("[math.factorial(number=5.0)]")?; // a float for an integer
//! assert!(!check_python("simple_python", &docs, &calls, &ground_truth, false).valid);
//! # Ok::<(), agentry_eval::bfcl::DecodeError>(())
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bfcl;
mod stats;
pub mod taubench;

pub use stats::{median, percentile};
