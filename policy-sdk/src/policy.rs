//! The trait policy authors implement.

use serde::de::DeserializeOwned;

use crate::output::Decision;
use crate::view::Request;

/// A routing policy.
///
/// ```
/// use llmkube_policy_sdk::{Decision, Policy, Request};
///
/// /// Rejects requests without an `x-tenant` header.
/// struct RequireTenant;
///
/// impl Policy for RequireTenant {
///     type Config = serde_json::Value;
///
///     fn configure(_config: Self::Config) -> Result<Self, String> {
///         Ok(RequireTenant)
///     }
///
///     fn evaluate(&self, request: &Request<'_>) -> Decision {
///         match request.header("x-tenant") {
///             Some(_) => Decision::proceed(),
///             None => Decision::reject(403, "x-tenant is required"),
///         }
///     }
/// }
/// ```
pub trait Policy: Sized + 'static {
    /// The policy's configuration (`spec.policies[].config`), deserialised from JSON.
    type Config: DeserializeOwned;

    /// Builds the policy from its configuration, or refuses it with a message (the policy is
    /// then never activated).
    fn configure(config: Self::Config) -> Result<Self, String>;

    /// Decides about one request.
    fn evaluate(&self, request: &Request<'_>) -> Decision;
}
