//! Reconcile flows through kube's `tower-test` mock client against an in-memory API:
//! create, update, status patch, not-found and conflict, for all three kinds.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

mod support;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use llmkube_operator::controller::metrics::Metrics;
use llmkube_operator::controller::{Context, Error, Settings, error_policy};
use llmkube_operator::controller::{inference_service, model, model_router};
use llmkube_operator::crd::inference_service::InferenceService;
use llmkube_operator::crd::model::Model;
use llmkube_operator::reconcile::inference_service::Settings as InferenceSettings;
use llmkube_operator::reconcile::model_router::Settings as RouterSettings;
use llmkube_router::spec::ModelRouter;
use serde_json::{Value, json};
use support::fake_api::{Call, FakeApi};

fn encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const ROUTER: &str =
    "/apis/inference.llmkube.dev/v1alpha1/namespaces/default/modelrouters/secure-router";
const CM: &str = "/api/v1/namespaces/default/configmaps/secure-router-router-proxy";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/secure-router-router-proxy";

fn context(client: kube::Client) -> Arc<Context> {
    let settings = Settings {
        inference: InferenceSettings {
            ca_cert_configmap: Some("corp-ca".into()),
            ..InferenceSettings::default()
        },
        router: RouterSettings {
            gateway_image: "registry.internal.corp/llmkube/llmkube-gateway:0.1.0".into(),
            image_pull_secrets: vec![],
            default_litellm_url: None,
            default_budget_store: None,
            fixed_uid: true,
            allowance: Default::default(),
            otlp: None,
        },
    };
    Arc::new(Context::new(client, settings, Arc::new(Metrics::default())))
}

fn seed_router() -> Value {
    let yaml = include_str!("../../examples/seed/secure-router.yaml");
    let mut v: Value = serde_yaml_ng::from_str(yaml).unwrap();
    v["metadata"]["uid"] = json!("router-uid");
    v["metadata"]["generation"] = json!(1);
    v
}

fn typed<K: serde::de::DeserializeOwned>(v: Value) -> Arc<K> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn ready_isvc() -> Value {
    json!({"apiVersion": "inference.llmkube.dev/v1alpha1", "kind": "InferenceService",
           "metadata": {"name": "llama-3-8b", "namespace": "default"},
           "spec": {"modelRef": "llama-3-8b", "runtime": "llamacpp"},
           "status": {"phase": "Ready"}})
}

fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}})
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

/// A fake API holding the seed's router, its Ready InferenceService and its Secret.
fn seeded() -> (Arc<FakeApi>, Arc<Context>) {
    let (client, fake) = FakeApi::start();
    fake.put(seed_router());
    fake.put(ready_isvc());
    fake.put(secret("litellm-key"));
    (fake, context(client))
}

/// Reconciles the router as currently stored (with the status the controller wrote).
async fn reconcile_router(fake: &FakeApi, ctx: &Arc<Context>) -> Result<Action, Error> {
    let router = typed::<ModelRouter>(fake.get(ROUTER).unwrap());
    model_router::reconcile(router, Arc::clone(ctx)).await
}

