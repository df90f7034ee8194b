//! Benchmarks inside agentry. For now: the BFCL AST checker for Python categories ([`bfcl`]).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bfcl;
