//! The model-downloader on a shared model cache (CACHE=1): the real script, run with sh,
//! curl and sha256sum against a loopback server that counts what it serves.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use llmkube_operator::reconcile::inference_service::DOWNLOADER_SCRIPT;

/// An HTTP server over `dir` that waits a second before each answer (so that downloads
/// overlap) and logs one `GET <path>` line per request to `dir/../gets.log`.
const SLOW_SERVER: &str = r#"
import functools, http.server, sys, time
root = sys.argv[1]
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        with open(root + "/../gets.log", "a") as f:
            f.write("GET " + self.path + "\n")
        time.sleep(1)
        super().do_GET()
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=root))
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A downloader run into the cache at `cache` (not waited for).
fn downloader(port: u16, cache: &Path, sha: &str, log: &Path) -> Child {
    Command::new("sh")
        .args(["-c", DOWNLOADER_SCRIPT])
        .env("SOURCE", format!("http://127.0.0.1:{port}/model.gguf"))
        .env("DEST", cache.join("k1/model.gguf"))
        .env("SHA256", sha)
        .env("ALLOW_HTTP", "1")
        .env("CACHE", "1")
        .env("LOCK_POLL_SECONDS", "0.2")
        .env("TERMINATION_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn gets(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("gets.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn two_pods_fetch_a_cached_model_once_and_later_pods_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("srv")).unwrap();
    let weights = vec![7u8; 1 << 20];
    std::fs::write(dir.join("srv/model.gguf"), &weights).unwrap();
    let mut server = Command::new("python3")
        .args(["-c", SLOW_SERVER])
        .arg(dir.join("srv"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = KillOnDrop(server);
    let port: u16 = line.trim().parse().unwrap();
    let cache = dir.join("cache");
    let sha = sha256_hex(&weights);

    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    let a = downloader(port, &cache, &sha, &log_a);
    let b = downloader(port, &cache, &sha, &log_b);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(gets(dir), 1, "two concurrent pods downloaded once");
    let reports: Vec<serde_json::Value> = [&log_a, &log_b]
        .iter()
        .map(|l| serde_json::from_str(&std::fs::read_to_string(l).unwrap()).unwrap())
        .collect();
    for r in &reports {
        assert_eq!(r["sha256"], sha.as_str());
        assert_eq!(r["size"], 1 << 20);
    }
    let waited = [&a, &b]
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains("another pod is downloading"))
        .count();
    assert_eq!(waited, 1, "one waited for the other's lock");
    assert_eq!(
        std::fs::read_to_string(cache.join("k1/model.gguf.sha256")).unwrap(),
        sha
    );
    assert!(
        !cache.join("k1/model.gguf.lock").exists(),
        "the lock is released"
    );

    // A later pod: the verified file is served from the cache, no download, no rehash.
    let later = downloader(port, &cache, &sha, &dir.join("c.log"))
        .wait_with_output()
        .unwrap();
    assert!(later.status.success());
    assert_eq!(gets(dir), 1, "nothing fetched again");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("c.log")).unwrap()).unwrap();
    assert_eq!(report["cached"], true);
    assert_eq!(report["sha256"], sha.as_str());

    // A stale lock (its holder died) is taken over.
    std::fs::remove_file(cache.join("k1/model.gguf.sha256")).unwrap();
    std::fs::remove_file(cache.join("k1/model.gguf")).unwrap();
    std::fs::create_dir(cache.join("k1/model.gguf.lock")).unwrap();
    let took_over = Command::new("sh")
        .args(["-c", DOWNLOADER_SCRIPT])
        .env("SOURCE", format!("http://127.0.0.1:{port}/model.gguf"))
        .env("DEST", cache.join("k1/model.gguf"))
        .env("SHA256", &sha)
        .env("ALLOW_HTTP", "1")
        .env("CACHE", "1")
        .env("LOCK_STALE_SECONDS", "-1")
        .env("TERMINATION_LOG", dir.join("d.log"))
        .output()
        .unwrap();
    assert!(took_over.status.success());
    assert!(String::from_utf8_lossy(&took_over.stdout).contains("taking over"));
    assert_eq!(gets(dir), 2);
}

