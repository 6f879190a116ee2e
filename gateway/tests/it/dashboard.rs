//! The chart's Grafana dashboard against a real Prometheus (the Debian `prometheus` package)
//! scraping a gateway under load: every query of every panel returns data. Grafana's variables
//! are replaced as Grafana would for this one router.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::policies::wasm_dir;
use crate::support::*;

const DASHBOARD: &str = include_str!("../../../charts/llmkube/dashboards/llmkube-gateway.json");

/// A Prometheus server that is killed with the test.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts Prometheus scraping `target` (`host:port`, `/metrics`) every second.
fn prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: gateway\n    static_configs: [{{targets: ['{target}']}}]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run prometheus ({e}); install the Debian package (.ci/run does)")
        });
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result of an instant query (`data.result`), or `None` while Prometheus is not up.
async fn query(gw: &Gw, prom: &Prometheus, q: &str) -> Option<Vec<serde_json::Value>> {
    let req = http::Request::get(format!("{}/api/v1/query?query={}", prom.url, encode(q)))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = gw.client.request(req).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    assert_eq!(json["status"], "success", "{q}: {json}");
    json["data"]["result"].as_array().cloned()
}

/// Every `(panel title, expression)` of the dashboard, with Grafana's variables replaced.
fn panel_queries(router: &str) -> Vec<(String, String)> {
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = (target["expr"].as_str().unwrap())
                .replace("$router", router)
                .replace("$__rate_interval", "20s")
                .replace("$__range", "5m");
            out.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    out
}

#[tokio::test]
async fn every_dashboard_panel_has_data_from_a_gateway_under_load() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        "  backends:
    - {{name: local-a, inferenceServiceRef: {{name: a}}, costPerMillionTokens: {{promptUSD: '1', completionUSD: '2'}}}}
    - {{name: local-b, inferenceServiceRef: {{name: b}}, costPerMillionTokens: {{promptUSD: '1', completionUSD: '2'}}}}
  rules:
    - {{name: pii-stays-local, match: {{dataClassification: [pii]}}, route: {{backends: [local-a]}}, failClosed: true}}
  defaultRoute: local-b
  policy: {{classification: {{mode: hybrid}}, auditLog: {{sink: file, filePath: '{}'}}}}
",
        dir.path().join("audit.log").display()
    );
    let gw = gateway_with(&spec, &[("local-a", &cast.a), ("local-b", &cast.b)], |c| {
        c.policy_dir = Some(wasm_dir())
    })
    .await;
    let prom = prometheus(&gw.gw.addr.to_string());

    // Load: plain and streamed requests, card numbers the detector keeps local, and once the
    // local backend is gone, fail-closed refusals. Until every panel has data (Prometheus
    // needs two scrapes for a rate), at most a minute.
    let queries = panel_queries("test-router");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing = queries.clone();
    let mut round = 0;
    while !missing.is_empty() && Instant::now() < deadline {
        round += 1;
        if round == 20 {
            cast.a.stop();
        }
        for _ in 0..5 {
            gw.chat("m", &[]).await;
            let streamed = gw
                .request(
                    http::Method::POST,
                    "/v1/chat/completions",
                    &[],
                    chat_body("m", true),
                )
                .await;
            assert_eq!(streamed.status, 200);
            let card = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "card 4111 1111 1111 1111"}]});
            gw.request(
                http::Method::POST,
                "/v1/chat/completions",
                &[],
                card.to_string(),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if round < 25 {
            continue;
        }
        let mut still = Vec::new();
        for (title, expr) in missing {
            let data = query(&gw, &prom, &expr).await.unwrap_or_default();
            let has_number = data.iter().any(|s| {
                (s["value"][1].as_str()).is_some_and(|v| v.parse::<f64>().is_ok_and(f64::is_finite))
            });
            if !has_number {
                still.push((title, expr));
            }
        }
        missing = still;
    }
    assert!(
        missing.is_empty(),
        "panels without data after a minute of load: {missing:#?}"
    );
    assert!(queries.len() >= 12, "{} queries", queries.len());
}
