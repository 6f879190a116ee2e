//! Runs a policy's fixture file against its built `.wasm` under the gateway's production
//! limits — the same engine, pool, deadline and memory cap requests get.

use std::sync::Arc;

use llmkube_policy_sdk::fixtures::FixtureFile;

use super::{PolicyEngine, PolicyModule};

/// The result of a fixture run.
#[derive(Debug)]
pub struct Report {
    /// Cases run.
    pub cases: usize,
    /// `name: what differed`, one per failing case.
    pub failures: Vec<String>,
    /// The module's sha256 (what a router pins).
    pub digest: String,
}

/// Loads `wasm` with the fixture file's config and checks every case.
pub fn run_fixtures(
    engine: &Arc<PolicyEngine>,
    wasm: &[u8],
    fixtures_json: &str,
) -> Result<Report, String> {
    let file = FixtureFile::parse(fixtures_json)?;
    let module = PolicyModule::load(engine, "under-test", wasm, None, &file.config)
        .map_err(|e| e.to_string())?;
    let mut failures = Vec::new();
    for case in &file.cases {
        let input = case.request.with_view(|view| {
            let mut w = llmkube_policy_sdk::wire::Writer::with_capacity(256);
            view.encode_for(module.abi_minor, &mut w);
            w.buf
        });
        match module.evaluate(&input, |out| Ok(out.to_decision())) {
            Ok(decision) => {
                if let Err(why) = case.expect.check(&decision) {
                    failures.push(format!("{}: {why}", case.name));
                }
            }
            Err(e) => failures.push(format!("{}: the policy {e}", case.name)),
        }
    }
    Ok(Report {
        cases: file.cases.len(),
        failures,
        digest: module.digest.clone(),
    })
}
