//! Token and spend budgets (`spec.policy.budgets`, the original's fields) and where their use
//! is kept (`spec.policy.budgetStore`, additive).

use serde::{Deserialize, Serialize};

use super::{FailureMode, SecretRef};

/// Most budgets a router declares (each is checked on every request).
pub const MAX_BUDGETS: usize = 32;
/// Default window, in seconds.
pub const DEFAULT_WINDOW_SECONDS: u64 = 3600;
/// Longest window: 31 days.
pub const MAX_WINDOW_SECONDS: u64 = 31 * 24 * 3600;

/// A token or spend budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Budget name.
    pub name: String,
    /// `router` (default), `rule` or `team`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<BudgetScope>,
    /// Rule the budget applies to (scope `rule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Header naming the team (scope `team`, default `x-llmkube-team`) when `spec.auth` is
    /// off; with it, the team is the authenticated principal's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_key: Option<String>,
    /// Window length in seconds (default 3600). Windows are fixed, aligned to the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// Token cap per window (prompt plus completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Spend cap per window (decimal string), priced by the backends' `costPerMillionTokens`.
    #[serde(rename = "maxUSD", default, skip_serializing_if = "Option::is_none")]
    pub max_usd: Option<String>,
    /// Additive: what happens when the shared store cannot be reached. `closed` (default):
    /// 503; `open`: the replica counts in its own memory until the store is back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
}

impl Budget {
    /// The scope, defaulted.
    pub fn scope(&self) -> BudgetScope {
        self.scope.unwrap_or(BudgetScope::Router)
    }

    /// The window, defaulted.
    pub fn window_seconds(&self) -> u64 {
        self.window_seconds.unwrap_or(DEFAULT_WINDOW_SECONDS)
    }
}

/// Budget scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    /// The whole router.
    Router,
    /// One rule.
    Rule,
    /// Each team separately; requests with no team share one allowance.
    Team,
}

impl BudgetScope {
    /// The CRD spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Router => "router",
            BudgetScope::Rule => "rule",
            BudgetScope::Team => "team",
        }
    }
}

/// Where budget use is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetStoreSpec {
    /// A Redis server shared by every replica of every gateway that names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStoreSpec>,
}

/// A Redis (or Valkey) server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisStoreSpec {
    /// `host:port`, e.g. `redis.llmkube-system.svc:6379`.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = 253)))]
    pub address: String,
    /// Database number (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(max = 15)))]
    pub database: Option<u8>,
    /// Secret with `REDIS_PASSWORD` and, for an ACL user, `REDIS_USERNAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Prefix of every key the gateway writes (default `llmkube:budget`); the router's
    /// namespace and name follow it, so routers sharing a server never share a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(length(max = 64)))]
    pub key_prefix: Option<String>,
    /// Longest wait for one store operation, in milliseconds (default 250); past it the
    /// store counts as unreachable and `failureMode` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(min = 10, max = 10000)))]
    pub timeout_ms: Option<u32>,
}

/// Default key prefix in Redis.
pub const DEFAULT_KEY_PREFIX: &str = "llmkube:budget";
/// Default store operation timeout, in milliseconds.
pub const DEFAULT_STORE_TIMEOUT_MS: u32 = 250;
