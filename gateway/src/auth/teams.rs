//! What a team may use: request models, backends and tiers (`spec.auth.teams[]`).

use llmkube_router::routing::{Globs, RoutingTable};
use llmkube_router::spec::{TeamSpec, Tier};

/// One team's access, prepared.
#[derive(Debug)]
pub struct TeamAccess {
    models: Globs,
    backends: Globs,
    /// Empty: every tier.
    tiers: Vec<Tier>,
}

impl TeamAccess {
    /// Prepares `spec` (validated).
    pub fn new(spec: &TeamSpec) -> Self {
        TeamAccess {
            models: Globs::new(&spec.models),
            backends: Globs::new(&spec.backends),
            tiers: spec.tiers.clone(),
        }
    }

    /// Whether the team may ask for `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.allows(model)
    }

    /// Whether the team's requests may go to backend `b` of `table`.
    pub fn allows_backend(&self, table: &RoutingTable, b: usize) -> bool {
        let backend = &table.backends[b];
        self.backends.allows(&backend.name)
            && (self.tiers.is_empty() || self.tiers.contains(&backend.tier))
    }
}
