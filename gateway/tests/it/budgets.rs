//! `policy.budgets`: a request that would start over a budget gets 429 with `Retry-After`;
//! reservations keep concurrent requests from overshooting; scopes count by router, rule and
//! team; spend is priced; and with Redis two gateways share one count, with `failureMode`
//! deciding what happens while Redis is down.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Method;
use llmkube_mock_upstream::MockUpstream;

use crate::support::*;

/// Every answer of the mock uses 21 tokens (9 prompt, 12 completion).
const USED: u64 = 21;

fn spec(budgets: &str, extra_policy: &str) -> String {
    let extra_policy = if extra_policy.contains("auditLog") {
        extra_policy.to_owned()
    } else {
        format!("{extra_policy}    auditLog: {{sink: file, filePath: /dev/null}}\n")
    };
    format!(
        "  backends:
    - name: local-a
      inferenceServiceRef: {{name: a}}
      costPerMillionTokens: {{promptUSD: '1', completionUSD: '2'}}
  rules:
    - {{name: special, match: {{models: ['special-*']}}, route: {{backends: [local-a]}}}}
  defaultRoute: local-a
  policy:
    budgets:
{budgets}{extra_policy}"
    )
}

/// A chat request for `model` capped at `max_tokens`, as `team`.
async fn ask(gw: &Gw, model: &str, max_tokens: u64, team: Option<&str>) -> Resp {
    let body = serde_json::json!({
        "model": model, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let headers: Vec<(&str, &str)> = team.map(|t| ("x-llmkube-team", t)).into_iter().collect();
    gw.request(
        Method::POST,
        "/v1/chat/completions",
        &headers,
        body.to_string(),
    )
    .await
}

async fn report(gw: &Gw) -> serde_json::Value {
    let addr = gw.gw.metrics_addr.expect("metrics listener");
    let url = format!("http://{addr}/budgets");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap();
    serde_json::from_slice(&body.to_bytes()).unwrap()
}

async fn budget_gateway(mock: &MockUpstream, spec: &str) -> Gw {
    gateway_with(spec, &[("local-a", mock)], |c| {
        c.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    })
    .await
}

#[tokio::test]
async fn a_spent_budget_answers_429_with_retry_after_and_reaches_no_backend() {
    let mock = MockUpstream::start("local-a").await.unwrap();
    let audit = tempfile::tempdir().unwrap();
    let audit_log = audit.path().join("audit.log");
    let spec = spec(
        "      - {name: all, maxTokens: 50, windowSeconds: 600}\n",
        &format!(
            "    auditLog: {{sink: file, filePath: '{}'}}\n",
            audit_log.display()
        ),
    );
    let gw = budget_gateway(&mock, &spec).await;
    // 0, 21 and 42 tokens used are under 50: three requests start; the fourth would start
    // with 63 used.
    for _ in 0..3 {
        assert_eq!(ask(&gw, "m", 12, None).await.status, 200);
    }
    let refused = ask(&gw, "m", 12, None).await;
    assert_error(&refused, 429, "rate_limit_error");
    assert_eq!(refused.json()["error"]["code"], "budget_exceeded");
    let retry: u64 = refused.header("retry-after").parse().unwrap();
    assert!(
        (1..=600).contains(&retry),
        "seconds to the window's end: {retry}"
    );
    assert_eq!(
        mock.request_count(),
        3,
        "the refused request reached no backend"
    );

    let lines = audit_lines(&audit_log, 4).await;
    assert_eq!(lines[3]["outcome"], "budget_exceeded");
    assert_eq!(lines[3]["status"], 429);
    let r = report(&gw).await;
    assert_eq!(r[0]["name"], "all");
    assert_eq!(r[0]["usedTokens"], 3 * USED);
    assert_eq!(r[0]["percent"], 3 * USED * 100 / 50);
    let m = gw.get("/metrics").await.text();
    assert!(m.contains(r#"llmkube_router_budget_refused_total{router="test-router",budget="all",failure_mode=""} 1"#), "{m}");
}

#[tokio::test]
async fn fifty_concurrent_requests_overshoot_by_at_most_one_reservation() {
    let mock = MockUpstream::start("local-a").await.unwrap();
    mock.update(|b| b.header_delay = Duration::from_millis(50));
    let gw = budget_gateway(&mock, &spec("      - {name: all, maxTokens: 200}\n", "")).await;
    // The prompt's strings ("user", "hi") are 2 estimated tokens: each request reserves 2 + 19
    // = 21, what it then uses.
    let answers = futures::future::join_all((0..50).map(|_| ask(&gw, "m", 19, None))).await;
    let served = answers.iter().filter(|r| r.status == 200).count() as u64;
    let refused = answers.iter().filter(|r| r.status == 429).count() as u64;
    assert_eq!(served + refused, 50);
    assert!(refused > 0 && served > 0);
    let used = report(&gw).await[0]["usedTokens"].as_u64().unwrap();
    assert_eq!(used, served * USED);
    assert!(
        used <= 200 + USED,
        "overshoot beyond one reservation: {used}"
    );
    assert!(used >= 200, "the budget was used up: {used}");
    assert_eq!(
        report(&gw).await[0].get("reservedTokens"),
        None,
        "nothing left reserved"
    );
}

#[tokio::test]
async fn scopes_count_per_team_and_per_rule_and_spend_is_priced() {
    let mock = MockUpstream::start("local-a").await.unwrap();
    let budgets = "      - {name: per-team, scope: team, maxTokens: 30}
      - {name: special, scope: rule, ruleName: special, maxTokens: 20}
      - {name: dollars, maxUSD: '0.0001'}
";
    let gw = budget_gateway(&mock, &spec(budgets, "")).await;
    for _ in 0..2 {
        assert_eq!(ask(&gw, "m", 5, Some("red")).await.status, 200);
    }
    let r = ask(&gw, "m", 5, Some("red")).await;
    assert_eq!(r.status, 429);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"per-team\"")
    );
    assert_eq!(
        ask(&gw, "m", 5, Some("blue")).await.status,
        200,
        "another team's count"
    );
    assert_eq!(ask(&gw, "special-1", 5, None).await.status, 200);
    let r = ask(&gw, "special-1", 5, None).await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"special\"")
    );
    // Four requests served at $0.000033 each: the fourth started at $0.000099 < $0.0001, and
    // a fifth would start over it.
    assert_eq!(ask(&gw, "m", 5, Some("green")).await.status, 429);
    let report = report(&gw).await;
    let entry = |name: &str, key: Option<&str>| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name && e["key"].as_str() == key)
            .unwrap_or_else(|| panic!("{name} {key:?} in {report}"))
            .clone()
    };
    assert_eq!(entry("per-team", Some("red"))["usedTokens"], 2 * USED);
    assert_eq!(entry("per-team", Some("blue"))["usedTokens"], USED);
    assert_eq!(entry("per-team", Some("-"))["usedTokens"], USED);
    assert_eq!(entry("special", Some("special"))["usedTokens"], USED);
    assert_eq!(entry("dollars", None)["usedUSD"], "0.000132");
}