#[tokio::test]
async fn a_new_router_gets_its_gateway_objects_then_a_status() {
    let (fake, ctx) = seeded();

    let action = reconcile_router(&fake, &ctx).await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(15)),
        "provisioning: look again soon"
    );
    let calls = fake.take_calls();
    let base = "/namespaces/default";
    assert_eq!(
        writes(&calls),
        [
            format!("PATCH /api/v1{base}/configmaps/secure-router-router-proxy"),
            format!("PATCH /api/v1{base}/serviceaccounts/secure-router-router-proxy"),
            format!(
                "PATCH /apis/rbac.authorization.k8s.io/v1{base}/roles/secure-router-router-proxy"
            ),
            format!(
                "PATCH /apis/rbac.authorization.k8s.io/v1{base}/rolebindings/secure-router-router-proxy"
            ),
            format!("PATCH /api/v1{base}/services/secure-router-router-proxy"),
            format!("PATCH {DEPLOY}"),
            format!("PATCH {ROUTER}/status"),
        ]
    );
    for c in calls.iter().filter(|c| c.method == "PATCH") {
        assert!(
            c.query.contains("fieldManager=llmkube-controller") && c.query.contains("force=true"),
            "server-side apply as llmkube-controller: {}",
            c.query
        );
    }
    let cm = fake.get(CM).unwrap();
    assert_eq!(cm["metadata"]["ownerReferences"][0]["uid"], "router-uid");
    assert_eq!(cm["data"]["rules.sha256"].as_str().unwrap().len(), 64);
    assert!(cm["binaryData"]["rules.wasm"].is_string(), "base64 module");

    let status = &fake.get(ROUTER).unwrap()["status"];
    assert_eq!(status["phase"], "Provisioning");
    assert_eq!(
        status["endpoint"],
        "http://secure-router-router-proxy.default.svc.cluster.local:8080/v1/chat/completions"
    );
    assert_eq!(status["activeRules"], 1);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["backends"][0]["address"],
        "http://llama-3-8b.default.svc.cluster.local:8080"
    );
    assert_eq!(status["backends"][1]["healthy"], true);
    let conditions: Vec<(&str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("Validated", "True"),
            ("BackendsReady", "True"),
            ("Available", "False"),
            // The seed's router has a cloud backend and no spec.auth: visible, not refused.
            ("Authenticated", "False")
        ]
    );
}

#[tokio::test]
async fn status_follows_the_gateway_and_is_only_written_when_it_changes() {
    let (fake, ctx) = seeded();
    reconcile_router(&fake, &ctx).await.unwrap();
    let first_transition =
        fake.get(ROUTER).unwrap()["status"]["conditions"][0]["lastTransitionTime"].clone();

    // The gateway pod becomes ready.
    fake.edit(DEPLOY, |d| {
        d["status"] = json!({"readyReplicas": 1, "replicas": 1})
    });
    fake.take_calls();
    let action = reconcile_router(&fake, &ctx).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let status = fake.get(ROUTER).unwrap()["status"].clone();
    assert_eq!(status["phase"], "Ready");
    assert_eq!(
        status["conditions"][0]["lastTransitionTime"], first_transition,
        "Validated did not change"
    );
    assert!(writes(&fake.take_calls()).contains(&format!("PATCH {ROUTER}/status")));

    // Nothing changed: the objects are re-applied (a no-op for the API server), status is not written.
    reconcile_router(&fake, &ctx).await.unwrap();
    assert!(
        !writes(&fake.take_calls())
            .iter()
            .any(|w| w.ends_with("/status"))
    );
}

#[tokio::test]
async fn budget_use_reported_by_the_gateway_reaches_status_at_a_bounded_rate() {
    let (fake, ctx) = seeded();
    fake.edit(ROUTER, |r| {
        r["spec"]["policy"] = json!({"budgets": [{"name": "daily", "maxTokens": 1000}]});
    });
    reconcile_router(&fake, &ctx).await.unwrap();
    fake.edit(DEPLOY, |d| {
        d["status"] = json!({"readyReplicas": 1, "replicas": 1})
    });
    let proxy =
        "/api/v1/namespaces/default/services/secure-router-router-proxy:metrics/proxy/budgets";
    let report = json!([{"name": "daily", "scope": "router", "windowStart": "2026-11-26T00:00:00Z",
        "windowSeconds": 86400, "usedTokens": 250, "maxTokens": 1000, "usedUSD": "0", "percent": 25}]);
    fake.put_at(proxy, report.clone());
    fake.take_calls();
    let action = reconcile_router(&fake, &ctx).await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(30)),
        "refreshed while Ready"
    );
    assert!(
        fake.take_calls()
            .iter()
            .any(|c| c.method == "GET" && c.path == proxy)
    );
    assert_eq!(
        fake.get(ROUTER).unwrap()["status"]["budgetUtilization"],
        report
    );

    // Asked again at once (another event): the gateway is not read again, status keeps it.
    fake.put_at(proxy, json!([]));
    reconcile_router(&fake, &ctx).await.unwrap();
    assert!(!fake.take_calls().iter().any(|c| c.path == proxy));
    assert_eq!(
        fake.get(ROUTER).unwrap()["status"]["budgetUtilization"],
        report
    );
}

