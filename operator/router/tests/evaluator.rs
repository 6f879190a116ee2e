//! The reference routing semantics, case by case.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use llmkube_router::manifest::load_router;
use llmkube_router::routing::{Decision, Deny, RequestFacts, Route, RoutingTable, Via};
use llmkube_router::spec::Strategy;

fn table(spec: &str) -> RoutingTable {
    let yaml = format!(
        "apiVersion: inference.llmkube.dev/v1alpha1\nkind: ModelRouter\nmetadata: {{name: r}}\nspec:\n{spec}"
    );
    RoutingTable::new(&load_router(&yaml, None).unwrap().spec).unwrap()
}

const BACKENDS: &str = "  backends:
    - {name: local-a, inferenceServiceRef: {name: a}, capabilities: [chat]}
    - {name: local-b, displayName: llama-b, inferenceServiceRef: {name: b}, capabilities: [chat, vision]}
    - {name: cloud, displayName: gpt-x, external: {provider: openai}, capabilities: [chat, vision, long]}
";

#[derive(Default)]
struct Req<'a> {
    model: &'a str,
    classes: Vec<String>,
    complexity: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
}

fn decide(t: &RoutingTable, r: &Req<'_>) -> Decision {
    t.decide(&RequestFacts {
        model: r.model,
        classifications: &r.classes,
        task_complexity: r.complexity,
        headers: &r.headers,
    })
}

fn routed(d: Decision) -> Route {
    match d {
        Decision::Route(r) => r,
        other => panic!("expected a route, got {other:?}"),
    }
}

fn classes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn first_matching_rule_wins_and_fields_are_anded() {
    let t = table(&format!(
        "{BACKENDS}  rules:
    - name: team-x-gpt
      match: {{headers: {{X-Team: x}}, models: ['gpt-*']}}
      route: {{backends: [cloud]}}
    - name: team-x
      match: {{headers: {{x-team: x}}}}
      route: {{backends: [local-b]}}
    - name: hard
      match: {{taskComplexity: High}}
      route: {{backends: [cloud, local-a], strategy: weighted}}
      timeout: 5s
  defaultRoute: local-a
"
    ));
    let r = routed(decide(
        &t,
        &Req {
            model: "gpt-4o",
            headers: vec![("x-team", "x")],
            ..Default::default()
        },
    ));
    assert_eq!((r.via, r.backends), (Via::Rule(0), vec![2]));
    let r = routed(decide(
        &t,
        &Req {
            model: "llama",
            headers: vec![("x-team", "x")],
            ..Default::default()
        },
    ));
    assert_eq!(r.via, Via::Rule(1), "model glob must hold too");
    let r = routed(decide(
        &t,
        &Req {
            model: "gpt-4o",
            headers: vec![("x-team", "X")],
            ..Default::default()
        },
    ));
    assert_eq!(r.via, Via::DefaultRoute, "header values are exact");
    let r = routed(decide(
        &t,
        &Req {
            complexity: Some(" HIGH "),
            ..Default::default()
        },
    ));
    assert_eq!(
        (r.via, r.strategy, r.timeout),
        (
            Via::Rule(2),
            Strategy::Weighted,
            Some(std::time::Duration::from_secs(5))
        )
    );
    let r = routed(decide(
        &t,
        &Req {
            headers: vec![("x-team", "y"), ("x-team", "x")],
            ..Default::default()
        },
    ));
    assert_eq!(
        r.via,
        Via::Rule(1),
        "any occurrence of a repeated header counts"
    );
}

#[test]
fn model_globs_support_star_and_question_mark_across_slashes() {
    let t = table(&format!(
        "{BACKENDS}  rules:
    - {{name: g, match: {{models: ['meta-llama/*-8?', 'exact']}}, route: {{backends: [local-a]}}}}
"
    ));
    for (model, hit) in [
        ("meta-llama/Llama-3.1-8B", true),
        ("meta-llama/x/y-8b", true),
        ("meta-llama/Llama-3.1-8", false),
        ("exact", true),
        ("exactly", false),
        ("", false),
    ] {
        let d = decide(
            &t,
            &Req {
                model,
                ..Default::default()
            },
        );
        assert_eq!(matches!(d, Decision::Route(_)), hit, "{model:?}");
    }
}

