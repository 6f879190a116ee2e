//! The budget stores that outlive router versions: this process's memory, and the Redis
//! connection, kept while reloads name the same server with the same credentials.

use std::path::Path;
use std::sync::{Arc, Mutex};

use llmkube_router::spec::ModelRouterSpec;

use super::{Budgets, MemoryStore, RedisStore};
use crate::metrics::Label;

/// Stores shared by every version of the router.
#[derive(Default)]
pub struct BudgetStores {
    memory: Arc<MemoryStore>,
    redis: Mutex<Option<Arc<RedisStore>>>,
}

impl BudgetStores {
    /// The budgets of `spec` over these stores; `credentials_dir` holds the Redis Secret.
    pub fn budgets_for(
        &self,
        spec: &ModelRouterSpec,
        namespace: &str,
        router: &Label,
        credentials_dir: Option<&Path>,
    ) -> Result<Option<Budgets>, String> {
        let policy = spec.policy.as_ref();
        let redis_spec = policy
            .and_then(|p| p.budget_store.as_ref())
            .and_then(|s| s.redis.as_ref());
        let redis = match redis_spec {
            None => None,
            Some(r) => {
                let read = |key: &str| {
                    let name = &r.credentials_secret_ref.as_ref()?.name;
                    let text = std::fs::read_to_string(credentials_dir?.join(name).join(key));
                    text.ok()
                        .map(|t| t.trim_end_matches(['\r', '\n']).to_owned())
                };
                let (user, pass) = (read("REDIS_USERNAME"), read("REDIS_PASSWORD"));
                if r.credentials_secret_ref.is_some() && pass.is_none() {
                    return Err(
                        "spec.policy.budgetStore.redis.credentialsSecretRef: REDIS_PASSWORD is missing from the Secret (or the credentials directory)"
                            .into(),
                    );
                }
                let mut cached = self.redis.lock().unwrap_or_else(|e| e.into_inner());
                match cached.as_ref().filter(|c| c.is_for(r, &pass)) {
                    Some(store) => Some(Arc::clone(store)),
                    None => {
                        let store = RedisStore::new(r, user, pass)
                            .map_err(|e| format!("spec.policy.budgetStore.redis: {e}"))?;
                        let store = Arc::new(store);
                        *cached = Some(Arc::clone(&store));
                        Some(store)
                    }
                }
            }
        };
        Ok(Budgets::new(spec, namespace, router, &self.memory, redis))
    }
}
