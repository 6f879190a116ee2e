//! Token and spend budgets (`spec.policy.budgets`), enforced per request.
//!
//! Windows are fixed and aligned to the Unix epoch, so every replica agrees on them without
//! talking. Before dispatch a request reserves what it may use (its prompt's estimated
//! tokens plus `max_tokens`, priced at the dearest backend of its route) on every budget that
//! applies; it is refused (429, `Retry-After` = seconds to the window's end) when one of them
//! is already spent counting the reservations in flight. When it ends the reservation is
//! replaced by the real usage. Check and reservation are one atomic step (a lock in memory, a
//! Lua script in Redis), so use plus reservations passes a cap only through the request
//! admitted just below it: as long as requests use no more than they reserve, a budget is
//! overshot by at most one reservation, however many requests run at once on however many
//! replicas.
//!
//! Counts live in this process ([`MemoryStore`]) or, shared by every replica, in Redis
//! ([`RedisStore`]); a budget's `failureMode` decides what happens when Redis cannot answer.

mod memory;
mod redis_store;
mod report;
mod stores;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};
use llmkube_router::money::Usd;
use llmkube_router::spec::{BudgetScope, FailureMode, ModelRouterSpec, TEAM_HEADER};

pub use memory::MemoryStore;
pub use redis_store::{RedisStore, StoreError};
pub use stores::BudgetStores;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::{BudgetLabels, Label, Metrics};

/// Completion tokens reserved for a request that sets no `max_tokens`: the in-flight bound
/// of such requests. The settled count is always the real one.
pub const DEFAULT_COMPLETION_RESERVE: u64 = 1024;

/// Tokens and dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charge {
    /// Tokens (prompt plus completion).
    pub tokens: u64,
    /// Dollars.
    pub usd: Usd,
}

impl Charge {
    fn plus(self, o: Charge) -> Charge {
        Charge {
            tokens: self.tokens.saturating_add(o.tokens),
            usd: Usd(self.usd.0.saturating_add(o.usd.0)),
        }
    }

    fn minus(self, o: Charge) -> Charge {
        Charge {
            tokens: self.tokens.saturating_sub(o.tokens),
            usd: Usd(self.usd.0.saturating_sub(o.usd.0)),
        }
    }
}

/// One scope's counts in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Settled use.
    pub used: Charge,
    /// Held by requests in flight.
    pub reserved: Charge,
}

/// A budget's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Token cap.
    pub max_tokens: Option<u64>,
    /// Spend cap.
    pub max_usd: Option<Usd>,
}

impl Limits {
    /// Whether a new request must wait: use plus reservations reached a cap.
    fn spent(&self, c: &Counts) -> bool {
        let all = c.used.plus(c.reserved);
        self.max_tokens.is_some_and(|m| all.tokens >= m)
            || self.max_usd.is_some_and(|m| all.usd >= m)
    }
}

/// One budget's count a request touches: its key (budget, window, scope) and caps.
#[derive(Debug, Clone)]
pub struct Slot {
    /// `<keyPrefix>:<namespace>/<router>:<budget>:<window start>:<scope key>`.
    pub key: String,
    /// Where the scope key starts in `key`.
    scope_start: usize,
    /// The caps.
    pub limits: Limits,
    /// End of the window (Unix seconds).
    pub expires: u64,
    /// Index of the budget.
    budget: usize,
}

impl Slot {
    /// The key scopes share when the memory store is full.
    fn overflow_key(&self) -> String {
        format!("{}~overflow", &self.key[..self.scope_start])
    }
}

/// One declared budget.
struct Def {
    name: Label,
    /// `<keyPrefix>:<namespace>/<router>:<budget>:`, what every key of this budget starts with.
    key_head: String,
    scope: BudgetScope,
    /// The rule's index (scope `rule`).
    rule: Option<usize>,
    /// The rule's name (scope `rule`).
    rule_name: Option<String>,
    /// Where the team is read when `spec.auth` is off (scope `team`).
    team_header: HeaderName,
    window: u64,
    limits: Limits,
    failure_mode: FailureMode,
}

impl Def {
    /// The key prefix of this budget's window that holds `now` (each scope's key adds its
    /// team or nothing), and when that window ends (Unix seconds).
    fn window_key(&self, now: u64) -> (String, u64) {
        let start = now - now % self.window;
        (format!("{}{start}:", self.key_head), start + self.window)
    }
}

/// Why a request may not start.
#[derive(Debug)]
pub enum Refused {
    /// A budget is spent until its window ends.
    Spent {
        /// The budget.
        budget: Label,
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// The shared store could not answer and the budget fails closed.
    Unavailable {
        /// The budget.
        budget: Label,
        /// What went wrong.
        error: String,
    },
}

/// The budgets of one router version, with the stores that outlive versions.
pub struct Budgets {
    defs: Vec<Def>,
    memory: Arc<MemoryStore>,
    redis: Option<Arc<RedisStore>>,
    router: Label,
}

/// What a request is, for budgets.
pub struct Subject<'a> {
    /// Index of the rule that matched.
    pub rule: Option<usize>,
    /// The authenticated team (`spec.auth` on).
    pub team: Option<&'a str>,
    /// Whether `spec.auth` is on (else the team comes from a header).
    pub authenticated: bool,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

impl Budgets {
    /// The budgets of `spec` (`None` when it declares none). `rule_index` maps rule names.
    pub fn new(
        spec: &ModelRouterSpec,
        namespace: &str,
        router: &Label,
        memory: &Arc<MemoryStore>,
        redis: Option<Arc<RedisStore>>,
    ) -> Option<Budgets> {
        let policy = spec.policy.as_ref()?;
        if policy.budgets.is_empty() {
            return None;
        }
        let key_prefix = redis
            .as_ref()
            .map_or(llmkube_router::spec::DEFAULT_KEY_PREFIX, |r| r.key_prefix());
        let defs = policy
            .budgets
            .iter()
            .map(|b| Def {
                name: Arc::new(b.name.clone()),
                key_head: format!("{key_prefix}:{namespace}/{router}:{}:", b.name),
                scope: b.scope(),
                rule: b
                    .rule_name
                    .as_ref()
                    .and_then(|r| spec.rules.iter().position(|x| &x.name == r)),
                rule_name: b.rule_name.clone(),
                team_header: b
                    .header_key
                    .as_deref()
                    .and_then(|h| HeaderName::try_from(h.to_ascii_lowercase()).ok())
                    .unwrap_or(HeaderName::from_static(TEAM_HEADER)),
                window: b.window_seconds().max(1),
                limits: Limits {
                    max_tokens: b.max_tokens,
                    max_usd: b.max_usd.as_deref().and_then(|u| Usd::parse(u).ok()),
                },
                failure_mode: b.failure_mode.unwrap_or_default(),
            })
            .collect();
        Some(Budgets {
            defs,
            memory: Arc::clone(memory),
            redis,
            router: Arc::clone(router),
        })
    }

