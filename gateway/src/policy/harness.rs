//! Runs a policy's fixture file against its built `.wasm` under the gateway's production
//! limits — the same engine, pool, deadline and memory cap requests get — showing each case
//! to the policy as the gateway would, from the metadata the module declares.

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
    /// The metadata the module declares, as the gateway read it (the view each case got
    /// follows it).
    pub metadata: String,
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
        let hidden = case.request.hidden_from(&module.meta);
        let input = case.request.view_for(&module.meta, |view| {
            let mut w = llmkube_policy_sdk::wire::Writer::with_capacity(256);
            view.encode_for(module.abi_minor, &mut w);
            w.buf
        });
        let input = match input {
            Ok(input) => input,
            Err(why) => {
                failures.push(format!("{}: {why}", case.name));
                continue;
            }
        };
        match module.evaluate(&input, |out| Ok(out.to_decision())) {
            Ok(decision) => {
                if let Err(why) = case.expect.check(&decision) {
                    failures.push(format!("{}: {why}{hidden}", case.name));
                }
            }
            Err(e) => failures.push(format!("{}: the policy {e}", case.name)),
        }
    }
    Ok(Report {
        cases: file.cases.len(),
        failures,
        digest: module.digest.clone(),
        metadata: serde_json::to_string(&module.meta).unwrap_or_default(),
    })
}
