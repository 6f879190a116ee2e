//! What the controller reports of a router.

use serde::{Deserialize, Serialize};

use super::Tier;
use crate::condition::Phase;

/// Observed state of a `ModelRouter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ModelRouterStatus {
    /// `Pending`, `Provisioning`, `Ready`, `Degraded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// URL of the router's chat completions endpoint inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Number of rules in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_rules: Option<i32>,
    /// Each backend with its resolved address and health.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendStatus>,
    /// Use of each budget in its current window, as a gateway replica last reported it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_utilization: Vec<BudgetUtilization>,
    /// When the status was last written (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// `Validated`, `BackendsReady`, `Available`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<crate::condition::Condition>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A backend as the controller sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BackendStatus {
    /// Backend name.
    pub name: String,
    /// Effective tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Resolved base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Whether it answered its last probe.
    #[serde(default)]
    pub healthy: bool,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it was last probed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
}

/// One budget's use in its current window (one entry per team for a team budget).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BudgetUtilization {
    /// Budget name.
    pub name: String,
    /// `router`, `rule` or `team`.
    pub scope: String,
    /// The team (scope `team`; `-` for requests with none) or the rule (scope `rule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Start of the window (RFC 3339).
    pub window_start: String,
    /// Window length, in seconds.
    pub window_seconds: u64,
    /// Tokens settled in the window.
    pub used_tokens: u64,
    /// Tokens reserved by requests still in flight.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reserved_tokens: u64,
    /// The token cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Dollars settled in the window (decimal string).
    #[serde(rename = "usedUSD")]
    pub used_usd: String,
    /// The spend cap (decimal string).
    #[serde(rename = "maxUSD", default, skip_serializing_if = "Option::is_none")]
    pub max_usd: Option<String>,
    /// The larger of the token and spend use, in percent of its cap (0..100, more when
    /// overshot by requests in flight).
    pub percent: u32,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
