//! Running a policy natively in `cargo test`, through the same encoding the host uses.

use crate::fixtures::FixtureFile;
use crate::metadata::Exported;
use crate::output::{Decision, Output};
use crate::policy::Policy;
use crate::view::{Request, RequestView};

/// Configures `P` from JSON, as the host would.
pub fn configure<P: Policy>(config: &serde_json::Value) -> Result<P, String> {
    let json = serde_json::to_vec(config).map_err(|e| e.to_string())?;
    P::configure(crate::config::from_json(&json)?)
}

/// Evaluates `view` the way the host does: encoded, decoded by the guest side, the decision
/// encoded and decoded again.
pub fn evaluate<P: Policy>(policy: &P, view: &RequestView<'_>) -> Decision {
    let input = view.to_bytes();
    let request = Request::decode(&input).expect("the host's encoding decodes");
    let output = policy.evaluate(&request).to_bytes();
    Output::decode(&output)
        .unwrap_or_else(|e| panic!("the policy's decision does not decode: {e}"))
        .to_decision()
}

/// Runs every case of a fixture file, each shown to the policy as the gateway would show it
/// given the policy's metadata; the error lists each failing case.
pub fn run_fixtures<P: Policy + Exported>(fixture_json: &str) -> Result<usize, String> {
    let file = FixtureFile::parse(fixture_json)?;
    let policy = configure::<P>(&file.config)?;
    let meta = P::metadata();
    let failures: Vec<String> = file
        .cases
        .iter()
        .filter_map(|case| {
            let checked = case
                .request
                .view_for(&meta, |view| evaluate(&policy, view))
                .and_then(|decision| case.expect.check(&decision));
            checked
                .err()
                .map(|e| format!("{}: {e}{}", case.name, case.request.hidden_from(&meta)))
        })
        .collect();
    if failures.is_empty() {
        Ok(file.cases.len())
    } else {
        Err(failures.join("\n"))
    }
}