#[tokio::test]
async fn a_rule_change_rewrites_the_config_map_but_not_the_pod_template() {
    let (fake, ctx) = seeded();
    reconcile_router(&fake, &ctx).await.unwrap();
    let (cm_before, deploy_before) = (fake.get(CM).unwrap(), fake.get(DEPLOY).unwrap());

    fake.edit(ROUTER, |r| {
        r["spec"]["rules"][0]["timeout"] = json!("20s");
        r["spec"]["rules"].as_array_mut().unwrap().push(json!({
            "name": "code-to-cloud",
            "match": {"taskComplexity": "code"},
            "route": {"backends": ["internal-litellm"]}
        }));
        r["metadata"]["generation"] = json!(2);
    });
    reconcile_router(&fake, &ctx).await.unwrap();
    let (cm_after, deploy_after) = (fake.get(CM).unwrap(), fake.get(DEPLOY).unwrap());
    assert_ne!(
        cm_after["data"]["rules.sha256"],
        cm_before["data"]["rules.sha256"]
    );
    assert!(
        cm_after["data"]["router.yaml"]
            .as_str()
            .unwrap()
            .contains("code-to-cloud")
    );
    assert_eq!(
        deploy_after["spec"]["template"], deploy_before["spec"]["template"],
        "no pod restart: the gateway hot-swaps the ConfigMap"
    );
    let status = fake.get(ROUTER).unwrap()["status"].clone();
    assert_eq!(
        (
            status["activeRules"].clone(),
            status["observedGeneration"].clone()
        ),
        (json!(2), json!(2))
    );
}

#[tokio::test]
async fn missing_backends_degrade_and_an_invalid_router_leaves_the_running_gateway_alone() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client);
    fake.put(seed_router());
    // No InferenceService, no Secret.
    reconcile_router(&fake, &ctx).await.unwrap();
    let status = fake.get(ROUTER).unwrap()["status"].clone();
    assert_eq!(status["conditions"][1]["status"], "False");
    assert_eq!(
        status["conditions"][1]["message"],
        "local-llama: InferenceService \"llama-3-8b\" not found; internal-litellm: Secret \"litellm-key\" not found"
    );
    let cm_before = fake.get(CM).unwrap();
    fake.take_calls();

    // An update that breaks the gate and names a module that is not there.
    fake.edit(ROUTER, |r| {
        r["spec"]["rules"][0]["failClosed"] = json!(false);
        r["spec"]["policies"] = json!([{
            "name": "tenants",
            "module": {"configMapKeyRef": {"name": "team-policies", "key": "tenants.wasm"}},
            "sha256": "ab".repeat(32)
        }]);
        r["metadata"]["generation"] = json!(2);
    });
    let action = reconcile_router(&fake, &ctx).await.unwrap();
    assert_eq!(
        action,
        Action::await_change(),
        "nothing to retry until the spec changes"
    );
    let written = writes(&fake.take_calls());
    assert_eq!(
        written,
        [format!("PATCH {ROUTER}/status")],
        "the gateway objects are untouched"
    );
    assert_eq!(
        fake.get(CM).unwrap(),
        cm_before,
        "the last good rules keep serving"
    );
    let status = fake.get(ROUTER).unwrap()["status"].clone();
    assert_eq!(status["phase"], "Failed");
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains("spec.rules[0].failClosed"), "{message}");
    assert!(
        message.contains("spec.policies[0].module.configMapKeyRef: ConfigMap \"team-policies\" not found in namespace \"default\""),
        "{message}"
    );
}

