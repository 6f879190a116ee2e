//! One client must not deny service to everyone: stalled readers, failing backends, idle
//! connections and large bodies are bounded whether or not the client cooperates.

use std::time::Duration;

use llmkube_mock_upstream::{Behavior, MockUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_and_the_backend_released() {
    let local = MockUpstream::start("local").await.unwrap();
    local.set_behavior(Behavior {
        chunks: 5_000_000,
        ..Behavior::default()
    });
    let gw = gateway(
        "  backends:
    - {name: local, inferenceServiceRef: {name: l}}
  defaultRoute: local
  proxy: {streamIdleTimeout: 1s}
",
        &[("local", &local)],
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(gw.gw.addr).await.unwrap();
    let body = chat_body("m", true);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut first = [0u8; 64];
    let n = conn.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    // The client now reads nothing more, and keeps its connection open.
    wait_for("the backend connection is released", || {
        local.open_connections() == 0
    })
    .await;
    let lines = audit_lines(&gw.dir.path().join("audit.log"), 1).await;
    assert_eq!(lines[0]["outcome"], "client_stalled", "{}", lines[0]);
    assert!(lines[0]["bytesOut"].as_u64().unwrap() > 0);
    drop(conn);
}

/// Two local backends, tried in order.
const TWO_LOCAL: &str = "  backends:
    - {name: local, inferenceServiceRef: {name: l}}
    - {name: b, inferenceServiceRef: {name: b}}
  rules:
    - {name: pf, route: {backends: [local, b]}}
";

fn posts(mock: &MockUpstream) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.method == http::Method::POST)
        .count()
}

const PII: [(&str, &str); 1] = [("x-llmkube-classification", "pii")];

fn only_local(rest: &str) -> String {
    format!(
        "  backends:
    - {{name: local, inferenceServiceRef: {{name: l}}}}
  rules:
    - {{name: pii, match: {{dataClassification: [pii]}}, route: {{backends: [local]}}, failClosed: true}}
  defaultRoute: local
{rest}"
    )
}

#[tokio::test]
async fn one_failure_does_not_take_the_only_local_backend_out() {
    let local = MockUpstream::start("local").await.unwrap();
    let gw = gateway(&only_local(""), &[("local", &local)]).await;
    local.update(|b| b.status = 500);
    let r = gw.chat("m", &PII).await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.text());
    local.update(|b| b.status = 200);
    let r = gw.chat("m", &PII).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local"),
        "{}",
        r.text()
    );
    assert_eq!(
        posts(&local),
        2,
        "the second request was tried, not refused untried"
    );
}

