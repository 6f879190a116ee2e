//! Example policy: a tenant allowlist.
//!
//! Every request must name its tenant in a header (`x-tenant` by default). Unknown tenants are
//! refused with 403, and each tenant may only use the models listed for it (`*` allows any).
//! Known tenants are annotated in the audit line.

use std::collections::BTreeMap;

use llmkube_policy_sdk::{Decision, Policy, Request, export_policy};
use serde::Deserialize;

/// Configuration (`spec.policies[].config`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Header naming the tenant (lowercase); must also be listed in the metadata's `needs`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Tenant -> models it may use (`*` for any).
    pub tenants: BTreeMap<String, Vec<String>>,
}

fn default_header() -> String {
    "x-tenant".to_owned()
}

/// The policy.
pub struct TenantAllowlist {
    header: String,
    tenants: BTreeMap<String, Vec<String>>,
}

impl Policy for TenantAllowlist {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        if config.header != "x-tenant" {
            return Err("this build reads only the x-tenant header".into());
        }
        if config.tenants.is_empty() {
            return Err("at least one tenant is required".into());
        }
        Ok(TenantAllowlist {
            header: config.header,
            tenants: config.tenants,
        })
    }

    fn evaluate(&self, request: &Request<'_>) -> Decision {
        let Some(tenant) = request.header(&self.header) else {
            return Decision::reject(401, format!("the {} header is required", self.header))
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

export_policy!(
    TenantAllowlist,
    r#"{
    "name": "tenant-allowlist",
    "version": "0.1.0",
    "description": "Refuses unknown tenants and models a tenant may not use",
    "needs": { "headers": ["x-tenant"] },
    "configSchema": {
        "type": "object",
        "required": ["tenants"],
        "properties": {
            "header": { "type": "string", "default": "x-tenant" },
            "tenants": { "type": "object", "additionalProperties": { "type": "array", "items": { "type": "string" } } }
        }
    }
}"#
);