#[tokio::test]
async fn policy_modules_are_copied_only_when_their_sha256_matches() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client);
    let module = b"\0asm\x01\0\0\0".to_vec();
    let digest = llmkube_router::compiler::hex(&<sha2::Sha256 as sha2::Digest>::digest(&module));
    let mut router = seed_router();
    router["spec"]["policies"] = json!([{
        "name": "tenants",
        "module": {"configMapKeyRef": {"name": "team-policies", "key": "tenants.wasm"}},
        "sha256": "0".repeat(64)
    }]);
    fake.put(router);
    fake.put(ready_isvc());
    fake.put(secret("litellm-key"));
    fake.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "team-policies", "namespace": "default"},
                    "binaryData": {"tenants.wasm": encode(&module)}}));

    reconcile_router(&fake, &ctx).await.unwrap();
    let message = fake.get(ROUTER).unwrap()["status"]["conditions"][0]["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains(&format!("has sha256 {digest}, but the policy pins 000")),
        "{message}"
    );
    assert!(fake.get(CM).is_none());

    fake.edit(ROUTER, |r| {
        r["spec"]["policies"][0]["sha256"] = json!(digest)
    });
    reconcile_router(&fake, &ctx).await.unwrap();
    let cm = fake.get(CM).unwrap();
    assert_eq!(cm["binaryData"]["tenants.wasm"], encode(&module));
    assert!(
        cm["data"]["router.yaml"]
            .as_str()
            .unwrap()
            .contains("file: tenants.wasm")
    );
}

#[tokio::test]
async fn a_conflict_is_retried_at_once_and_other_errors_back_off() {
    let (fake, ctx) = seeded();
    fake.conflict_once("/deployments/secure-router-router-proxy");
    let router = typed::<ModelRouter>(fake.get(ROUTER).unwrap());
    let err = model_router::reconcile(Arc::clone(&router), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(
        error_policy(Arc::clone(&router), &err, Arc::clone(&ctx)),
        Action::requeue(Duration::from_secs(1))
    );
    // The retry goes through.
    reconcile_router(&fake, &ctx).await.unwrap();
    assert!(fake.get(DEPLOY).is_some());

    let server_error = Error::Kube(kube::Error::Api(Box::new(
        kube::core::Status::failure("etcd timeout", "InternalError").with_code(500),
    )));
    let delays: Vec<Action> = (0..3)
        .map(|_| error_policy(Arc::clone(&router), &server_error, Arc::clone(&ctx)))
        .collect();
    assert_eq!(
        delays,
        [5, 10, 20].map(|s| Action::requeue(Duration::from_secs(s)))
    );
}

#[tokio::test]
async fn an_inference_service_waits_for_its_model_then_explains_a_failed_download() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client);
    let isvc_path =
        "/apis/inference.llmkube.dev/v1alpha1/namespaces/default/inferenceservices/llama-3-8b";
    fake.put(json!({"apiVersion": "inference.llmkube.dev/v1alpha1", "kind": "InferenceService",
                    "metadata": {"name": "llama-3-8b", "namespace": "default", "uid": "isvc-uid", "generation": 1},
                    "spec": {"modelRef": "llama-3-8b", "runtime": "vllm"}}));
    let reconcile = || async {
        let isvc = typed::<InferenceService>(fake.get(isvc_path).unwrap());
        inference_service::reconcile(isvc, Arc::clone(&ctx))
            .await
            .unwrap()
    };

    // No Model yet: Pending, nothing created.
    reconcile().await;
    let calls = fake.take_calls();
    assert_eq!(writes(&calls), [format!("PATCH {isvc_path}/status")]);
    assert_eq!(fake.get(isvc_path).unwrap()["status"]["phase"], "Pending");

    // The Model is Ready (an https source): Service and Deployment are applied.
    let model = json!({"apiVersion": "inference.llmkube.dev/v1alpha1", "kind": "Model",
                       "metadata": {"name": "llama-3-8b", "namespace": "default"},
                       "spec": {"source": "https://models.internal.corp/llama.gguf", "sha256": "a".repeat(64)},
                       "status": {"phase": "Ready"}});
    fake.put(model);
    reconcile().await;
    let written = writes(&fake.take_calls());
    assert_eq!(
        written[..2],
        [
            "PATCH /api/v1/namespaces/default/services/llama-3-8b".to_owned(),
            "PATCH /apis/apps/v1/namespaces/default/deployments/llama-3-8b".to_owned(),
        ]
    );
    let svc = fake
        .get("/api/v1/namespaces/default/services/llama-3-8b")
        .unwrap();
    assert_eq!(
        svc["spec"]["ports"][0]["targetPort"], 8000,
        "vLLM's real port"
    );
    let deploy = fake
        .get("/apis/apps/v1/namespaces/default/deployments/llama-3-8b")
        .unwrap();
    assert_eq!(
        deploy["spec"]["template"]["spec"]["initContainers"][0]["name"],
        "model-downloader"
    );
    assert_eq!(
        fake.get(isvc_path).unwrap()["status"]["phase"],
        "Progressing"
    );

    // Its pod's model-downloader failed with curl exit 22 (HTTP 404).
    fake.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "llama-3-8b-abc", "namespace": "default",
                     "labels": deploy["spec"]["template"]["metadata"]["labels"].clone()},
        "status": {"initContainerStatuses": [{
            "name": "model-downloader", "ready": false, "restartCount": 2, "image": "curl", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 22, "message": "{\"error\":\"curl failed\",\"exitCode\":22}",
                                         "finishedAt": "2026-11-24T03:00:00Z"}}}]}}));
    reconcile().await;
    let calls = fake.take_calls();
    let status = fake.get(isvc_path).unwrap()["status"].clone();
    assert_eq!(status["phase"], "Failed");
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains("HTTP error (e.g. 404"), "{message}");
    let event = calls
        .iter()
        .find(|c| c.method == "POST" && c.path.ends_with("/events"))
        .expect("a Warning Event");
    let event = event.body.clone().unwrap();
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("ModelDownloadFailed"))
    );
    assert_eq!(event["regarding"]["name"], "llama-3-8b");

    // The same failure again: no second Event, no status write.
    reconcile().await;
    let calls = fake.take_calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.method == "POST" || c.path.ends_with("/status"))
    );
}

