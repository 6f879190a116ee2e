//! Test harness: a gateway and mock backends on loopback, and a small HTTP client.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llmkube_gateway::{GatewayConfig, RunningGateway, start};
use llmkube_mock_upstream::MockUpstream;

/// A gateway serving a router file in a temporary directory.
pub struct Gw {
    pub gw: RunningGateway,
    pub dir: tempfile::TempDir,
    /// More directories the gateway reads (e.g. secrets), removed with it.
    pub dirs: Vec<tempfile::TempDir>,
    pub client: Client<HttpConnector, Full<Bytes>>,
}

/// Starts a gateway for `spec` (the YAML under `spec:`), dialing local backends at the given mocks.
pub async fn gateway(spec: &str, local: &[(&str, &MockUpstream)]) -> Gw {
    gateway_with(spec, local, |_| {}).await
}

/// Like [`gateway`], with a chance to adjust the config.
pub async fn gateway_with(
    spec: &str,
    local: &[(&str, &MockUpstream)],
    tweak: impl FnOnce(&mut GatewayConfig),
) -> Gw {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.yaml");
    let spec = with_audit_file(spec, dir.path());
    std::fs::write(&path, router_yaml("test-router", &spec)).unwrap();
    let mut config = GatewayConfig::new(&path);
    config.resolve.addresses = local
        .iter()
        .map(|(n, m)| (n.to_string(), m.url()))
        .collect::<HashMap<_, _>>();
    config.shutdown_grace = Duration::from_secs(5);
    tweak(&mut config);
    let gw = start(config).await.expect("gateway starts");
    Gw {
        gw,
        dir,
        dirs: Vec::new(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

/// `spec` with audit lines sent to `dir/audit.log` (keeping test output clean), unless the
/// spec sets a policy itself.
pub fn with_audit_file(spec: &str, dir: &std::path::Path) -> String {
    if spec.contains("policy:") {
        return spec.to_owned();
    }
    let file = dir.join("audit.log");
    format!(
        "{spec}  policy: {{auditLog: {{sink: file, filePath: '{}'}}}}\n",
        file.display()
    )
}

pub fn router_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: inference.llmkube.dev/v1alpha1\nkind: ModelRouter\nmetadata: {{name: {name}, namespace: test}}\nspec:\n{spec}"
    )
}

/// A response read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The backend that answered, per the gateway's response header.
    pub fn backend(&self) -> &str {
        self.header("x-llmkube-backend")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Gw {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.url())
    }

    /// Sends a request and returns the response with its body unread.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> http::Response<Incoming> {
        let mut req = Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("gateway answered within 30s")
            .expect("request reached the gateway")
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let resp = self.send(method, path, headers, body).await;
        let (parts, body) = resp.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(30), body.collect())
            .await
            .expect("body within 30s")
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `POST /v1/chat/completions` with a one-message body for `model`.
    pub async fn chat(&self, model: &str, headers: &[(&str, &str)]) -> Resp {
        self.request(
            Method::POST,
            "/v1/chat/completions",
            headers,
            chat_body(model, false),
        )
        .await
    }

    /// `POST /v1/chat/completions` with `"stream": true`; the body is left to the caller.
    pub async fn stream_chat(&self, model: &str) -> http::Response<Incoming> {
        self.send(
            Method::POST,
            "/v1/chat/completions",
            &[],
            chat_body(model, true),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// Rewrites the router file (same audit file) and reloads it now.
    pub fn rewrite(&self, spec: &str) -> Result<bool, String> {
        let spec = with_audit_file(spec, self.dir.path());
        std::fs::write(
            self.dir.path().join("router.yaml"),
            router_yaml("test-router", &spec),
        )
        .unwrap();
        self.gw.reload_now().map_err(|e| e.to_string())
    }
}

pub fn chat_body(model: &str, stream: bool) -> String {
    serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

/// Asserts an OpenAI-shaped error with this status and type.
pub fn assert_error(resp: &Resp, status: u16, kind: &str) {
    assert_eq!(resp.status.as_u16(), status, "body: {}", resp.text());
    let v = resp.json();
    assert_eq!(v["error"]["type"], kind, "body: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        v["error"].get("param").is_some() && v["error"].get("code").is_some(),
        "OpenAI shape: {v}"
    );
    assert!(!resp.header("x-request-id").is_empty());
}

/// Two local backends and one cloud backend, the usual cast.
pub struct Cast {
    pub a: MockUpstream,
    pub b: MockUpstream,
    pub cloud: MockUpstream,
}

impl Cast {
    pub async fn new() -> Self {
        Cast {
            a: MockUpstream::start("local-a").await.unwrap(),
            b: MockUpstream::start("local-b").await.unwrap(),
            cloud: MockUpstream::start("cloud").await.unwrap(),
        }
    }

    /// `backends:` for the cast; the cloud one authenticates with the `openai` Secret.
    pub fn backends(&self) -> String {
        format!(
            "  backends:
    - {{name: local-a, inferenceServiceRef: {{name: a}}, capabilities: [chat]}}
    - {{name: local-b, displayName: llama-b, inferenceServiceRef: {{name: b}}, capabilities: [chat, vision]}}
    - {{name: cloud, displayName: gpt-x, external: {{provider: openai, url: '{}', model: gpt-4o-mini, credentialsSecretRef: {{name: openai}}}}, capabilities: [chat, vision]}}
",
            self.cloud.url()
        )
    }

    pub async fn gateway(&self, rest: &str) -> Gw {
        gateway(
            &format!("{}{rest}", self.backends()),
            &[("local-a", &self.a), ("local-b", &self.b)],
        )
        .await
    }
}

/// Waits (up to 2s) until the audit file at `path` has at least `n` lines, and returns them.
pub async fn audit_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lines
}

/// Waits (up to 10s) until `cond` holds.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not reached within 10s");
}

/// Runs `gateway/tests/python/<script>` with pytest against `gw` and asserts that exactly
/// `passed` tests passed. Returns `false` (skipped) when `LLMKUBE_SKIP_PYTHON` is set.
pub async fn pytest(gw: &Gw, script: &str, passed: usize) -> bool {
    if std::env::var_os("LLMKUBE_SKIP_PYTHON").is_some() {
        eprintln!("LLMKUBE_SKIP_PYTHON is set: skipping {script}");
        return false;
    }
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let base = gw.url("/v1");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &path])
            .env("LLMKUBE_GATEWAY_URL", base)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed (install its packages with: pip install -r gateway/tests/python/requirements.txt)\n{out}\n{err}"
    );
    assert!(out.contains(&format!("{passed} passed")), "{out}");
    true
}