    /// Reserves `charge` on every budget that applies to `who`, or says why not.
    pub async fn admit(
        &self,
        who: &Subject<'_>,
        charge: Charge,
        metrics: &Metrics,
    ) -> Result<Option<Admission>, Refused> {
        let now = unix_now();
        let slots = self.slots(who, now);
        if slots.is_empty() {
            return Ok(None);
        }
        let mut local = self.redis.is_none();
        if let Some(redis) = &self.redis {
            match redis.reserve(&slots, charge).await {
                Ok(Ok(())) => {}
                Ok(Err(i)) => return Err(self.spent(&slots[i], now, metrics)),
                Err(e) => {
                    // Every budget counts the failure; a closed one refuses the request.
                    let mut closed = None;
                    for slot in &slots {
                        let def = &self.defs[slot.budget];
                        self.count(&metrics.budget_store_errors, def, def.failure_mode.as_str());
                        if def.failure_mode == FailureMode::Closed && closed.is_none() {
                            closed = Some(Arc::clone(&def.name));
                        }
                    }
                    if let Some(budget) = closed {
                        return Err(Refused::Unavailable {
                            budget,
                            error: e.to_string(),
                        });
                    }
                    local = true;
                }
            }
        }
        if local && let Err(i) = self.memory.reserve(&slots, charge, now) {
            return Err(self.spent(&slots[i], now, metrics));
        }
        Ok(Some(Admission {
            memory: Arc::clone(&self.memory),
            redis: if local { None } else { self.redis.clone() },
            slots,
            reserved: charge,
            settled: false,
        }))
    }

    fn spent(&self, slot: &Slot, now: u64, metrics: &Metrics) -> Refused {
        let def = &self.defs[slot.budget];
        self.count(&metrics.budget_refused, def, "");
        Refused::Spent {
            budget: Arc::clone(&def.name),
            retry_after: slot.expires.saturating_sub(now).max(1),
        }
    }

    fn count(&self, family: &Family<BudgetLabels, Counter>, def: &Def, failure_mode: &'static str) {
        family
            .get_or_create(&BudgetLabels {
                router: Arc::clone(&self.router),
                budget: Arc::clone(&def.name),
                failure_mode,
            })
            .inc();
    }

    /// The slots of the budgets that apply to `who` at `now`.
    fn slots(&self, who: &Subject<'_>, now: u64) -> Vec<Slot> {
        let mut slots = Vec::new();
        for (i, def) in self.defs.iter().enumerate() {
            let scope_key = match def.scope {
                BudgetScope::Router => "",
                BudgetScope::Rule if who.rule.is_some() && who.rule == def.rule => "",
                BudgetScope::Rule => continue,
                BudgetScope::Team => team_key(def, who),
            };
            let (key, expires) = def.window_key(now);
            let scope_start = key.len();
            slots.push(Slot {
                key: key + scope_key,
                scope_start,
                limits: def.limits,
                expires,
                budget: i,
            });
        }
        slots
    }
}

/// The team a team-scoped budget counts a request under: the authenticated team, else the
/// header's value (bounded), else `-` for requests that name none.
fn team_key<'a>(def: &Def, who: &Subject<'a>) -> &'a str {
    let named = if who.authenticated {
        who.team
    } else {
        who.headers
            .get(&def.team_header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= llmkube_router::spec::MAX_NAME_LEN)
    };
    named.unwrap_or("-")
}

/// A request's reservation; settled with its real use when it ends (released unused when it
/// is dropped unsettled).
pub struct Admission {
    memory: Arc<MemoryStore>,
    /// Where the reservation was made (`None`: in memory).
    redis: Option<Arc<RedisStore>>,
    slots: Vec<Slot>,
    reserved: Charge,
    settled: bool,
}

impl Admission {
    /// Replaces the reservation by `used`.
    pub fn settle(mut self, used: Charge) {
        self.settle_with(used);
    }

    fn settle_with(&mut self, used: Charge) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let slots = std::mem::take(&mut self.slots);
        match self.redis.take() {
            None => self.memory.settle(&slots, self.reserved, used),
            Some(redis) => {
                let reserved = self.reserved;
                // Off the request: the client's answer does not wait for the store.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        if let Err(e) = redis.settle(&slots, reserved, used).await {
                            tracing::warn!(
                                "budget use could not be written to Redis ({e}); the reservation lapses with its window"
                            );
                        }
                    });
                }
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.settle_with(Charge::default());
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
