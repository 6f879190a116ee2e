//! ABI 1.2: a post-phase policy sees each route backend's tier and capabilities, so it can keep
//! a team off the cloud without a copy of the router's backend list; an older host's view
//! (no details) still decodes, with empty tiers.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use llmkube_policy_sdk::testing::{evaluate, run_fixtures};
use llmkube_policy_sdk::view::{BackendDetail, Request, RequestView};
use llmkube_policy_sdk::wire::Writer;
use llmkube_policy_sdk::{Action, Decision, Policy, export_policy};

/// Interns' requests go only to local backends of the route the rules chose.
struct NoCloudForInterns;

impl Policy for NoCloudForInterns {
    type Config = serde_json::Value;

    fn configure(_: Self::Config) -> Result<Self, String> {
        Ok(NoCloudForInterns)
    }

    fn evaluate(&self, request: &Request<'_>) -> Decision {
        if request.header("x-team") != Some("interns") || !request.route().any(|b| b.is_cloud()) {
            return Decision::proceed();
        }
        let local: Vec<&str> = request
            .route()
            .filter(|b| !b.is_cloud())
            .map(|b| b.name)
            .collect();
        if local.is_empty() {
            return Decision::reject(403, "interns stay local").with_code("interns_local_only");
        }
        Decision::route(local)
    }
}

export_policy!(
    NoCloudForInterns,
    r#"{"name": "no-cloud-for-interns", "phase": "post", "needs": {"headers": ["x-team"]}}"#
);

#[test]
fn tiers_and_capabilities_reach_a_post_phase_policy() {
    let fixtures = r#"{"cases": [
      {"name": "cloud taken out", "request": {"headers": {"x-team": "interns"}, "rule": "r",
        "routeBackends": ["gpt", "llama"], "routeTiers": ["cloud", "local"]},
       "expect": {"action": "route", "backends": ["llama"]}},
      {"name": "nothing local left", "request": {"headers": {"x-team": "interns"}, "rule": "r",
        "routeBackends": ["gpt"], "routeTiers": ["cloud"]},
       "expect": {"action": "reject", "status": 403, "code": "interns_local_only"}},
      {"name": "others untouched", "request": {"headers": {"x-team": "staff"}, "rule": "r",
        "routeBackends": ["gpt"], "routeTiers": ["cloud"]},
       "expect": {"action": "continue"}}]}"#;
    assert_eq!(run_fixtures::<NoCloudForInterns>(fixtures), Ok(3));

    let caps = vec!["chat".to_owned(), "vision".to_owned()];
    let details = [BackendDetail {
        tier: "cloud",
        capabilities: &caps,
    }];
    let view = RequestView {
        route_backends: &["gpt"],
        route_details: &details,
        ..Default::default()
    };
    let bytes = view.to_bytes();
    let request = Request::decode(&bytes).unwrap();
    let b = request.route().next().unwrap();
    assert_eq!((b.name, b.tier), ("gpt", "cloud"));
    assert_eq!(b.capabilities().collect::<Vec<_>>(), ["chat", "vision"]);
    assert!(matches!(
        evaluate(&NoCloudForInterns, &view).action,
        Action::Continue
    ));
}

#[test]
fn a_view_from_an_older_host_has_no_tiers_and_mismatched_details_are_refused() {
    let view = RequestView {
        route_backends: &["gpt"],
        ..Default::default()
    };
    let mut w = Writer::with_capacity(64);
    view.encode_for(1, &mut w);
    let request = Request::decode(&w.buf).unwrap();
    assert_eq!(request.route().next().unwrap().tier, "");

    let details = [BackendDetail::default(), BackendDetail::default()];
    let wrong = RequestView {
        route_backends: &["gpt"],
        route_details: &details,
        ..Default::default()
    };
    assert!(Request::decode(&wrong.to_bytes()).is_err());
}
