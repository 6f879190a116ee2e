//! `llmkube-gateway policy new`: the crate it writes, outside this repository, passes its own
//! tests, builds to a module, and that module (a post-phase policy reading route tiers, ABI
//! 1.2) does in the gateway what its fixtures say: an intern's cloud route becomes local.

use std::path::{Path, PathBuf};
use std::process::Command;

use llmkube_gateway::policy::scaffold::{SdkSource, write};

use crate::support::*;

/// The workspace's target directory, shared so the new crate reuses what is built.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn cargo(dir: &Path, args: &[&str]) {
    let target = target_dir();
    let out = Command::new(env!("CARGO"))
        .args(args)
        .args(["--offline", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_new_policy_crate_tests_builds_and_runs_in_the_gateway() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("interns-local");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy-sdk");
    write(
        "interns-local",
        &dir,
        &SdkSource::Path(sdk.canonicalize().unwrap()),
    )
    .unwrap();
    assert!(
        write("interns-local", &dir, &SdkSource::Path(sdk.clone())).is_err(),
        "never over an existing crate"
    );
    let crate_dir = dir.clone();
    tokio::task::spawn_blocking(move || {
        cargo(&crate_dir, &["test"]);
        cargo(
            &crate_dir,
            &["build", "--release", "--target", "wasm32-unknown-unknown"],
        );
    })
    .await
    .unwrap();
    let wasm = crate::policies::wasm_dir().join("interns_local.wasm");
    let digest = llmkube_gateway::policy::module::sha256_hex(&std::fs::read(&wasm).unwrap());

    let cast = Cast::new().await;
    let gw = cast
        .gateway(&format!(
            "  rules: [{{name: mixed, route: {{backends: [cloud, local-a]}}}}]
  policies:
    - name: interns-local
      module: {{file: '{}'}}
      sha256: {digest}
      config: {{local_only_teams: [interns]}}
",
            wasm.display()
        ))
        .await;
    let intern = gw.chat("m", &[("x-team", "interns")]).await;
    assert_eq!(
        (intern.status.as_u16(), intern.backend()),
        (200, "local-a"),
        "{}",
        intern.text()
    );
    let staff = gw.chat("m", &[("x-team", "research")]).await;
    assert_eq!(staff.backend(), "cloud");
    assert_eq!(
        cast.cloud.request_count(),
        1,
        "the intern's request never reached the cloud"
    );
}
