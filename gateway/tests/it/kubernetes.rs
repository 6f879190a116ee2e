//! Kubernetes mode: the gateway serves the ConfigMap the controller writes, read and watched
//! through a (loopback, in-process) Kubernetes API, and hot-swaps a changed one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, channel::Channel, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use llmkube_gateway::ConfigMapSource;
use llmkube_gateway::{GatewayConfig, RouterSource, start};
use llmkube_router::bundle::{bundle_files, bundled_spec};
use llmkube_router::compiler::compile;
use llmkube_router::manifest::{ManifestMeta, RouterManifest};
use llmkube_router::spec::ModelRouterSpec;
use serde_json::json;
use tokio::sync::watch;

use crate::policies::policy_wasm;
use crate::support::*;

/// A Kubernetes API serving one ConfigMap: GET, list and watch (streamed) with a
/// `metadata.name` field selector. `set` publishes a new version to every watch.
struct MockApi {
    url: String,
    current: watch::Sender<(u64, ConfigMap)>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl MockApi {
    async fn start(cm: ConfigMap) -> MockApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (current, _) = watch::channel((1, cm));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (tx, log) = (current.clone(), Arc::clone(&queries));
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (tx, log) = (tx.clone(), Arc::clone(&log));
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (tx, log) = (tx.clone(), Arc::clone(&log));
                    async move { Ok::<_, Infallible>(answer(req, &tx, &log)) }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        MockApi {
            url,
            current,
            queries,
        }
    }

    fn set(&self, cm: ConfigMap) {
        self.current.send_modify(|(version, current)| {
            *version += 1;
            *current = cm;
        });
    }

    fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}

fn with_version(mut cm: ConfigMap, version: u64) -> serde_json::Value {
    cm.metadata.resource_version = Some(version.to_string());
    let mut v = serde_json::to_value(cm).unwrap();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("ConfigMap");
    v
}

fn answer(
    req: Request<Incoming>,
    tx: &watch::Sender<(u64, ConfigMap)>,
    log: &Mutex<Vec<String>>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    log.lock()
        .unwrap()
        .push(format!("{} {query}", req.uri().path()));
    let params: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let json_response = |v: serde_json::Value| {
        Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())).boxed())
            .unwrap()
    };
    let (version, cm) = tx.borrow().clone();
    if req
        .uri()
        .path()
        .ends_with("/configmaps/test-router-router-proxy")
    {
        return json_response(with_version(cm, version));
    }
    if params.get("watch") != Some(&"true") {
        return json_response(json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": version.to_string()},
            "items": [with_version(cm, version)],
        }));
    }
    // A watch: stream every version newer than the one asked for.
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (mut sender, body) = Channel::<Bytes, Infallible>::new(4);
    let mut rx = tx.subscribe();
    tokio::spawn(async move {
        let mut sent = from;
        loop {
            let (version, cm) = rx.borrow_and_update().clone();
            if version > sent {
                let event = json!({"type": "MODIFIED", "object": with_version(cm, version)});
                if sender
                    .send(Frame::data(Bytes::from(format!("{event}\n"))))
                    .await
                    .is_err()
                {
                    return;
                }
                sent = version;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(body.boxed())
        .unwrap()
}

/// The ConfigMap the controller writes for `spec` (with the tenant policy module copied in):
/// the bundle's files as its data, as `reconcile::model_router::config_map` writes them.
fn controller_config_map(spec: &str, modules: &[(&str, Vec<u8>)]) -> ConfigMap {
    let spec: ModelRouterSpec = serde_yaml_ng::from_str(spec).unwrap();
    let rules = compile(&spec).unwrap();
    let manifest = RouterManifest {
        api_version: llmkube_router::API_VERSION.into(),
        kind: "ModelRouter".into(),
        metadata: ManifestMeta {
            name: "test-router".into(),
            namespace: Some("test".into()),
        },
        spec: bundled_spec(&spec),
    };
    let modules = modules
        .iter()
        .map(|(n, b)| (n.to_string(), b.clone()))
        .collect();
    let files = bundle_files(&manifest, &rules, &modules).unwrap();
    ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("test-router-router-proxy".into()),
            namespace: Some("test".into()),
            ..Default::default()
        },
        data: Some(files.text),
        binary_data: Some(
            files
                .binary
                .into_iter()
                .map(|(k, v)| (k, ByteString(v)))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn the_gateway_serves_its_config_map_and_hot_swaps_a_change() {
    let cast = Cast::new().await;
    let (_, module) = policy_wasm("llmkube_tenant_allowlist.wasm");
    let digest = llmkube_gateway::policy::module::sha256_hex(&module);
    // What the user applied: the policy module comes from a ConfigMap key; the controller
    // copies it into the gateway's ConfigMap and points the router at the copy.
    let spec = |default: &str| {
        format!(
            "{}  defaultRoute: {default}
  policies:
    - name: tenants
      module: {{configMapKeyRef: {{name: team-policies, key: tenants.wasm}}}}
      sha256: {digest}
      config: {{tenants: {{acme: ['*']}}}}
",
            cast.backends()
        )
        .replace("  backends:", "backends:")
        .replace("\n  ", "\n")
    };
    let api = MockApi::start(controller_config_map(
        &spec("local-a"),
        &[("tenants", module.clone())],
    ))
    .await;
    let mut config = GatewayConfig::with_source(RouterSource::ConfigMap(ConfigMapSource {
        client: api.client(),
        namespace: "test".into(),
        name: "test-router-router-proxy".into(),
    }));
    config.resolve.addresses = [("local-a", &cast.a), ("local-b", &cast.b)]
        .iter()
        .map(|(n, m)| (n.to_string(), m.url()))
        .collect();
    let gw = Gw {
        gw: start(config)
            .await
            .expect("gateway starts from the ConfigMap"),
        dir: tempfile::tempdir().unwrap(),
        dirs: Vec::new(),
        client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
    };
    assert_eq!(gw.gw.router_name(), "test-router");
    let tenant = [("x-tenant", "acme")];
    assert_eq!(gw.chat("anything", &tenant).await.backend(), "local-a");
    assert_error(&gw.chat("anything", &[]).await, 401, "policy_rejected");

    // The controller rewrites the ConfigMap: the default route moves to local-b.
    let started = Instant::now();
    api.set(controller_config_map(
        &spec("local-b"),
        &[("tenants", module.clone())],
    ));
    let mut backend = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        backend = gw.chat("anything", &tenant).await.backend().to_owned();
        if backend == "local-b" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        backend, "local-b",
        "the new rules are served without a restart"
    );
    eprintln!("ConfigMap change served after {:?}", started.elapsed());

    // A broken version is refused; the last good router keeps serving.
    let mut broken = controller_config_map(&spec("local-b"), &[("tenants", module)]);
    broken.binary_data.as_mut().unwrap().remove("tenants.wasm");
    api.set(broken);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.chat("anything", &tenant).await.backend(), "local-b");
    let metrics = gw.get("/metrics").await.text();
    assert!(
        metrics.contains(r#"llmkube_router_reloads_total{result="rejected"} 1"#),
        "{metrics}"
    );

    let queries = api.queries.lock().unwrap().clone();
    assert!(
        queries.iter().any(|q| q.contains("watch=true")
            && q.contains("fieldSelector=metadata.name%3Dtest-router-router-proxy")),
        "watches only its own ConfigMap (RBAC resourceNames): {queries:?}"
    );
    gw.gw.shutdown().await;
}
