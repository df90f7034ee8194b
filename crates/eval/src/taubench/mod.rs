//! τ-bench-style stateful evaluation: a domain's database and tools ([`Domain`],
//! [`DomainData`], [`Env`]), ground-truth replay checked against the reference
//! ([`replay_task`]), episodes of an agent talking to a simulated user through the ordinary
//! agentry engine ([`episode`]), the reward (final database and required outputs), and
//! pass^k over repeated trials ([`pass_hat_k`]).
//!
//! Implemented from `../shared/taubench/DESIGN.md`; the data is read from a directory given
//! at run time, never bundled.

mod calc;
mod db;
mod domain;
pub mod episode;
pub mod pyjson;
mod replay;
pub mod report;
mod retail;

pub use db::{Db, Table};
pub use domain::{Action, Domain, DomainData, Env, Observation, Split, Task, domain};
pub use replay::{ReplayFile, ReplayObservation, Replayed, first_difference, replay_task};
pub use report::{Report, TaskTrials, pass_hat_k};
pub use retail::Retail;

/// What can go wrong before an episode starts.
#[derive(Debug, thiserror::Error)]
pub enum TauError {
    /// The data directory or one of its files is missing or malformed.
    #[error("{0}")]
    Data(String),
    /// A bad name or option.
    #[error("{0}")]
    Usage(String),
}
