//! What a request used and what it cost, and its budget reservation settled with that.

use llmkube_router::money::Usd;

use crate::budget::{Admission, Charge};
use crate::usage::{Prices, Usage, UsageMeter, UsageSource, estimate_tokens};

/// A request's accounting, filled in as it is served.
#[derive(Default)]
pub struct Accounting {
    /// Reads the answer's usage as it passes.
    pub meter: Option<UsageMeter>,
    /// Bytes of the request's string values (the prompt's size).
    pub prompt_bytes: u64,
    /// The gateway adds `stream_options.include_usage` toward backends that take it.
    pub add_stream_usage: bool,
    /// The request's budget reservation.
    pub admission: Option<Admission>,
}

/// The settled use of an answered request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Tokens.
    pub usage: Usage,
    /// Reported or estimated.
    pub source: UsageSource,
    /// At the answering backend's prices.
    pub cost: Usd,
}

impl Accounting {
    /// Ends the accounting: for a request a backend answered (`answered`), its usage as
    /// reported, else estimated from the text each way; the budget reservation is replaced by
    /// it (released when nothing was answered).
    pub fn settle(&mut self, answered: bool, prices: Prices) -> Option<Settled> {
        let settled = answered.then(|| {
            let reading = self.meter.as_ref().map(UsageMeter::reading);
            let (usage, source) = match reading.and_then(|r| r.usage) {
                Some(usage) => (usage, UsageSource::Reported),
                None => (
                    Usage {
                        prompt: estimate_tokens(self.prompt_bytes),
                        completion: estimate_tokens(reading.map_or(0, |r| r.text_bytes)),
                    },
                    UsageSource::Estimated,
                ),
            };
            Settled {
                usage,
                source,
                cost: prices.cost(usage),
            }
        });
        if let Some(admission) = self.admission.take() {
            admission.settle(settled.map_or(Charge::default(), |s| Charge {
                tokens: s.usage.total(),
                usd: s.cost,
            }));
        }
        settled
    }
}