#[test]
fn required_capabilities_filter_the_route() {
    let t = table(&format!(
        "{BACKENDS}  rules:
    - {{name: vision, match: {{requiredCapabilities: [vision]}}, route: {{backends: [local-a, local-b, cloud]}}}}
"
    ));
    let r = routed(decide(&t, &Req::default()));
    assert_eq!(r.backends, vec![1, 2], "local-a lacks vision");
}

#[test]
fn classification_membership_and_sensitivity() {
    let t = table(&format!(
        "{BACKENDS}  rules:
    - {{name: pii, match: {{dataClassification: [pii]}}, route: {{backends: [local-a]}}, failClosed: true}}
    - {{name: internal, match: {{dataClassification: [internal]}}, route: {{backends: [cloud, local-b]}}}}
  defaultRoute: cloud
  defaultRouteStrategy: BackendNameMatch
"
    ));
    let r = routed(decide(
        &t,
        &Req {
            classes: classes(&["public", "pii"]),
            ..Default::default()
        },
    ));
    assert_eq!(
        (r.via, r.fail_closed, r.sensitive),
        (Via::Rule(0), true, true)
    );
    // A sensitive request that matches a non-sensitive rule keeps only its local backends.
    let r = routed(decide(
        &t,
        &Req {
            classes: classes(&["internal", "phi"]),
            ..Default::default()
        },
    ));
    assert_eq!(
        (r.via, r.backends.clone(), r.fail_closed),
        (Via::Rule(1), vec![1], true)
    );
    // Not sensitive: the same rule may use the cloud.
    let r = routed(decide(
        &t,
        &Req {
            classes: classes(&["internal"]),
            ..Default::default()
        },
    ));
    assert_eq!(r.backends, vec![2, 1]);
    // A sensitive request never reaches a cloud backend by name or by default route.
    assert_eq!(
        decide(
            &t,
            &Req {
                model: "gpt-x",
                classes: classes(&["phi"]),
                ..Default::default()
            }
        ),
        Decision::Deny(Deny::FailClosed { rule: None })
    );
    let r = routed(decide(
        &t,
        &Req {
            model: "llama-b",
            classes: classes(&["phi"]),
            ..Default::default()
        },
    ));
    assert_eq!((r.via, r.backends), (Via::BackendName, vec![1]));
}

#[test]
fn backend_name_match_uses_published_ids_then_default_then_no_route() {
    let t = table(&format!(
        "{BACKENDS}  defaultRouteStrategy: BackendNameMatch\n"
    ));
    let r = routed(decide(
        &t,
        &Req {
            model: "llama-b",
            ..Default::default()
        },
    ));
    assert_eq!((r.via, r.backends), (Via::BackendName, vec![1]));
    let r = routed(decide(
        &t,
        &Req {
            model: "local-a",
            ..Default::default()
        },
    ));
    assert_eq!(
        r.backends,
        vec![0],
        "a backend without displayName is published by name"
    );
    assert_eq!(
        decide(
            &t,
            &Req {
                model: "local-b",
                ..Default::default()
            }
        ),
        Decision::Deny(Deny::NoRoute),
        "local-b is published as llama-b, so its bare name is not an id"
    );
    let t = table(&format!("{BACKENDS}  defaultRoute: local-a\n"));
    let r = routed(decide(
        &t,
        &Req {
            model: "llama-b",
            ..Default::default()
        },
    ));
    assert_eq!(r.via, Via::DefaultRoute, "Static strategy ignores names");
}

#[test]
fn fail_closed_rules_never_fall_through() {
    let t = table(&format!(
        "{BACKENDS}  rules:
    - {{name: secret, match: {{dataClassification: [secret]}}, route: {{backends: [cloud]}}, failClosed: true}}
  defaultRoute: local-a
  policy: {{classification: {{sensitiveClassifications: [pii, secret2]}}}}
"
    ));
    // `secret` is not sensitive here, so the rule routes to the cloud as written.
    let r = routed(decide(
        &t,
        &Req {
            classes: classes(&["secret"]),
            ..Default::default()
        },
    ));
    assert_eq!(r.backends, vec![2]);
    // With a sensitive class too, the cloud is excluded and the fail-closed rule denies.
    assert_eq!(
        decide(
            &t,
            &Req {
                classes: classes(&["secret", "pii"]),
                ..Default::default()
            }
        ),
        Decision::Deny(Deny::FailClosed { rule: Some(0) })
    );
}
