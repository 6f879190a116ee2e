//! How a router is deployed and exposed: its Service, the gateway pods and their request
//! handling settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Service exposing the router.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct EndpointSpec {
    /// Service type (`ClusterIP` by default).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Service port (default 8080).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Gateway deployment and request-handling settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// Gateway replicas (1..10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Deployment revision history limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Gateway image override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Container resources (`limits`/`requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Pull secrets for the gateway image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// How long a failed backend is avoided (default 15s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_duration: Option<String>,
    /// Default time to response headers per attempt (default 120s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_timeout: Option<String>,
    /// Node selector for gateway pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Additive: longest gap between two streamed chunks before the stream is cut (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<String>,
    /// Additive: cap on a response's total streaming time (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<String>,
    /// Additive: largest request body accepted, in bytes (default 32 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<u64>,
    /// Additive: connection errors and 5xx answers in a row that quarantine a backend
    /// (default 5; response-header timeouts are not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(min = 1, max = 1000)))]
    pub consecutive_failures: Option<u32>,
}

/// Compute resources of a container; quantities are kept as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct ResourceRequirements {
    /// Upper bounds, e.g. `cpu: "1"`, `memory: 256Mi`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "crd", schemars(schema_with = "crate::schema::quantity_map"))]
    pub limits: BTreeMap<String, serde_json::Value>,
    /// Requests, e.g. `cpu: 100m`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "crd", schemars(schema_with = "crate::schema::quantity_map"))]
    pub requests: BTreeMap<String, serde_json::Value>,
}

/// Reference to an object by name in the same namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct LocalObjectReference {
    /// Object name.
    pub name: String,
}
