//! Status phases, and conditions serialised like `metav1.Condition`.

use serde::{Deserialize, Serialize};

/// Where an object stands (`status.phase`), spelled on the wire as LLMKube spells it. Each
/// kind uses a subset: a Model `Pending|Downloading|Copying|Ready|Failed`, an
/// InferenceService `Pending|Creating|Progressing|Ready|WaitingForGPU|Failed`, a ModelRouter
/// `Pending|Provisioning|Ready|Degraded|Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
// A string in the schema, not an enum, so a status written by another version stays valid.
#[cfg_attr(feature = "crd", schemars(with = "String"))]
pub enum Phase {
    /// Waiting for something else (a PVC, a Model) before work can start.
    Pending,
    /// A Model's file is being downloaded.
    Downloading,
    /// A Model's file is being copied.
    Copying,
    /// The Deployment is being created.
    Creating,
    /// The router's gateway is being created.
    Provisioning,
    /// Replicas are rolling out.
    Progressing,
    /// No node has the requested GPUs free.
    #[serde(rename = "WaitingForGPU")]
    WaitingForGpu,
    /// Serving, but some backends are not ready.
    Degraded,
    /// Serving.
    Ready,
    /// Cannot make progress until the spec changes.
    Failed,
    /// A phase this version does not know (written by another version); read, never written.
    #[serde(other)]
    Unknown,
}

impl Phase {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Downloading => "Downloading",
            Phase::Copying => "Copying",
            Phase::Creating => "Creating",
            Phase::Provisioning => "Provisioning",
            Phase::Progressing => "Progressing",
            Phase::WaitingForGpu => "WaitingForGPU",
            Phase::Degraded => "Degraded",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
            Phase::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One aspect of an object's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`, `Validated`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason (CamelCase).
    #[serde(default)]
    pub reason: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Keeps `lastTransitionTime` of every condition whose status did not change since `old`, and
/// stamps `now` on the others, so that an unchanged status serialises identically (and is not
/// written again).
pub fn settle_transitions(old: &[Condition], new: &mut [Condition], now: &str) {
    for c in new {
        c.last_transition_time = match old.iter().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => {
                o.last_transition_time.clone()
            }
            _ => Some(now.to_owned()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::Phase;

    #[test]
    fn phases_keep_their_wire_spelling_and_unknown_ones_still_read() {
        for p in [Phase::WaitingForGpu, Phase::Ready, Phase::Provisioning] {
            let wire = serde_json::to_string(&p).unwrap();
            assert_eq!(wire, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<Phase>(&wire).unwrap(), p);
        }
        assert_eq!(
            serde_json::from_str::<Phase>("\"Cached\"").unwrap(),
            Phase::Unknown
        );
    }
}
