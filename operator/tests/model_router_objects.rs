//! ModelRouter desired objects and status, starting from the seed's secure-router.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::collections::BTreeMap;

use llmkube_operator::reconcile::model_router::*;
use llmkube_operator::reconcile::router_status::{Observation, status};
use llmkube_router::compiler::compile;
use llmkube_router::manifest::load_router;
use llmkube_router::spec::{
    ApiKeysSpec, AuthSpec, Backend, BackendStatus, ConfigMapKeyRef, ExternalBackend,
    LocalObjectReference, ModelRouter, ModelRouterStatus, ModuleSource, PolicyRef, Provider,
    ProxySpec, RedisStoreSpec, SecretKeyRef, SecretRef, Tier,
};
use llmkube_router::validate::validate_spec;

fn seed() -> ModelRouter {
    let mut r: ModelRouter =
        serde_yaml_ng::from_str(include_str!("../../examples/seed/secure-router.yaml")).unwrap();
    r.metadata.uid = Some("uid-7".into());
    r.metadata.generation = Some(3);
    r
}

fn settings() -> Settings {
    Settings {
        gateway_image: "registry.internal.corp/llmkube/llmkube-gateway:0.1.0".into(),
        image_pull_secrets: vec!["internal-registry-creds".into()],
        default_litellm_url: Some("http://litellm.ai-gateway.svc:4000".into()),
        default_budget_store: None,
        fixed_uid: true,
        allowance: Default::default(),
        otlp: None,
    }
}

#[test]
fn names_labels_and_endpoint_match_the_original() {
    let r = seed();
    assert_eq!(object_name(&r), "secure-router-router-proxy");
    assert_eq!(
        endpoint(&r),
        "http://secure-router-router-proxy.default.svc.cluster.local:8080/v1/chat/completions"
    );
    let l = labels(&r);
    assert_eq!(l["app.kubernetes.io/component"], "router-proxy");
    assert_eq!(l["inference.llmkube.dev/model-router"], "secure-router");
    let svc = service(&r);
    assert_eq!(svc.metadata.owner_references.unwrap()[0].uid, "uid-7");
    let ports: Vec<(i32, String)> = svc
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.port, p.name.unwrap()))
        .collect();
    assert_eq!(
        ports,
        [(8080, "http".to_owned()), (9090, "metrics".to_owned())]
    );
}

#[test]
fn the_config_map_reloads_to_the_same_rules_the_gateway_will_compile() {
    let mut r = seed();
    r.spec.policies.push(PolicyRef {
        name: "tenants".into(),
        module: ModuleSource {
            config_map_key_ref: Some(ConfigMapKeyRef {
                name: "team-policies".into(),
                key: "tenants.wasm".into(),
            }),
            ..ModuleSource::default()
        },
        sha256: "ab".repeat(32),
        ..PolicyRef::default()
    });
    let rules = compile(&r.spec).unwrap();
    let cm = config_map(
        &r,
        &settings(),
        &rules,
        &BTreeMap::from([("tenants".to_owned(), b"\0asm".to_vec())]),
    )
    .unwrap();
    let data = cm.data.unwrap();
    let reloaded = load_router(&data["router.yaml"], None).unwrap();
    assert_eq!(reloaded.metadata.name, "secure-router");
    assert_eq!(
        reloaded.spec.policies[0].module,
        ModuleSource {
            file: Some("tenants.wasm".into()),
            config_map_key_ref: None
        },
        "the gateway reads the copied module next to router.yaml"
    );
    let mut expected = r.spec.clone();
    expected.policies[0].module = reloaded.spec.policies[0].module.clone();
    assert_eq!(reloaded.spec, expected, "nothing else changes");
    assert_eq!(
        compile(&reloaded.spec).unwrap().sha256,
        data["rules.sha256"],
        "deterministic: the gateway gets the same module"
    );
    let binary = cm.binary_data.unwrap();
    assert_eq!(binary["rules.wasm"].0, rules.wasm);
    assert_eq!(binary["tenants.wasm"].0, b"\0asm");
}

#[test]
fn litellm_backends_without_url_get_the_default_and_oversized_config_is_refused() {
    let mut r = seed();
    r.spec.backends.push(Backend {
        name: "litellm".into(),
        external: Some(ExternalBackend {
            provider: Provider::Litellm,
            ..ExternalBackend::default()
        }),
        tier: Some(Tier::Cloud),
        ..Backend::default()
    });
    let spec = gateway_spec(&r.spec, &settings());
    let url = spec
        .backends
        .last()
        .unwrap()
        .external
        .as_ref()
        .unwrap()
        .url
        .clone();
    assert_eq!(url.as_deref(), Some("http://litellm.ai-gateway.svc:4000"));

    let rules = compile(&r.spec).unwrap();
    let huge = BTreeMap::from([("big".to_owned(), vec![0u8; 1_100_000])]);
    let err = config_map(&r, &settings(), &rules, &huge).unwrap_err();
    assert!(err.contains("a ConfigMap holds at most"), "{err}");
}

