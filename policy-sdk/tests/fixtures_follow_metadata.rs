//! The native fixture runner builds the request view from the policy's declared metadata, as
//! the gateway does: a header the metadata does not ask for is not seen, and a fixture that
//! gives a route to a policy that runs before the rules is an error, not a silent pass.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use llmkube_policy_sdk::testing::run_fixtures;
use llmkube_policy_sdk::{Decision, Policy, Request, export_policy};

/// Refuses interns; its metadata (deliberately) declares neither the `x-team` header it reads
/// nor the post phase.
struct NoCloudForInterns;

impl Policy for NoCloudForInterns {
    type Config = serde_json::Value;

    fn configure(_: Self::Config) -> Result<Self, String> {
        Ok(NoCloudForInterns)
    }

    fn evaluate(&self, request: &Request<'_>) -> Decision {
        if request.header("x-team") == Some("interns") {
            return Decision::reject(403, "interns stay local").with_code("interns_local_only");
        }
        Decision::proceed()
    }
}

export_policy!(NoCloudForInterns, r#"{"name": "no-cloud-for-interns"}"#);

#[test]
fn an_undeclared_header_is_not_seen_in_tests_either() {
    let fixtures = r#"{"cases": [{"name": "interns kept local",
        "request": {"headers": {"x-team": "interns"}},
        "expect": {"action": "reject", "code": "interns_local_only"}}]}"#;
    let err = run_fixtures::<NoCloudForInterns>(fixtures).unwrap_err();
    assert!(err.contains("interns kept local"), "{err}");
    assert!(
        err.contains("x-team") && err.contains("needs.headers"),
        "{err}"
    );
}

#[test]
fn a_route_given_to_a_pre_phase_policy_is_a_fixture_error() {
    let fixtures = r#"{"cases": [{"name": "post-phase case",
        "request": {"routeBackends": ["cloud"]},
        "expect": {"action": "continue"}}]}"#;
    let err = run_fixtures::<NoCloudForInterns>(fixtures).unwrap_err();
    assert!(err.contains("phase"), "{err}");
}
