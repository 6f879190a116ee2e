//! Example policy: a tenant allowlist.
//!
//! Every request must name its tenant in the `x-tenant` header (the header a policy reads is
//! declared in its metadata, so it is fixed at build time, not configured). Unknown tenants are
//! refused with 403, and each tenant may only use the models listed for it (`*` allows any).
//! Known tenants are annotated in the audit line.

use std::collections::BTreeMap;

use llmkube_policy_sdk::{Decision, Policy, Request, export_policy};
use serde::Deserialize;

/// Configuration (`spec.policies[].config`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tenant -> models it may use (`*` for any).
    pub tenants: BTreeMap<String, Vec<String>>,
}

/// The header naming the tenant, as the metadata's `needs` declares it.
const TENANT_HEADER: &str = "x-tenant";

/// The policy.
pub struct TenantAllowlist {
    tenants: BTreeMap<String, Vec<String>>,
}

impl Policy for TenantAllowlist {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        if config.tenants.is_empty() {
            return Err("at least one tenant is required".into());
        }
        Ok(TenantAllowlist {
            tenants: config.tenants,
        })
    }

    fn evaluate(&self, request: &Request<'_>) -> Decision {
        let Some(tenant) = request.header(TENANT_HEADER) else {
            return Decision::reject(401, format!("the {TENANT_HEADER} header is required"))
                .with_code("tenant_missing");
        };
        let Some(models) = self.tenants.get(tenant) else {
            return Decision::reject(403, format!("tenant {tenant:?} is not allowed"))
                .with_code("tenant_unknown");
        };
        if !models.iter().any(|m| m == "*" || m == request.model()) {
            return Decision::reject(
                403,
                format!("tenant {tenant:?} may not use model {:?}", request.model()),
            )
            .with_code("model_not_allowed");
        }
        Decision::proceed().annotate("tenant", tenant)
    }
}

export_policy!(TenantAllowlist {
    name: "tenant-allowlist",
    description: "Refuses unknown tenants and models a tenant may not use",
    headers: [TENANT_HEADER],
    config_schema: r#"{
        "type": "object",
        "required": ["tenants"],
        "additionalProperties": false,
        "properties": {
            "tenants": { "type": "object", "additionalProperties": { "type": "array", "items": { "type": "string" } } }
        }
    }"#,
});
