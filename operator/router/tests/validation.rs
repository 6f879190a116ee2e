//! Apply-time validation and manifest loading, as a user applying YAML would see them.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use llmkube_router::manifest::{LoadError, load_router};
use llmkube_router::spec::{ModelRouterSpec, Tier};
use llmkube_router::validate::validate_spec;

fn errors(yaml: &str) -> Vec<String> {
    match load_router(yaml, None) {
        Err(LoadError::Invalid(e)) => e.0.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

const HEAD: &str =
    "apiVersion: inference.llmkube.dev/v1alpha1\nkind: ModelRouter\nmetadata: {name: r}\n";

#[test]
fn the_seed_secure_router_loads_unchanged() {
    let yaml = include_str!("../../../examples/seed/secure-router.yaml");
    let m = load_router(yaml, None).expect("seed example must load");
    assert_eq!(m.metadata.name, "secure-router");
    assert_eq!(m.namespace(), "default");
    let spec = &m.spec;
    assert_eq!(spec.backends[1].effective_tier(), Tier::Cloud);
    assert_eq!(spec.rules[0].timeout.as_deref(), Some("8s"));
    assert!(spec.rules[0].fail_closed);
}

#[test]
fn the_quickstart_router_loads() {
    load_router(
        include_str!("../../../examples/quickstart/router.yaml"),
        None,
    )
    .unwrap();
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let yaml = format!(
        "{HEAD}spec:
  backends:
    - {{name: Local_1, inferenceServiceRef: {{name: a}}, tier: cloud}}
    - {{name: ext, external: {{provider: openai, url: 'ftp://x'}}, timeout: 50ms}}
    - {{name: ext, inferenceServiceRef: {{name: b}}, external: {{provider: litellm}}}}
    - {{name: bed, external: {{provider: bedrock}}}}
  rules:
    - name: pii
      match: {{dataClassification: [PII], models: ['llama-[0-9]']}}
      route: {{backends: [ext, x]}}
    - name: pii
      match: {{requiredCapabilities: [vision]}}
      route: {{backends: [ext]}}
      timeout: 31m
  defaultRoute: nowhere
"
    );
    let errs = errors(&yaml);
    let expect = [
        "spec.backends[0].name: \"Local_1\" must match",
        "spec.backends[0].tier: an inferenceServiceRef backend runs in the cluster and cannot be tier cloud",
        "spec.backends[1].external.url: \"ftp://x\" must start with http:// or https://",
        "spec.backends[1].timeout: \"50ms\" is outside 100ms..30m0s",
        "spec.backends[2].name: duplicate backend name \"ext\"",
        "spec.backends[2]: exactly one of inferenceServiceRef and external must be set",
        "spec.backends[3].external.provider: provider bedrock is not supported",
        "spec.rules[0].route.backends[1]: unknown backend \"x\"",
        "spec.rules[0].failClosed: must be true: the rule matches sensitive classification \"PII\"",
        "spec.rules[0].route.backends[0]: backend \"ext\" is tier cloud",
        "spec.rules[0].match.models[0]: \"llama-[0-9]\" uses '['",
        "spec.rules[1].name: duplicate rule name \"pii\"",
        "spec.rules[1].timeout: \"31m\" is outside 100ms..30m0s",
        "spec.rules[1].match.requiredCapabilities: no backend of the route has all of these capabilities",
        "spec.defaultRoute: unknown backend \"nowhere\"",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in:\n{}",
            errs.join("\n")
        );
    }
}

#[test]
fn typos_and_wrong_types_are_refused_by_path() {
    let yaml = format!(
        "{HEAD}spec:
  backends: [{{name: a, inferenceServiceRef: {{name: a}}}}]
  rules:
    - name: r
      match: {{dataClasification: [pii]}}
      route: {{backends: [a], strategy: round-robin}}
      failclosed: true
"
    );
    let errs = errors(&yaml);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.rules[0]") && e.contains("round-robin")),
        "{errs:?}"
    );
    let yaml = format!(
        "{HEAD}spec:
  backends: [{{name: a, inferenceServiceRef: {{name: a}}}}]
  rules:
    - name: r
      match: {{dataClasification: [pii]}}
      route: {{backends: [a]}}
      failclosed: true
"
    );
    let errs = errors(&yaml);
    assert!(
        errs.contains(&"spec.rules[0].match.dataClasification: unknown field".to_owned()),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"spec.rules[0].failclosed: unknown field".to_owned()),
        "{errs:?}"
    );
}

