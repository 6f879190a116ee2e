//! The model-downloader init container as its pods report it: the newest run that ended, and
//! what its exit code and termination message mean. Both the Model and the InferenceService
//! reconcilers read it.

use k8s_openapi::api::core::v1::Pod;

/// The newest terminated `model-downloader` among `pods` whose exit code passes `keep`: its
/// exit code and termination message. A crash-looping init container is `waiting`; its last
/// run is in `lastState`.
pub fn newest_downloader_exit(pods: &[Pod], keep: impl Fn(i32) -> bool) -> Option<(i32, String)> {
    let mut newest: Option<(String, i32, String)> = None;
    let statuses = pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| s.init_container_statuses.iter().flatten())
        .filter(|c| c.name == "model-downloader");
    for c in statuses {
        let states = [c.state.as_ref(), c.last_state.as_ref()];
        let Some(t) = states
            .into_iter()
            .flatten()
            .find_map(|s| s.terminated.as_ref())
        else {
            continue;
        };
        if !keep(t.exit_code) {
            continue;
        }
        let at = t
            .finished_at
            .as_ref()
            .map(|f| f.0.to_string())
            .unwrap_or_default();
        if newest.as_ref().is_none_or(|(seen, ..)| at > *seen) {
            newest = Some((at, t.exit_code, t.message.clone().unwrap_or_default()));
        }
    }
    newest.map(|(_, code, message)| (code, message))
}

/// A readable explanation of a failed model-downloader, from its exit code and termination
/// message (the script writes JSON there; curl's exit code otherwise).
pub fn explain_init_failure(exit_code: i32, message: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(message.trim()).unwrap_or_default();
    if json["error"] == "sha256 mismatch" {
        return format!(
            "sha256 mismatch: spec.sha256 is {} but the download hashed to {}; the file was deleted",
            json["expected"].as_str().unwrap_or("?"),
            json["actual"].as_str().unwrap_or("?")
        );
    }
    let curl = json["exitCode"].as_i64().map_or(exit_code, |c| c as i32);
    let why = match curl {
        6 => "could not resolve the model server's host name (DNS)",
        7 => {
            "could not connect to the model server: unreachable host or blocked egress (check NetworkPolicy)"
        }
        22 => "the model server answered with an HTTP error (e.g. 404: check spec.source)",
        23 => {
            "could not write the model file (curl exit 23): the source could not be read or the cache volume is full; for internal TLS confirm --ca-cert-configmap and that its ConfigMap exists in this namespace"
        }
        28 => "the download timed out",
        35 | 60 | 77 => {
            "TLS failure: the model server's certificate is not trusted; set --ca-cert-configmap to a ConfigMap holding your CA as ca.crt in this namespace"
        }
        _ => "",
    };
    let detail = json["error"].as_str().unwrap_or(message.trim());
    match (why.is_empty(), detail.is_empty()) {
        (false, _) => format!("model-downloader failed: {why} (exit {curl})"),
        (true, false) => format!("model-downloader failed (exit {curl}): {detail}"),
        (true, true) => format!("model-downloader failed (exit {curl})"),
    }
}
