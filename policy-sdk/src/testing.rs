//! Running a policy natively in `cargo test`, through the same encoding the host uses.

use crate::fixtures::FixtureFile;
use crate::output::{Decision, Output};
use crate::policy::Policy;
use crate::view::{Request, RequestView};

/// Configures `P` from JSON, as the host would.
pub fn configure<P: Policy>(config: &serde_json::Value) -> Result<P, String> {
    let config = serde_json::from_value::<P::Config>(config.clone())
        .map_err(|e| format!("invalid config: {e}"))?;
    P::configure(config)
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

/// Runs every case of a fixture file; the error lists each failing case.
pub fn run_fixtures<P: Policy>(fixture_json: &str) -> Result<usize, String> {
    let file = FixtureFile::parse(fixture_json)?;
    let policy = configure::<P>(&file.config)?;
    let failures: Vec<String> = file
        .cases
        .iter()
        .filter_map(|case| {
            let decision = case.request.with_view(|view| evaluate(&policy, view));
            case.expect
                .check(&decision)
                .err()
                .map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    if failures.is_empty() {
        Ok(file.cases.len())
    } else {
        Err(failures.join("\n"))
    }
}
