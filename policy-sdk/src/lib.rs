//! Write LLMKube routing policies in plain Rust and run them in the gateway as WebAssembly.
//!
//! A policy sees a compact view of each request (model, path, classifications, the headers it
//! asked for, optionally the prompt text) and answers with a [`Decision`]: continue, route to
//! backends, or reject — and may add classifications (never remove them), set or remove
//! upstream headers, and annotate the audit line.
//!
//! ```ignore
//! use llmkube_policy_sdk::{export_policy, Decision, Policy, Request};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { tenants: Vec<String> }
//!
//! struct TenantAllowlist { tenants: Vec<String> }
//!
//! impl Policy for TenantAllowlist {
//!     type Config = Config;
//!     fn configure(c: Config) -> Result<Self, String> { Ok(Self { tenants: c.tenants }) }
//!     fn evaluate(&self, req: &Request<'_>) -> Decision {
//!         match req.header("x-tenant") {
//!             Some(t) if self.tenants.iter().any(|a| a == t) => Decision::proceed(),
//!             _ => Decision::reject(403, "tenant not allowed"),
//!         }
//!     }
//! }
//!
//! export_policy!(TenantAllowlist { name: "tenant-allowlist", headers: ["x-tenant"] });
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` (crate type `cdylib`),
//! test natively with [`testing::run_fixtures`], and test the built module under the
//! gateway's production limits with `llmkube-gateway policy-test`.
//!
//! The [`abi`], [`view`] and [`output`] modules are the contract itself; the gateway uses the
//! same code to encode requests and decode decisions.

pub mod abi;
pub mod config;
pub mod fixtures;
pub mod guest;
pub mod meta_spec;
pub mod metadata;
pub mod output;
pub mod policy;
pub mod testing;
pub mod view;
pub mod wire;

pub use output::{Action, Decision, Strategy};
pub use policy::Policy;
pub use view::{Request, RequestView};