#[test]
fn the_gateway_pod_is_hardened_and_reads_credentials_from_mounted_secrets() {
    let mut r = seed();
    r.spec.proxy = Some(ProxySpec {
        replicas: Some(3),
        node_selector: BTreeMap::from([("pool".into(), "gateways".into())]),
        image_pull_secrets: vec![LocalObjectReference {
            name: "team-creds".into(),
        }],
        ..ProxySpec::default()
    });
    let d = deployment(&r, &settings());
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("registry.internal.corp/llmkube/llmkube-gateway:0.1.0")
    );
    let sc = c.security_context.clone().unwrap();
    assert_eq!(
        (
            sc.run_as_non_root,
            sc.run_as_user,
            sc.read_only_root_filesystem,
            sc.allow_privilege_escalation
        ),
        (Some(true), Some(65532), Some(true), Some(false))
    );
    assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let env = c.env.clone().unwrap();
    assert_eq!(env.len(), 1, "no credentials in the environment");
    assert_eq!(
        env[0]
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.namespace"
    );
    let mounts = c.volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(
        |m| m.mount_path == "/var/run/secrets/llmkube/litellm-key" && m.read_only == Some(true)
    ));
    assert!(
        c.args
            .clone()
            .unwrap()
            .windows(2)
            .any(|w| w == ["--config-map", "secure-router-router-proxy"]),
        "watches its ConfigMap through the API: no kubelet sync delay"
    );
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("secure-router-router-proxy")
    );
    assert_eq!(pod.node_selector.unwrap()["pool"], "gateways");
    let pulls: Vec<String> = pod
        .image_pull_secrets
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(pulls, ["team-creds", "internal-registry-creds"]);
    assert!(
        spec.template.metadata.unwrap().annotations.is_none(),
        "rule changes must not roll pods"
    );
}

#[test]
fn the_gateway_may_only_read_its_own_config_map() {
    let rule = role(&seed()).rules.unwrap().remove(0);
    assert_eq!(rule.resources.unwrap(), ["configmaps"]);
    assert_eq!(rule.resource_names.unwrap(), ["secure-router-router-proxy"]);
    assert_eq!(rule.verbs, ["get", "list", "watch"]);
    assert_eq!(
        role_binding(&seed()).subjects.unwrap()[0].name,
        "secure-router-router-proxy"
    );
}

#[test]
fn status_lists_every_problem_and_follows_the_gateway() {
    let r = seed();
    let mut bad = r.clone();
    bad.spec.rules[0].fail_closed = false;
    bad.spec.default_route = Some("nowhere".into());
    let s = status(&bad, &validate_spec(&bad.spec), &Observation::default());
    assert_eq!(s.phase.map(|p| p.as_str()), Some("Failed"));
    let validated = &s.conditions[0];
    assert_eq!(
        (validated.type_.as_str(), validated.status.as_str()),
        ("Validated", "False")
    );
    assert!(
        validated
            .message
            .contains("spec.rules[0].failClosed: must be true")
            && validated
                .message
                .contains("spec.defaultRoute: unknown backend"),
        "{}",
        validated.message
    );
    assert_eq!(s.endpoint, None);

    let ok = validate_spec(&r.spec);
    assert_eq!(
        status(&r, &ok, &Observation::default())
            .phase
            .map(|p| p.as_str()),
        Some("Provisioning")
    );
    let degraded = status(
        &r,
        &ok,
        &Observation {
            replicas: Some((1, 1)),
            backends: vec![BackendStatus {
                name: "local-llama".into(),
                healthy: false,
                message: Some("InferenceService llama-3-8b is not Ready".into()),
                ..BackendStatus::default()
            }],
            ..Default::default()
        },
    );
    assert_eq!(degraded.phase.map(|p| p.as_str()), Some("Degraded"));
    assert_eq!(
        degraded.conditions[1].message,
        "local-llama: InferenceService llama-3-8b is not Ready"
    );
    assert_eq!(degraded.backends.len(), 1);
    let ready = status(
        &r,
        &ok,
        &Observation {
            replicas: Some((1, 1)),
            ..Default::default()
        },
    );
    assert_eq!(
        (
            ready.phase.map(|p| p.as_str()),
            ready.active_rules,
            ready.observed_generation
        ),
        (Some("Ready"), Some(1), Some(3))
    );
    assert!(ready.conditions[..3].iter().all(|c| c.status == "True"));
}

fn authenticated(s: &ModelRouterStatus) -> &llmkube_router::condition::Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == "Authenticated")
        .unwrap()
}