#[tokio::test]
async fn a_model_follows_its_pvc_and_the_downloader_verdict() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client);
    let model_path = "/apis/inference.llmkube.dev/v1alpha1/namespaces/default/models/llama";
    let model_obj = |source: &str| {
        json!({"apiVersion": "inference.llmkube.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": "llama", "namespace": "default"},
        "spec": {"source": source, "sha256": "b".repeat(64)}})
    };
    let reconcile = || async {
        let m = typed::<Model>(fake.get(model_path).unwrap());
        model::reconcile(m, Arc::clone(&ctx)).await.unwrap();
        fake.get(model_path).unwrap()["status"].clone()
    };

    fake.put(model_obj("pvc://model-cache/llama.gguf"));
    let s = reconcile().await;
    assert_eq!(s["phase"], "Failed");
    assert_eq!(
        s["conditions"][0]["message"],
        "PVC \"model-cache\" not found in namespace \"default\""
    );

    let pvc = |phase: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "model-cache", "namespace": "default"}, "status": {"phase": phase}})
    };
    fake.put(pvc("Pending"));
    let s = reconcile().await;
    assert_eq!(
        (s["phase"].as_str(), s["conditions"][0]["message"].as_str()),
        (
            Some("Pending"),
            Some("PVC \"model-cache\" is Pending, waiting for it to be Bound")
        )
    );
    fake.put(pvc("Bound"));
    let s = reconcile().await;
    assert_eq!(
        (s["phase"].as_str(), s["path"].as_str()),
        (Some("Ready"), Some("/models/llama.gguf"))
    );

    // An https Model whose download hashed differently: Failed with the mismatch.
    fake.put(model_obj("https://models.internal.corp/llama.gguf"));
    let pod = |state: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "llama-x", "namespace": "default",
                     "labels": {"app.kubernetes.io/managed-by": "llmkube-controller", "inference.llmkube.dev/model": "llama"}},
        "status": {"initContainerStatuses": [{"name": "model-downloader", "ready": false, "restartCount": 0,
                                              "image": "curl", "imageID": "", "state": state}]}})
    };
    fake.put(pod(json!({"terminated": {"exitCode": 65, "finishedAt": "2026-11-24T03:00:00Z",
        "message": format!("{{\"error\":\"sha256 mismatch\",\"expected\":\"{}\",\"actual\":\"{}\"}}", "b".repeat(64), "c".repeat(64))}})));
    let s = reconcile().await;
    assert_eq!(s["phase"], "Failed");
    let message = s["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("sha256 mismatch: spec.sha256 is bbbb"),
        "{message}"
    );

    // A verified download: Ready with the computed sha256 and size.
    fake.put(pod(
        json!({"terminated": {"exitCode": 0, "finishedAt": "2026-11-24T03:05:00Z",
        "message": format!("{{\"sha256\":\"{}\",\"size\":4920000000}}", "b".repeat(64))}}),
    ));
    let s = reconcile().await;
    assert_eq!(
        (
            s["phase"].as_str(),
            s["sha256"].as_str(),
            s["size"].as_str()
        ),
        (Some("Ready"), Some("b".repeat(64).as_str()), Some("4.6GiB"))
    );
}