#[tokio::test]
async fn consecutive_failures_quarantine_and_a_fully_quarantined_route_is_tried_anyway() {
    let local = MockUpstream::start("local").await.unwrap();
    let b = MockUpstream::start("b").await.unwrap();
    let spec = format!("{TWO_LOCAL}  proxy: {{consecutiveFailures: 3, quarantineDuration: 1h}}\n");
    let gw = gateway(&spec, &[("local", &local), ("b", &b)]).await;
    local.update(|b| b.status = 502);
    for _ in 0..3 {
        assert_eq!(gw.chat("m", &[]).await.backend(), "b", "fallback serves");
    }
    assert_eq!(posts(&local), 3);
    assert_eq!(gw.chat("m", &[]).await.backend(), "b");
    assert_eq!(posts(&local), 3, "three failures in a row quarantined it");
    // Now every backend of the route is out: they are tried anyway, in order.
    b.update(|b| b.status = 503);
    for _ in 0..3 {
        let r = gw.chat("m", &[]).await;
        assert_eq!(r.status.as_u16(), 502, "{}", r.text());
    }
    let before = posts(&local);
    local.update(|b| b.status = 200);
    let r = gw.chat("m", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local"),
        "{}",
        r.text()
    );
    assert!(posts(&local) > before);
    let metrics = gw.get("/metrics").await.text();
    assert!(
        metrics.contains("llmkube_router_panic_routes_total{router=\"test-router\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_header_timeout_does_not_quarantine_the_backend() {
    let local = MockUpstream::start("local").await.unwrap();
    let gw = gateway(
        &only_local("  proxy: {consecutiveFailures: 1, responseHeaderTimeout: 200ms}\n"),
        &[("local", &local)],
    )
    .await;
    local.update(|b| b.header_delay = Duration::from_millis(600));
    let r = gw.chat("m", &PII).await;
    assert_eq!(r.status.as_u16(), 504, "{}", r.text());
    local.update(|b| b.header_delay = Duration::ZERO);
    let r = gw.chat("m", &PII).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn active_health_checks_take_a_backend_out_and_bring_it_back() {
    let local = MockUpstream::start("local").await.unwrap();
    let b = MockUpstream::start("b").await.unwrap();
    let spec = TWO_LOCAL.replace(
        "{name: l}}",
        "{name: l}, healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1}}",
    );
    let gw = gateway(&spec, &[("local", &local), ("b", &b)]).await;
    let checks = |m: &MockUpstream| {
        m.requests()
            .iter()
            .filter(|r| r.method == http::Method::GET && r.path == "/health")
            .count()
    };
    wait_for("a first check", || checks(&local) >= 1).await;
    assert_eq!(gw.chat("m", &[]).await.backend(), "local");
    // The backend fails its check: it is out before any client meets it.
    local.update(|b| b.status = 503);
    let seen = checks(&local);
    wait_for("a failed check", || checks(&local) > seen).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = posts(&local);
    assert_eq!(gw.chat("m", &[]).await.backend(), "b");
    assert_eq!(posts(&local), before, "not tried while its check fails");
    let metrics = gw.get("/metrics").await.text();
    assert!(
        metrics
            .contains("llmkube_router_backend_health{router=\"test-router\",backend=\"local\"} 0"),
        "{metrics}"
    );
    // Its check passes again: back in service, no quarantine to wait out.
    local.update(|b| b.status = 200);
    let seen = checks(&local);
    wait_for("a passing check", || checks(&local) > seen).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gw.chat("m", &[]).await.backend(), "local");
    assert_eq!(checks(&b), 0, "backends without healthCheck are not probed");
}

fn big_chat(bytes: usize) -> String {
    let content = "x".repeat(bytes);
    serde_json::json!({"model": "m", "messages": [{"role": "user", "content": content}]})
        .to_string()
}

/// Sends headers and all but the last 10 bytes of `body`; returns the connection and the rest.
async fn send_most(addr: std::net::SocketAddr, body: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (most, rest) = body.as_bytes().split_at(body.len() - 10);
    conn.write_all(most).await.unwrap();
    (conn, rest.to_vec())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn request_bodies_share_a_bounded_memory_budget() {
    let local = MockUpstream::start("local").await.unwrap();
    let gw = gateway_with(&only_local(""), &[("local", &local)], |c| {
        c.limits.body_memory_bytes = 1 << 20;
        c.limits.body_memory_wait = Duration::from_millis(300);
    })
    .await;
    let slow = big_chat(700_000);
    let (mut conn, rest) = send_most(gw.gw.addr, &slow).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = metric(
        &gw.get("/metrics").await.text(),
        "llmkube_request_body_bytes",
    );
    assert_eq!(
        held,
        slow.len() as f64,
        "the declared length is held up front"
    );
    let r = gw
        .request(
            http::Method::POST,
            "/v1/chat/completions",
            &[],
            big_chat(500_000),
        )
        .await;
    assert_error(&r, 503, "unavailable");
    assert_eq!(r.json()["error"]["code"], "body_memory_exhausted");
    assert_eq!(r.header("retry-after"), "1");
    // The slow client finishes: it is served, and its memory is returned.
    conn.write_all(&rest).await.unwrap();
    let mut answer = vec![0u8; 12];
    conn.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let r = gw
        .request(
            http::Method::POST,
            "/v1/chat/completions",
            &[],
            big_chat(500_000),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let m = gw.get("/metrics").await.text();
    assert_eq!(metric(&m, "llmkube_request_body_bytes"), 0.0);
    assert_eq!(metric(&m, "llmkube_request_body_budget_refused_total"), 1.0);
    let lines = audit_lines(&gw.dir.path().join("audit.log"), 3).await;
    assert!(
        lines.iter().any(|l| l["outcome"] == "overloaded"),
        "{lines:?}"
    );
}

/// Reads until the peer closes; returns how long that took.
async fn closed_within(conn: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(started + limit, conn.read(&mut buf)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let local = MockUpstream::start("local").await.unwrap();
    let gw = gateway_with(&only_local(""), &[("local", &local)], |c| {
        c.limits.header_read_timeout = Duration::from_millis(300);
        c.limits.idle_timeout = Duration::from_millis(600);
    })
    .await;
    let addr = gw.gw.addr;
    // HTTP/1 that never sends a byte.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // h2c that sends the preface and its settings, then nothing.
    let mut h2c = tokio::net::TcpStream::connect(addr).await.unwrap();
    h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // A keep-alive client after one request.
    let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 15];
    kept.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200 OK");
    let idle_since = tokio::time::Instant::now();
    let limit = Duration::from_secs(3);
    assert!(closed_within(&mut silent, limit).await >= Duration::from_millis(250));
    closed_within(&mut h2c, limit).await;
    closed_within(&mut kept, limit).await;
    // HTTP/1 keep-alive: hyper starts the header-read timeout for the next request as soon as
    // the previous one ends, so the shorter of the two limits closes it.
    assert!(
        idle_since.elapsed() >= Duration::from_millis(250),
        "kept open through the header-read timeout"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_counted() {
    let local = MockUpstream::start("local").await.unwrap();
    let gw = gateway_with(&only_local(""), &[("local", &local)], |c| {
        c.limits.max_connections = 3;
    })
    .await;
    let addr = gw.gw.addr;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut fourth = tokio::net::TcpStream::connect(addr).await.unwrap();
    closed_within(&mut fourth, Duration::from_secs(2)).await;
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = gw.get("/metrics").await.text();
    assert_eq!(metric(&m, "llmkube_connections_refused_total"), 1.0);
    assert!(metric(&m, "llmkube_connections") >= 2.0);
}