#[test]
fn sensitive_set_and_external_default_tier_drive_the_gate() {
    // An external backend without a tier is cloud, so it may not serve a phi rule...
    let yaml = format!(
        "{HEAD}spec:
  backends: [{{name: ext, external: {{provider: litellm, url: 'http://l:4000'}}}}]
  rules: [{{name: r, match: {{dataClassification: [phi]}}, route: {{backends: [ext]}}, failClosed: true}}]
"
    );
    assert!(errors(&yaml).iter().any(|e| e.contains("is tier cloud")));
    // ...unless phi is not sensitive for this router.
    let yaml =
        format!("{yaml}  policy: {{classification: {{sensitiveClassifications: [secret]}}}}\n");
    load_router(&yaml, None).unwrap();
}

#[test]
fn multi_document_files_pick_the_router() {
    let one =
        format!("{HEAD}spec: {{backends: [{{name: a, inferenceServiceRef: {{name: a}}}}]}}\n");
    let two = one.replace("name: r}", "name: s}");
    let file = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: pvc}}\n---\n{one}---\n{two}"
    );
    assert!(matches!(
        load_router(&file, None),
        Err(LoadError::Ambiguous(_))
    ));
    assert_eq!(load_router(&file, Some("s")).unwrap().metadata.name, "s");
    assert!(matches!(
        load_router(&file, Some("t")),
        Err(LoadError::NoSuchName(_))
    ));
    assert!(matches!(
        load_router("kind: Model\n", None),
        Err(LoadError::NotFound)
    ));
    assert!(matches!(
        load_router(": : :", None),
        Err(LoadError::Yaml(_))
    ));
}

#[test]
fn sizes_are_bounded_like_the_crd_schema() {
    let mut spec: ModelRouterSpec = serde_yaml_ng::from_str(
        "backends: [{name: a, inferenceServiceRef: {name: a}}]\nrules: []\n",
    )
    .unwrap();
    let rule: llmkube_router::spec::Rule = serde_yaml_ng::from_str(
        "{name: r, match: {dataClassification: [public]}, route: {backends: [a]}}",
    )
    .unwrap();
    spec.rules = (0..65)
        .map(|i| {
            let mut r = rule.clone();
            r.name = format!("r{i}");
            r
        })
        .collect();
    spec.rules[0].match_.as_mut().unwrap().data_classification = vec!["x".repeat(64)];
    let errors = validate_spec(&spec).unwrap_err().to_string();
    assert!(
        errors.contains("spec.rules: has 65 items; at most 64 are allowed"),
        "{errors}"
    );
    assert!(
        errors.contains("spec.rules[0].match.dataClassification[0]: is longer than 63 characters"),
        "{errors}"
    );
}