#[test]
fn with_a_cache_the_model_goes_to_the_shared_claim_under_its_key_and_runtimes_read_it_only() {
    use llmkube_operator::crd::inference_service::{
        InferenceService, InferenceServiceSpec, Runtime,
    };
    use llmkube_operator::crd::model::{Model, ModelSpec};
    use llmkube_operator::reconcile::inference_service::{Settings, deployment};
    use llmkube_operator::reconcile::model_cache::{CACHE_CLAIM, ModelCache, cache_key};

    let mut isvc = InferenceService::new(
        "llama",
        InferenceServiceSpec {
            model_ref: "llama".into(),
            runtime: Some(Runtime::Llamacpp),
            ..Default::default()
        },
    );
    isvc.metadata.namespace = Some("team-a".into());
    let model = Model::new(
        "llama",
        ModelSpec {
            source: "https://models.internal/llama.gguf".into(),
            sha256: Some("a".repeat(64)),
            ..Default::default()
        },
    );
    let settings = Settings {
        model_cache: Some(ModelCache::Managed {
            size: "100Gi".into(),
            storage_class: None,
            access_mode: "ReadWriteMany".into(),
        }),
        ..Settings::default()
    };
    let pod_with = |settings: &Settings| {
        deployment(&isvc, &model, settings)
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
    };
    let pod = pod_with(&settings);
    let volume = &pod.volumes.unwrap()[0];
    let claim = volume.persistent_volume_claim.as_ref().unwrap();
    assert_eq!(claim.claim_name, CACHE_CLAIM);
    assert!(volume.empty_dir.is_none());
    let key = cache_key(&model.spec);
    let path = format!("/models/{key}/llama.gguf");
    let init = &pod.init_containers.unwrap()[0];
    let env: Vec<(String, String)> = init
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert!(env.contains(&("DEST".into(), path.clone())), "{env:?}");
    assert!(env.contains(&("CACHE".into(), "1".into())), "{env:?}");
    assert_eq!(
        init.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(false)
    );
    let runtime = &pod.containers[0];
    assert_eq!(
        runtime.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(true)
    );
    assert_eq!(runtime.args.as_ref().unwrap()[1], path);

    // Without a cache: the pod's own emptyDir, as before.
    let pod = pod_with(&Settings::default());
    assert!(pod.volumes.unwrap()[0].empty_dir.is_some());
    assert_eq!(
        pod.containers[0].args.as_ref().unwrap()[1],
        "/models/llama.gguf"
    );
}

#[test]
fn cleanup_removes_only_old_unreferenced_unlocked_key_directories() {
    use llmkube_operator::reconcile::model_cache::CLEANUP_SCRIPT;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = |c: char| c.to_string().repeat(16);
    for name in [
        key('a'),
        key('b'),
        key('c'),
        key('d'),
        "lost+found".into(),
        "notes".into(),
    ] {
        std::fs::create_dir(dir.join(&name)).unwrap();
        std::fs::write(dir.join(&name).join("model.gguf"), b"w").unwrap();
    }
    std::fs::create_dir(dir.join(key('d')).join("model.gguf.lock")).unwrap();
    let two_hours_ago = format!(
        "@{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 7200
    );
    for name in [key('a'), key('b'), key('d'), "notes".into()] {
        let ok = Command::new("touch")
            .args(["-d", &two_hours_ago])
            .arg(dir.join(name))
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let out = Command::new("sh")
        .args(["-c", CLEANUP_SCRIPT])
        .env("CACHE_DIR", dir)
        .env("KEEP", key('a'))
        .env("GRACE_MINUTES", "60")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    let left: std::collections::BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected = [
        key('a'),
        key('c'),
        key('d'),
        "lost+found".into(),
        "notes".into(),
    ];
    assert_eq!(left, expected.into_iter().collect(), "{log}");
    assert!(log.contains("removed 1 unreferenced model(s)"), "{log}");
}
