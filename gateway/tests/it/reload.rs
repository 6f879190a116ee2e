//! Hot reload: atomic swaps under load, refusal of bad files, health kept across swaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;

fn spec(cast: &Cast, default: &str) -> String {
    format!("{}  defaultRoute: {default}\n", cast.backends())
}

#[tokio::test]
async fn hot_reload_under_concurrent_load_fails_no_request() {
    let cast = Cast::new().await;
    let gw = Arc::new(cast.gateway("  defaultRoute: local-a\n").await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (gw, stop, ok, failed) = (gw.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let streaming = w % 2 == 0;
                let r = gw
                    .request(
                        http::Method::POST,
                        "/v1/chat/completions",
                        &[],
                        chat_body("m", streaming),
                    )
                    .await;
                let good =
                    r.status == 200 && (!streaming || r.text().ends_with("data: [DONE]\n\n"));
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let target = if i % 2 == 0 { "local-b" } else { "local-a" };
        assert_eq!(gw.rewrite(&spec(&cast, target)), Ok(true));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request may fail across reloads"
    );
    assert!(ok.load(Ordering::Relaxed) > 20);
    assert!(
        cast.a.request_count() > 0 && cast.b.request_count() > 0,
        "both routers served"
    );
}

#[tokio::test]
async fn the_watcher_picks_up_changes_and_bad_files_are_refused() {
    let cast = Cast::new().await;
    let gw = cast.gateway("  defaultRoute: local-a\n").await;
    let path = gw.dir.path().join("router.yaml");
    let spec_b = with_audit_file(&spec(&cast, "local-b"), gw.dir.path());
    std::fs::write(&path, router_yaml("test-router", &spec_b)).unwrap();
    let mut switched = false;
    for _ in 0..100 {
        if gw.chat("m", &[]).await.backend() == "local-b" {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(switched, "the file watcher reloaded the router within 5s");

    let err = gw.rewrite(&spec(&cast, "nowhere")).unwrap_err();
    assert!(
        err.contains("spec.defaultRoute: unknown backend \"nowhere\""),
        "{err}"
    );
    assert_eq!(
        gw.chat("m", &[]).await.backend(),
        "local-b",
        "the old router keeps serving"
    );
    std::fs::write(&path, "kind: ModelRouter\nspec: [").unwrap();
    assert!(gw.gw.reload_now().is_err());
    assert_eq!(gw.chat("m", &[]).await.backend(), "local-b");
    let metrics = gw.get("/metrics").await.text();
    assert!(
        metrics.contains("llmkube_router_reloads_total{result=\"rejected\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn backend_health_survives_a_swap_for_backends_that_keep_their_name() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  rules: [{name: r, route: {backends: [local-a, local-b]}}]\n  proxy: {consecutiveFailures: 1}\n")
        .await;
    cast.a.update(|b| b.status = 500);
    assert_eq!(gw.chat("m", &[]).await.backend(), "local-b");
    cast.a.update(|b| b.status = 200);
    let renamed = "  rules: [{name: renamed, route: {backends: [local-a, local-b]}}]\n  proxy: {consecutiveFailures: 1}\n";
    assert_eq!(
        gw.rewrite(&format!("{}{renamed}", cast.backends())),
        Ok(true)
    );
    let r = gw.chat("m", &[]).await;
    assert_eq!(
        (r.backend(), r.header("x-llmkube-rule")),
        ("local-b", "renamed")
    );
    assert_eq!(
        cast.a.request_count(),
        1,
        "local-a is still quarantined after the swap"
    );
}

#[tokio::test]
async fn an_invalid_file_is_refused_once_not_on_every_read_of_it() {
    let cast = Cast::new().await;
    let gw = cast.gateway("  defaultRoute: local-a\n").await;
    let path = gw.dir.path().join("router.yaml");
    std::fs::write(&path, "kind: ModelRouter\nspec: [").unwrap();
    // Time for many watcher rounds: each of the gateway's reads of the file is an event too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..5 {
        let _ = std::fs::read_to_string(&path).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = gw.get("/metrics").await.text();
    assert!(
        metrics.contains("llmkube_router_reloads_total{result=\"rejected\"} 1\n"),
        "one bad edit, one refusal: {metrics}"
    );
    assert_eq!(gw.chat("m", &[]).await.backend(), "local-a");
}