#[test]
fn secret_names_and_scan_limits_are_checked() {
    let yaml = format!(
        "{HEAD}spec:
  backends:
    - {{name: a, external: {{provider: openai, credentialsSecretRef: {{name: ../outside}}}}}}
    - {{name: b, external: {{provider: openai, credentialsSecretRef: {{name: '..'}}}}}}
    - {{name: c, external: {{provider: openai, credentialsSecretRef: {{name: openai.keys-2}}}}}}
  defaultRoute: c
  policy: {{classification: {{mode: detector, scanLimitBytes: 0}}}}
"
    );
    let errs = errors(&yaml);
    assert!(
        errs.iter().any(|e| e.starts_with(
            "spec.backends[0].external.credentialsSecretRef.name: \"../outside\" is not a valid Secret name"
        )),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.backends[1].external.credentialsSecretRef.name"))
    );
    assert!(
        !errs.iter().any(|e| e.starts_with("spec.backends[2]")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.policy.classification.scanLimitBytes"))
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn auth_needs_api_keys_and_sound_teams() {
    let yaml = format!(
        "{HEAD}spec:
  backends:
    - {{name: local, inferenceServiceRef: {{name: a}}}}
  defaultRoute: local
  auth:
    teams:
      - {{name: research, backends: [local, nowhere], models: ['llama-[0-9]']}}
      - {{name: research}}
      - {{name: 'has space'}}
    actForTeams: ['a,b']
"
    );
    let errs = errors(&yaml);
    for want in [
        "spec.auth: name a way to authenticate",
        "spec.auth.teams[0].backends[1]: unknown backend \"nowhere\"",
        "spec.auth.teams[0].models[0]:",
        "spec.auth.teams[1].name: duplicate team \"research\"",
        "spec.auth.teams[2].name:",
        "spec.auth.actForTeams[0]:",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want} missing from {errs:#?}"
        );
    }
    assert!(
        !errs.iter().any(|e| e.contains("teams[0].backends[0]")),
        "{errs:#?}"
    );
}

#[test]
fn budgets_must_cap_something_and_be_shared_across_replicas() {
    let yaml = format!(
        "{HEAD}spec:
  backends:
    - {{name: local, inferenceServiceRef: {{name: a}}, costPerMillionTokens: {{promptUSD: '0.1.5'}}}}
  rules:
    - {{name: r1, route: {{backends: [local]}}}}
  proxy: {{replicas: 3}}
  policy:
    budgets:
      - {{name: nothing}}
      - {{name: nothing, maxTokens: 0}}
      - {{name: rule, scope: rule, maxTokens: 5}}
      - {{name: team, scope: team, maxUSD: '1e3', headerKey: 'bad header'}}
      - {{name: router, ruleName: r1, maxTokens: 1, windowSeconds: 0}}
"
    );
    let errs = errors(&yaml);
    for want in [
        "spec.backends[0].costPerMillionTokens.promptUSD: \"0.1.5\" is not a dollar amount",
        "spec.policy.budgets[0]: caps nothing",
        "spec.policy.budgets[1].name: duplicate budget",
        "spec.policy.budgets[1].maxTokens: must be at least 1",
        "spec.policy.budgets[2].ruleName: is required",
        "spec.policy.budgets[3].maxUSD:",
        "spec.policy.budgets[3].headerKey:",
        "spec.policy.budgets[4].ruleName: applies only to scope rule",
        "spec.policy.budgets[4].windowSeconds:",
        "spec.policy.budgetStore: budgets are kept in each replica's memory, so 3 replicas",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want} missing from {errs:#?}"
        );
    }

    let shared = format!(
        "{HEAD}spec:
  backends:
    - {{name: local, inferenceServiceRef: {{name: a}}}}
  defaultRoute: local
  proxy: {{replicas: 3}}
  auth: {{apiKeys: {{secretRef: {{name: keys}}}}}}
  policy:
    budgetStore: {{redis: {{address: 'redis:6379', credentialsSecretRef: {{name: redis}}}}}}
    budgets:
      - {{name: teams, scope: team, maxTokens: 100000, failureMode: open}}
      - {{name: spend, maxUSD: '250.50', windowSeconds: 86400}}
"
    );
    load_router(&shared, None).unwrap();
    let with_header = shared.replace("failureMode: open", "headerKey: x-team");
    assert!(
        errors(&with_header)
            .iter()
            .any(|e| e.contains("the team is the authenticated principal's")),
    );
    let bad_address = shared.replace("redis:6379", "redis");
    assert!(
        errors(&bad_address)
            .iter()
            .any(|e| e.starts_with("spec.policy.budgetStore.redis.address"))
    );
}

#[test]
fn jwt_needs_an_issuer_an_audience_and_one_key_source() {
    let yaml = |jwt: &str| {
        format!(
            "{HEAD}spec:
  backends:
    - {{name: local, inferenceServiceRef: {{name: a}}}}
  defaultRoute: local
  auth:
    jwt: {jwt}
"
        )
    };
    load_router(
        &yaml("{issuer: 'https://idp', audiences: [llmkube], jwks: {url: 'https://idp.auth.svc/certs'}}"),
        None,
    )
    .unwrap();
    let errs = errors(&yaml(
        "{issuer: '', audiences: [], jwks: {url: 'ftp://x', secretRef: {name: idp}}, refreshSeconds: 1, leewaySeconds: 900}",
    ));
    for want in [
        "spec.auth.jwt.issuer: must not be empty",
        "spec.auth.jwt.audiences: list at least one",
        "spec.auth.jwt.jwks: set exactly one of url and secretRef",
        "spec.auth.jwt.refreshSeconds: must be 10..86400",
        "spec.auth.jwt.leewaySeconds: must be at most 300",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want} missing from {errs:#?}"
        );
    }
    let bad_url = errors(&yaml("{issuer: i, audiences: [a], jwks: {url: 'ftp://x'}}"));
    assert!(
        bad_url
            .iter()
            .any(|e| e.starts_with("spec.auth.jwt.jwks.url")),
        "{bad_url:#?}"
    );
}
