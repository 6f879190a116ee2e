//! What the budgets of a router have used in their current windows, as the controller puts it
//! in `status.budgetUtilization` (served at `GET /budgets` on the metrics port).

use llmkube_router::money::Usd;
use llmkube_router::spec::{BudgetScope, BudgetUtilization};
use std::time::{Duration, UNIX_EPOCH};

use super::{Budgets, Counts, StoreError, unix_now};

impl Budgets {
    /// One entry per budget and scope with use in the current window (a router or rule
    /// budget with none yet reports zero). Read from the shared store when there is one.
    pub async fn report(&self) -> Result<Vec<BudgetUtilization>, StoreError> {
        let now = unix_now();
        let mut out = Vec::new();
        for def in &self.defs {
            let (prefix, end) = def.window_key(now);
            let start = end - def.window;
            let mut counts = match &self.redis {
                Some(redis) => redis.read(&prefix).await?,
                None => self.memory.read(&prefix, now),
            };
            counts.sort_by(|a, b| a.0.cmp(&b.0));
            if counts.is_empty() && def.scope != BudgetScope::Team {
                counts.push((prefix.clone(), Counts::default()));
            }
            for (key, c) in counts {
                let scope_key = key.get(prefix.len()..).unwrap_or_default();
                let key = match def.scope {
                    BudgetScope::Router => None,
                    BudgetScope::Rule => def.rule_name.clone(),
                    BudgetScope::Team => Some(scope_key.to_owned()),
                };
                let percent = |used: u64, max: u64| {
                    u32::try_from(used.saturating_mul(100) / max.max(1)).unwrap_or(u32::MAX)
                };
                let tokens = def
                    .limits
                    .max_tokens
                    .map_or(0, |m| percent(c.used.tokens, m));
                let usd = def.limits.max_usd.map_or(0, |m| percent(c.used.usd.0, m.0));
                out.push(BudgetUtilization {
                    name: def.name.to_string(),
                    scope: def.scope.as_str().to_owned(),
                    key,
                    window_start: humantime::format_rfc3339_seconds(
                        UNIX_EPOCH + Duration::from_secs(start),
                    )
                    .to_string(),
                    window_seconds: def.window,
                    used_tokens: c.used.tokens,
                    reserved_tokens: c.reserved.tokens,
                    max_tokens: def.limits.max_tokens,
                    used_usd: c.used.usd.to_string(),
                    max_usd: def.limits.max_usd.map(|m: Usd| m.to_string()),
                    percent: tokens.max(usd),
                });
            }
        }
        Ok(out)
    }
}