#[test]
fn dependants_are_found_for_watch_events() {
    let router: ModelRouter = serde_json::from_value(seed_router()).unwrap();
    let mut other_ns = router.clone();
    other_ns.metadata.namespace = Some("team-b".into());
    let routers = [router, other_ns];
    let names = |refs: Vec<kube::runtime::reflector::ObjectRef<ModelRouter>>| {
        refs.into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap(), r.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(model_router::routers_using_service(
            &routers,
            "default",
            "llama-3-8b"
        )),
        ["default/secure-router"]
    );
    assert_eq!(
        names(model_router::routers_using_object(
            &routers,
            "team-b",
            "litellm-key"
        )),
        ["team-b/secure-router"]
    );
    assert!(model_router::routers_using_object(&routers, "default", "unrelated").is_empty());
}

// Multi-threaded: the SDK's batch processor runs on the runtime, and shutting it down waits
// for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reconcile_is_a_span_naming_the_object_and_its_result() {
    use llmkube_mock_upstream::otlp::{Collector, StatusCode, attr};
    use llmkube_operator::controller::traces::{TraceSettings, Traces};
    let collector = Collector::start().await.unwrap();
    let (client, fake) = FakeApi::start();
    fake.put(seed_router());
    fake.put(ready_isvc());
    fake.put(secret("litellm-key"));
    let mut ctx = Arc::into_inner(context(client)).unwrap();
    let settings = TraceSettings {
        endpoint: Some(collector.url()),
        protocol: Some(llmkube_router::otel_env::OtlpProtocol::HttpProtobuf),
    };
    ctx.traces = Some(Arc::new(
        Traces::start(&settings).unwrap().expect("traces on"),
    ));
    let ctx = Arc::new(ctx);
    fake.conflict_once("/deployments/secure-router-router-proxy");
    reconcile_router(&fake, &ctx).await.unwrap_err();
    reconcile_router(&fake, &ctx).await.unwrap();
    let traces = Arc::clone(ctx.traces.as_ref().unwrap());
    tokio::task::spawn_blocking(move || traces.shutdown())
        .await
        .unwrap();
    collector
        .wait("two reconcile spans", |r| r.spans.len() >= 2)
        .await;
    let got = collector.got.lock().unwrap();
    assert_eq!(got.service_names[0], "llmkube-controller");
    let (failed, ok) = (&got.spans[0], &got.spans[1]);
    for span in [failed, ok] {
        assert_eq!(span.name, "reconcile ModelRouter");
        let a = |k| attr(&span.attributes, k);
        assert_eq!(a("k8s.namespace.name").as_deref(), Some("default"));
        assert_eq!(a("k8s.object.name").as_deref(), Some("secure-router"));
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    assert_eq!(
        attr(&failed.attributes, "llmkube.reconcile.result").as_deref(),
        Some("error")
    );
    let status = failed.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert!(
        status.message.contains("Kubernetes API"),
        "{}",
        status.message
    );
    assert_eq!(
        attr(&ok.attributes, "llmkube.reconcile.result").as_deref(),
        Some("ok")
    );
}
