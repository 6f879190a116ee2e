//! WebAssembly policies: the engine, loaded modules, and the per-request pipeline.
//!
//! Every routing decision runs through sandboxed WebAssembly: the ModelRouter rules compiled by
//! `llmkube-operator`, and custom policies written with `llmkube-policy-sdk` (the built-in PII
//! detector among them). Any failure — a trap, the deadline, memory exhaustion, an output that
//! does not decode or does not make sense, no instance available — denies the request unless
//! the policy is configured `failureMode: open`. The compiled rules always fail closed.

mod answer;
pub mod engine;
pub(crate) mod evaluation;
pub mod harness;
pub mod module;
pub(crate) mod pipeline;
pub mod scaffold;
pub mod windows;

pub use engine::{EngineSettings, PolicyEngine};
pub use module::{LoadError, PolicyModule};

/// How an evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The module trapped (including running out of memory).
    #[error("trapped: {0}")]
    Trap(String),
    /// The evaluation ran past its deadline.
    #[error("exceeded its evaluation deadline")]
    Deadline,
    /// Every instance slot was taken.
    #[error("no instance available (pool exhausted)")]
    Exhausted,
    /// The output broke the ABI or made no sense.
    #[error("returned a malformed answer: {0}")]
    Malformed(String),
}

impl PolicyError {
    /// Metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Trap(_) => "trap",
            PolicyError::Deadline => "deadline",
            PolicyError::Exhausted => "exhausted",
            PolicyError::Malformed(_) => "malformed",
        }
    }
}
