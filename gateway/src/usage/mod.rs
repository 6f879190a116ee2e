//! Token usage of each answered request: read from what the backend reports (`usage` in a
//! JSON answer or an event of a stream), else estimated from the text that went each way,
//! and priced by the backend's `costPerMillionTokens`.

mod answer;
mod meter;

use llmkube_router::money::Usd;
use serde::Serialize;

pub use meter::{JSON_METER_MAX, UsageMeter};

/// Where a request's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    /// The backend's own `usage`.
    Reported,
    /// Estimated from text lengths (the backend sent none, LLMKube #1852).
    Estimated,
}

impl UsageSource {
    /// The audit/metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
        }
    }
}

impl prometheus_client::encoding::EncodeLabelValue for UsageSource {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Tokens one request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt: u64,
    /// Completion (output) tokens.
    pub completion: u64,
}

impl Usage {
    /// Prompt plus completion.
    pub fn total(self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

/// Tokens in `bytes` of text, estimated at four bytes a token: the usual figure for English
/// with BPE vocabularies; it overcounts code and non-Latin scripts less than it undercounts
/// nothing, which is the safe side for a budget.
pub fn estimate_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

/// A backend's prices, per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prices {
    /// Per million prompt tokens.
    pub prompt: Usd,
    /// Per million completion tokens.
    pub completion: Usd,
}

impl Prices {
    /// What `usage` costs.
    pub fn cost(self, usage: Usage) -> Usd {
        self.prompt
            .for_tokens(usage.prompt)
            .saturating_add(self.completion.for_tokens(usage.completion))
    }

    /// The higher of each price: what a request may cost on whichever of two backends.
    pub fn max(self, other: Prices) -> Prices {
        Prices {
            prompt: self.prompt.max(other.prompt),
            completion: self.completion.max(other.completion),
        }
    }
}