/// A real `redis-server` on a free port, stopped on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis { child: None, port };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server; .ci/run installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn store(&self) -> String {
        format!(
            "    budgetStore: {{redis: {{address: '127.0.0.1:{}', timeoutMs: 200}}}}\n",
            self.port
        )
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `llmkube-gateway` process (the binary this package builds) serving `spec` on a free port.
struct GatewayProcess {
    child: Child,
    url: String,
    metrics: String,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    async fn start(spec: &str, mock: &MockUpstream) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let router = dir.path().join("router.yaml");
        std::fs::write(&router, router_yaml("test-router", spec)).unwrap();
        let port = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (api, metrics) = (port(), port());
        let child = Command::new(env!("CARGO_BIN_EXE_llmkube-gateway"))
            .arg("--router")
            .arg(&router)
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .args(["--backend-address", &format!("local-a={}", mock.url())])
            .arg("--no-watch")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gw = GatewayProcess {
            child,
            url: format!("http://127.0.0.1:{api}"),
            metrics: format!("http://127.0.0.1:{metrics}"),
            _dir: dir,
        };
        for _ in 0..300 {
            if gw.get(&format!("{}/readyz", gw.url)).await.0 == 200 {
                return gw;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the gateway process did not become ready");
    }

    async fn get(&self, url: &str) -> (u16, String) {
        self.send(http::Request::get(url).body(Default::default()).unwrap())
            .await
    }

    async fn ask(&self) -> u16 {
        let body = serde_json::json!({"model": "m", "max_tokens": 12,
            "messages": [{"role": "user", "content": "hi"}]});
        let req = http::Request::post(format!("{}/v1/chat/completions", self.url))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        self.send(req).await.0
    }

    async fn used(&self) -> u64 {
        let (_, body) = self.get(&format!("{}/budgets", self.metrics)).await;
        let report: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        report[0]["usedTokens"].as_u64().unwrap_or(0)
    }

    async fn send(&self, req: http::Request<http_body_util::Full<bytes::Bytes>>) -> (u16, String) {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        match client.request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                    .unwrap_or_default();
                (status, body)
            }
            Err(_) => (0, String::new()),
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_gateway_processes_sharing_redis_stop_together_at_the_cap() {
    let redis = Redis::start();
    let mock = MockUpstream::start("local-a").await.unwrap();
    let spec = spec("      - {name: shared, maxTokens: 100}\n", &redis.store());
    let one = GatewayProcess::start(&spec, &mock).await;
    let two = GatewayProcess::start(&spec, &mock).await;
    // Used before each: 0, 21, 42, 63, 84 (< 100), alternating processes.
    for i in 0..5 {
        let gw = if i % 2 == 0 { &one } else { &two };
        assert_eq!(gw.ask().await, 200, "request {i}");
        // Settling is off the request path: let it land before the next check.
        for _ in 0..100 {
            if gw.used().await == (i + 1) * USED {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for gw in [&one, &two] {
        assert_eq!(gw.used().await, 5 * USED, "both read the shared count");
        assert_eq!(gw.ask().await, 429, "and both stop at the cap");
    }
    assert_eq!(mock.request_count(), 5);
}

#[tokio::test]
async fn with_redis_down_a_closed_budget_refuses_and_an_open_one_counts_locally() {
    let mut redis = Redis::start();
    let mock = MockUpstream::start("local-a").await.unwrap();
    let closed = budget_gateway(
        &mock,
        &spec("      - {name: strict, maxTokens: 1000}\n", &redis.store()),
    )
    .await;
    let open = budget_gateway(
        &mock,
        &spec(
            "      - {name: lenient, maxTokens: 30, failureMode: open}\n",
            &redis.store(),
        ),
    )
    .await;
    assert_eq!(ask(&closed, "m", 5, None).await.status, 200);
    redis.stop();

    let r = ask(&closed, "m", 5, None).await;
    assert_error(&r, 503, "unavailable");
    assert_eq!(r.json()["error"]["code"], "budget_store_unavailable");
    // Open: counted in the replica's memory, so the cap still holds while Redis is down.
    assert_eq!(ask(&open, "m", 5, None).await.status, 200);
    assert_eq!(ask(&open, "m", 5, None).await.status, 200);
    assert_eq!(ask(&open, "m", 5, None).await.status, 429);
    let m = closed.get("/metrics").await.text();
    assert!(m.contains(r#"llmkube_router_budget_store_errors_total{router="test-router",budget="strict",failure_mode="closed"} 1"#), "{m}");
    let m = open.get("/metrics").await.text();
    assert!(
        m.contains(r#"budget="lenient",failure_mode="open"} 3"#),
        "{m}"
    );

    // Back up: the shared count is used again.
    redis.restart();
    let mut ok = false;
    for _ in 0..50 {
        if ask(&closed, "m", 5, None).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the gateway reconnects to Redis");
}

#[tokio::test]
async fn the_official_openai_sdk_sees_usage_and_a_spent_budget() {
    let mock = MockUpstream::start("local-a").await.unwrap();
    let gw = budget_gateway(&mock, &spec("      - {name: tiny, maxTokens: 30}\n", "")).await;
    if !pytest(&gw, "test_openai_sdk_budget.py", 3).await {
        return;
    }
    assert_eq!(
        mock.request_count(),
        2,
        "the refused request reached no backend"
    );
}