#[test]
fn a_router_open_to_anyone_with_cloud_backends_says_so_and_api_keys_are_mounted() {
    let open = seed();
    let s = status(&open, &validate_spec(&open.spec), &Observation::default());
    let auth = authenticated(&s);
    assert_eq!(
        (auth.status.as_str(), auth.reason.as_str()),
        ("False", "Unauthenticated")
    );
    assert!(auth.message.starts_with("Warning:"), "{}", auth.message);

    let mut keyed = seed();
    keyed.spec.policy = Some(
        serde_json::from_value(serde_json::json!({
            "budgetStore": {"redis": {"address": "redis:6379", "credentialsSecretRef": {"name": "redis-auth"}}},
            "budgets": [{"name": "daily", "maxTokens": 1000}]
        }))
        .unwrap(),
    );
    keyed.spec.auth = Some(AuthSpec {
        api_keys: Some(ApiKeysSpec {
            secret_ref: SecretKeyRef {
                name: "router-keys".into(),
                key: None,
            },
        }),
        ..AuthSpec::default()
    });
    let ok = validate_spec(&keyed.spec);
    assert!(ok.is_ok(), "{ok:?}");
    let s = status(&keyed, &ok, &Observation::default());
    let auth = authenticated(&s);
    assert_eq!(
        (auth.status.as_str(), auth.reason.as_str()),
        ("True", "APIKeys")
    );
    let pod = deployment(&keyed, &settings())
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let mounts = pod.containers[0].volume_mounts.clone().unwrap();
    for secret in ["router-keys", "redis-auth"] {
        let path = format!("/var/run/secrets/llmkube/{secret}");
        assert!(
            mounts
                .iter()
                .any(|m| m.mount_path == path && m.read_only == Some(true)),
            "{secret} is mounted"
        );
    }
}

#[test]
fn gateways_export_to_the_collector_the_controller_names() {
    let env = |settings: &Settings| {
        let pod = deployment(&seed(), settings)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        (pod.containers[0].env.clone().unwrap().into_iter())
            .map(|e| (e.name, e.value))
            .collect::<Vec<_>>()
    };
    assert!(
        env(&settings())
            .iter()
            .all(|(n, _)| !n.starts_with("OTEL_"))
    );
    let settings = Settings {
        otlp: Some(llmkube_operator::reconcile::model_router::OtlpTarget {
            endpoint: "http://otel-collector.observability:4317".into(),
            protocol: Some("grpc".into()),
        }),
        ..settings()
    };
    let env = env(&settings);
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    assert_eq!(
        value("OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
        Some("http://otel-collector.observability:4317")
    );
    assert_eq!(
        value("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        value("OTEL_SERVICE_NAME").as_deref(),
        Some("llmkube-gateway")
    );
}

#[test]
fn openshift_mode_leaves_the_uid_to_the_restricted_scc() {
    let settings = Settings {
        fixed_uid: false,
        allowance: Default::default(),
        ..settings()
    };
    let pod = deployment(&seed(), &settings)
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let sc = pod.containers[0].security_context.clone().unwrap();
    assert_eq!((sc.run_as_user, sc.run_as_non_root), (None, Some(true)));
    let psc = pod.security_context.unwrap();
    assert_eq!((psc.run_as_user, psc.fs_group), (None, None));
}

#[test]
fn a_gateway_image_must_come_from_an_allowed_registry() {
    let mut spec = seed().spec;
    let mut s = settings();
    assert!(
        refusals(&spec, &s).is_empty(),
        "no override: the controller's image"
    );
    spec.proxy = Some(ProxySpec {
        image: Some("docker.io/attacker/secret-reader:1".into()),
        ..ProxySpec::default()
    });
    let refused = refusals(&spec, &s);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].path, "spec.proxy.image");
    assert!(
        refused[0].message.contains("--allowed-image-prefix"),
        "{}",
        refused[0].message
    );
    s.allowance.image_prefixes = vec!["docker.io/attacker/".into()];
    assert!(refusals(&spec, &s).is_empty(), "the admin allowed it");
}

#[test]
fn budgets_without_a_store_use_the_chart_default_redis() {
    let mut r = seed();
    r.spec.proxy.get_or_insert_default().replicas = Some(3);
    r.spec.policy = Some(
        serde_json::from_value(
            serde_json::json!({"budgets": [{"name": "daily", "maxTokens": 1000}]}),
        )
        .unwrap(),
    );
    // Without a default, three replicas would each allow the whole budget: refused.
    assert!(validate_spec(&with_defaults(&r.spec, &settings())).is_err());
    let shared = Settings {
        default_budget_store: Some(RedisStoreSpec {
            address: "redis.llmkube-system.svc:6379".into(),
            credentials_secret_ref: Some(SecretRef {
                name: "redis-auth".into(),
            }),
            ..RedisStoreSpec::default()
        }),
        ..settings()
    };
    let spec = with_defaults(&r.spec, &shared);
    validate_spec(&spec).unwrap();
    let store = spec.policy.unwrap().budget_store.unwrap().redis.unwrap();
    assert_eq!(store.address, "redis.llmkube-system.svc:6379");
    let pod = deployment(&r, &shared).spec.unwrap().template.spec.unwrap();
    let mounts = pod.containers[0].volume_mounts.clone().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_path == "/var/run/secrets/llmkube/redis-auth")
    );
}
