//! The controller's probe and metrics endpoints over real HTTP.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use llmkube_operator::controller::metrics::Metrics;
use llmkube_operator::controller::server::{Health, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    (status, out)
}

#[tokio::test]
async fn probes_and_metrics() {
    let health = Arc::new(Health::default());
    let metrics = Arc::new(Metrics::default());
    let (addr, _task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&health),
        Arc::clone(&metrics),
    )
    .await
    .unwrap();
    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 503, "not ready before start");
    health.ready.store(true, Ordering::Relaxed);
    assert_eq!(get(addr, "/readyz").await.0, 200);

    metrics.observe("ModelRouter", true, Duration::from_millis(3));
    metrics.observe("ModelRouter", false, Duration::from_millis(40));
    metrics.leader.set(1);
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        r#"llmkube_controller_reconciles_total{kind="ModelRouter",result="ok"} 1"#,
        r#"llmkube_controller_reconciles_total{kind="ModelRouter",result="error"} 1"#,
        r#"llmkube_controller_reconcile_duration_seconds_count{kind="ModelRouter"} 2"#,
        "llmkube_controller_leader 1",
    ] {
        assert!(body.contains(line), "missing {line} in:\n{body}");
    }
    assert_eq!(get(addr, "/nope").await.0, 404);
}
