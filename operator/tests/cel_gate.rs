//! The CRD's CEL rules (what `kubectl apply` enforces without a webhook) agree with the
//! controller's validator on the apply-time gate, for the seed's router and for random specs.
//! The rules are taken from the generated CRD and run with the cel-rust interpreter plus the
//! Kubernetes strings library.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::sync::Arc;

use cel::{Context, Env, Program};
use llmkube_router::spec::{ModelRouter, ModelRouterSpec};
use llmkube_router::validate::validate_spec;
use proptest::prelude::*;
use serde_json::{Value, json};

struct Gate {
    env: Arc<Env>,
    spec: Vec<(Program, String)>,
    backend: Vec<(Program, String)>,
}

fn rules(schema: &Value) -> Vec<(String, String)> {
    schema["x-kubernetes-validations"]
        .as_array()
        .expect("x-kubernetes-validations")
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_owned(),
                r["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

impl Gate {
    fn from_crd() -> Gate {
        let crd = serde_json::to_value(<ModelRouter as kube::CustomResourceExt>::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let backend = &spec["properties"]["backends"]["items"];
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings).unwrap();
        let compile = |(rule, message): (String, String)| {
            let program = env
                .compile(&rule)
                .unwrap_or_else(|e| panic!("{rule}: {e:?}"));
            (program, message)
        };
        let spec_rules = rules(spec).into_iter().map(compile).collect();
        let backend_rules = rules(backend).into_iter().map(compile).collect();
        Gate {
            spec: spec_rules,
            backend: backend_rules,
            env: Arc::new(env),
        }
    }

    /// The messages of every failed rule for `spec` (as JSON, the way the API server sees it).
    fn refusals(&self, spec: &Value) -> Vec<String> {
        let run = |program: &Program, this: &Value| {
            let mut ctx = Context::with_env(Arc::clone(&self.env));
            ctx.add_variable("self", cel::to_value(this).unwrap())
                .unwrap();
            match program.execute(&ctx) {
                Ok(cel::Value::Bool(b)) => b,
                other => panic!("rule did not give a bool: {other:?} for {this}"),
            }
        };
        let mut out: Vec<String> = self
            .spec
            .iter()
            .filter(|(p, _)| !run(p, spec))
            .map(|(_, m)| m.clone())
            .collect();
        for b in spec["backends"].as_array().unwrap() {
            out.extend(
                self.backend
                    .iter()
                    .filter(|(p, _)| !run(p, b))
                    .map(|(_, m)| m.clone()),
            );
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The gate problems the controller's validator finds, named by the CEL message they match.
fn validator_refusals(spec: &Value) -> Vec<String> {
    let typed: ModelRouterSpec = serde_json::from_value(spec.clone()).unwrap();
    let Err(errors) = validate_spec(&typed) else {
        return vec![];
    };
    let mut out: Vec<String> = errors
        .0
        .iter()
        .filter_map(|e| {
            let m = &e.message;
            Some(if e.path.ends_with(".failClosed") {
                "a rule matching a sensitive classification (default: pii, phi) must set failClosed: true"
            } else if m.contains("may only name local backends") {
                "a rule matching a sensitive classification (default: pii, phi) may only name local-tier backends"
            } else if e.path.starts_with("spec.rules") && m.starts_with("unknown backend") {
                "rules may only name backends listed in spec.backends"
            } else if e.path == "spec.defaultRoute" {
                "defaultRoute must name a backend listed in spec.backends"
            } else if m.starts_with("duplicate backend name") {
                "backend names must be unique"
            } else if m.starts_with("exactly one of inferenceServiceRef and external") {
                "a backend needs exactly one of inferenceServiceRef and external"
            } else {
                return None;
            })
        })
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_seed_router_passes_and_the_classic_mistakes_are_refused_at_apply() {
    let gate = Gate::from_crd();
    let seed: Value =
        serde_yaml_ng::from_str::<Value>(include_str!("../../examples/seed/secure-router.yaml"))
            .unwrap()["spec"]
            .clone();
    assert_eq!(gate.refusals(&seed), Vec::<String>::new());

    let mut open = seed.clone();
    open["rules"][0]["failClosed"] = json!(false);
    assert_eq!(
        gate.refusals(&open),
        [
            "a rule matching a sensitive classification (default: pii, phi) must set failClosed: true"
        ]
    );
    let mut leaky = seed.clone();
    leaky["rules"][0]["route"]["backends"] = json!(["local-llama", "internal-litellm"]);
    leaky["rules"][0]["match"]["dataClassification"] = json!(["PII"]);
    assert_eq!(
        gate.refusals(&leaky),
        [
            "a rule matching a sensitive classification (default: pii, phi) may only name local-tier backends"
        ]
    );
    let mut custom = seed.clone();
    custom["policy"] = json!({"classification": {"sensitiveClassifications": [" Secret "]}});
    custom["rules"][0]["match"]["dataClassification"] = json!(["secret"]);
    custom["rules"][0]["route"]["backends"] = json!(["internal-litellm"]);
    assert_eq!(
        gate.refusals(&custom).len(),
        1,
        "custom sensitive values are honoured"
    );
}

fn arb_spec() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(vec!["a", "b", "c", "zz"]);
    let backend = (
        0..4u8,
        prop::option::of(prop::sample::select(vec!["local", "cloud"])),
    )
        .prop_map(|(kind, tier)| {
            let mut b = json!({"name": ""});
            if kind & 1 == 1 {
                b["inferenceServiceRef"] = json!({"name": "svc"});
            }
            if kind & 2 == 2 {
                b["external"] = json!({"provider": "openai"});
            }
            if let Some(t) = tier {
                b["tier"] = json!(t);
            }
            b
        });
    let class = prop::sample::select(vec!["pii", "PHI", "public", "secret", " pii"]);
    let rule = (
        prop::collection::vec(class, 0..3),
        any::<bool>(),
        prop::collection::vec(name.clone(), 1..3),
        any::<bool>(),
    )
        .prop_map(|(classes, fail_closed, backends, with_match)| {
            let mut r = json!({"name": "r", "route": {"backends": backends}});
            if with_match {
                r["match"] = if classes.is_empty() {
                    json!({})
                } else {
                    json!({"dataClassification": classes})
                };
            }
            if fail_closed {
                r["failClosed"] = json!(true);
            }
            r
        });
    let sensitive = prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["secret", " PII ", "phi"]),
        0..3,
    ));
    (
        prop::collection::vec(backend, 1..4),
        prop::collection::vec(rule, 0..4),
        prop::option::of(name),
        sensitive,
    )
        .prop_map(|(backends, rules, default, sensitive)| {
            // Unique backend names (duplicates are refused by both, see the test above).
            let mut backends = backends;
            for (b, name) in backends.iter_mut().zip(["a", "b", "c"]) {
                b["name"] = json!(name);
            }
            let mut rules = rules;
            for (i, r) in rules.iter_mut().enumerate() {
                r["name"] = json!(format!("r{i}"));
            }
            let mut spec = json!({"backends": backends});
            if !rules.is_empty() {
                spec["rules"] = json!(rules);
            }
            if let Some(d) = default {
                spec["defaultRoute"] = json!(d);
            }
            if let Some(s) = sensitive {
                spec["policy"] = json!({"classification": {"sensitiveClassifications": s}});
            }
            spec
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cel_and_the_validator_refuse_the_same_specs(spec in arb_spec()) {
        let gate = Gate::from_crd();
        prop_assert_eq!(gate.refusals(&spec), validator_refusals(&spec), "spec: {}", spec);
    }
}
