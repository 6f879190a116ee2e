//! The rule compiler: a `ModelRouter` spec becomes a WebAssembly policy module that implements
//! the whole routing decision of [`RoutingTable::decide`].
//!
//! The module speaks the policy ABI (`llmkube-policy-sdk`): it reads the request view (model,
//! classifications, headers) and returns an encoded decision. Matching is compiled code — rule
//! order, ANDed conditions, classification membership, header equality, task complexity,
//! model globs — calling a few helpers emitted once. Every possible answer (each rule's route,
//! its local-only variant for sensitive requests, fail-closed and no-route denials, each
//! backend-name and default route) is encoded ahead of time into the data segment, so an
//! evaluation only selects one. `requiredCapabilities` is resolved at compile time.
//!
//! Output is deterministic: the same spec gives the same bytes, so the module's sha256 names the
//! rule set.

mod answers;
mod assemble;
mod data;
mod decode;
mod entry;
mod evaluate;
mod funcs;
mod helpers;

use sha2::{Digest, Sha256};

use crate::defaults::TASK_COMPLEXITY_HEADER;
use crate::routing::RoutingTable;
use crate::spec::ModelRouterSpec;
use crate::validate::ValidationErrors;

pub use decode::{decode_decision, resolve_backends, route_from, strategy_from_abi};

/// Annotation key naming how a route was chosen when no rule chose it.
pub const VIA_ANNOTATION: &str = "via";
/// Annotation key naming the fail-closed rule of a denial.
pub const RULE_ANNOTATION: &str = "rule";
/// Annotation key set (to `true`) when the request was sensitive.
pub const SENSITIVE_ANNOTATION: &str = "sensitive";
/// Reject code of a request nothing routes.
pub const NO_ROUTE_CODE: &str = "no_route";
/// Reject code of a fail-closed denial.
pub const FAIL_CLOSED_CODE: &str = "fail_closed";
/// Name of the compiled module in its metadata.
pub const MODULE_NAME: &str = "llmkube-rules";
/// A compiled rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRules {
    /// The module.
    pub wasm: Vec<u8>,
    /// Lowercase hex sha256 of `wasm`.
    pub sha256: String,
    /// Header names the module reads (lowercase): give them in the request view.
    pub headers: Vec<String>,
}

/// Validates and compiles a spec.
pub fn compile(spec: &ModelRouterSpec) -> Result<CompiledRules, ValidationErrors> {
    Ok(compile_table(&RoutingTable::new(spec)?))
}

/// Header names a rule module must see: those of `match.headers` plus the task-complexity header.
pub fn view_headers(table: &RoutingTable) -> Vec<String> {
    let mut names = table.header_names.clone();
    names.push(TASK_COMPLEXITY_HEADER.to_owned());
    names.sort();
    names.dedup();
    names
}

/// Compiles a prepared table.
pub fn compile_table(table: &RoutingTable) -> CompiledRules {
    let headers = view_headers(table);
    let wasm = assemble::module(table, &headers);
    let sha256 = hex(&Sha256::digest(&wasm));
    CompiledRules {
        wasm,
        sha256,
        headers,
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
