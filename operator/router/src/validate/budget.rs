//! Checks of `spec.policy.budgets`, `spec.policy.budgetStore` and the prices budgets count
//! with: every budget caps something, can be told apart, and is shared when it must be.

use std::collections::HashMap;

use super::Collector;
use crate::money::Usd;
use crate::names::{is_dns_label, is_dns_subdomain, is_header_name};
use crate::spec::{BudgetScope, ModelRouterSpec};
use crate::spec::{MAX_BUDGETS, MAX_WINDOW_SECONDS};

pub(super) fn check_budgets(spec: &ModelRouterSpec, c: &mut Collector) {
    for (i, b) in spec.backends.iter().enumerate() {
        let Some(cost) = &b.cost_per_million_tokens else {
            continue;
        };
        for (field, value) in [
            ("promptUSD", &cost.prompt_usd),
            ("completionUSD", &cost.completion_usd),
        ] {
            if let Some(Err(e)) = value.as_deref().map(Usd::parse) {
                c.push(
                    format!("spec.backends[{i}].costPerMillionTokens.{field}"),
                    e.to_string(),
                );
            }
        }
    }
    let Some(policy) = &spec.policy else { return };
    if policy.budgets.len() > MAX_BUDGETS {
        c.push(
            "spec.policy.budgets",
            format!("at most {MAX_BUDGETS} budgets"),
        );
    }
    let mut names = HashMap::new();
    for (i, budget) in policy.budgets.iter().enumerate() {
        let path = format!("spec.policy.budgets[{i}]");
        if !is_dns_label(&budget.name) {
            c.push(
                format!("{path}.name"),
                format!("{:?} must match ^[a-z0-9][a-z0-9-]{{0,62}}$", budget.name),
            );
        } else if let Some(first) = names.insert(budget.name.as_str(), i) {
            c.push(
                format!("{path}.name"),
                format!(
                    "duplicate budget {:?} (also spec.policy.budgets[{first}])",
                    budget.name
                ),
            );
        }
        match (budget.scope(), &budget.rule_name) {
            (BudgetScope::Rule, None) => {
                c.push(format!("{path}.ruleName"), "is required when scope is rule")
            }
            (BudgetScope::Rule, Some(r)) if !spec.rules.iter().any(|rule| &rule.name == r) => {
                c.push(format!("{path}.ruleName"), format!("unknown rule {r:?}"))
            }
            (BudgetScope::Router | BudgetScope::Team, Some(_)) => c.push(
                format!("{path}.ruleName"),
                "applies only to scope rule (remove it, or set scope: rule)",
            ),
            _ => {}
        }
        if let Some(header) = &budget.header_key {
            if budget.scope() != BudgetScope::Team {
                c.push(format!("{path}.headerKey"), "applies only to scope team");
            } else if spec.auth.is_some() {
                c.push(
                    format!("{path}.headerKey"),
                    "with spec.auth the team is the authenticated principal's; remove headerKey",
                );
            } else if !is_header_name(header) {
                c.push(
                    format!("{path}.headerKey"),
                    format!("{header:?} is not a header name"),
                );
            }
        }
        let window = budget.window_seconds();
        if window == 0 || window > MAX_WINDOW_SECONDS {
            c.push(
                format!("{path}.windowSeconds"),
                format!("{window} is outside 1..{MAX_WINDOW_SECONDS} (31 days)"),
            );
        }
        if budget.max_tokens.is_none() && budget.max_usd.is_none() {
            c.push(path.clone(), "caps nothing: set maxTokens, maxUSD or both");
        }
        if budget.max_tokens == Some(0) {
            c.push(format!("{path}.maxTokens"), "must be at least 1");
        }
        if let Some(Err(e)) = budget.max_usd.as_deref().map(Usd::parse) {
            c.push(format!("{path}.maxUSD"), e.to_string());
        }
    }
    let redis = policy.budget_store.as_ref().and_then(|s| s.redis.as_ref());
    if let Some(store) = &policy.budget_store
        && store.redis.is_none()
    {
        c.push("spec.policy.budgetStore", "name a store: redis");
    }
    if let Some(redis) = redis {
        if let Err(why) = check_address(&redis.address) {
            c.push("spec.policy.budgetStore.redis.address", why);
        }
        if redis.database.is_some_and(|d| d > 15) {
            c.push("spec.policy.budgetStore.redis.database", "must be 0..15");
        }
        if let Some(r) = &redis.credentials_secret_ref
            && !is_dns_subdomain(&r.name)
        {
            c.push(
                "spec.policy.budgetStore.redis.credentialsSecretRef.name",
                format!("{:?} is not a valid Secret name", r.name),
            );
        }
        if let Some(p) = &redis.key_prefix
            && (p.is_empty() || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_graphic()))
        {
            c.push(
                "spec.policy.budgetStore.redis.keyPrefix",
                "must be 1..64 printable characters without spaces",
            );
        }
        if redis
            .timeout_ms
            .is_some_and(|t| !(10..=10_000).contains(&t))
        {
            c.push(
                "spec.policy.budgetStore.redis.timeoutMs",
                "must be 10..10000",
            );
        }
    }
    let replicas = spec.proxy.as_ref().and_then(|p| p.replicas).unwrap_or(1);
    if !policy.budgets.is_empty() && redis.is_none() && replicas > 1 {
        c.push(
            "spec.policy.budgetStore",
            format!(
                "budgets are kept in each replica's memory, so {replicas} replicas would each allow the whole budget; set spec.policy.budgetStore.redis or proxy.replicas: 1"
            ),
        );
    }
}

/// `host:port` with a port in 1..65535.
fn check_address(address: &str) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} must be host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(format!("{address:?} must be host:port"))
    }
}
