//! The routing decision: request facts in, decision out.
//!
//! [`RoutingTable`] is a validated `ModelRouter` spec prepared for evaluation, and
//! [`RoutingTable::decide`] is the reference semantics of routing. It is deliberately plain:
//! the rule compiler emits WASM that must agree with it on every spec and request, and the
//! gateway's dispatcher acts only on the [`Decision`] it returns.

mod decision;
mod evaluate;
mod globs;
mod table;

pub use decision::{Decision, Deny, RequestFacts, Route, Via, fail_closed_message};
pub use evaluate::Mismatch;
pub use globs::Globs;
pub use table::{BackendEntry, RoutingTable, RuleEntry, normalize_glob};
