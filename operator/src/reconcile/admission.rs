//! What a namespace user may ask the controller to run.
//!
//! The controller creates pods with its own ServiceAccount, so whoever can create an
//! InferenceService or a ModelRouter would otherwise get everything the controller can do: a
//! privileged pod, a node's files, any image. Pods are built to pass the Kubernetes
//! `restricted` Pod Security profile; settings beyond it (privileged, root, added
//! capabilities, unconfined seccomp, Secret references in `env`) are refused unless the admin
//! started the controller with an explicit allowance, and so are `file://` model sources
//! outside the host directories the admin lists and images outside the registry prefixes the
//! admin allows. Every refusal is a readable condition message naming the field and the flag.

use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, PodSecurityContext, SeccompProfile, SecurityContext,
};

/// UID the controller's pods run as when it sets one (distroless `nonroot`).
pub const NON_ROOT_UID: i64 = 65532;

/// What the admin allows beyond the `restricted` profile (controller flags, Helm values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowance {
    /// `--allow-privileged-pods`: InferenceService security contexts may ask for privileged,
    /// root, extra capabilities or an unconfined seccomp profile.
    pub privileged: bool,
    /// `--allow-secret-env`: InferenceService `env` may reference Secrets.
    pub secret_env: bool,
    /// `--allowed-model-host-path`: host directories `file://` model sources may come from.
    pub model_host_paths: Vec<String>,
    /// `--allowed-image-prefix`: registries/repositories an InferenceService `image` or a
    /// ModelRouter `proxy.image` may name; the controller's own configured images are always
    /// allowed.
    pub image_prefixes: Vec<String>,
    /// `--no-fixed-uid` (OpenShift): set no UID, let the platform assign one.
    pub no_fixed_uid: bool,
}

impl Allowance {
    /// Refuses a `file://` source outside the allowed host directories.
    pub fn check_host_path(&self, path: &str) -> Result<(), String> {
        let normal = !path.split('/').any(|c| c == ".." || c == ".") && path.starts_with('/');
        let inside = |dir: &String| {
            let dir = dir.trim_end_matches('/');
            !dir.is_empty()
                && path.len() > dir.len() + 1
                && path.starts_with(dir)
                && path.as_bytes()[dir.len()] == b'/'
        };
        if normal && self.model_host_paths.iter().any(inside) {
            return Ok(());
        }
        let allowed = if self.model_host_paths.is_empty() {
            "none".to_owned()
        } else {
            self.model_host_paths.join(", ")
        };
        Err(format!(
            "file:// source {path:?} is outside the host directories the cluster admin allows for model files (controller flag --allowed-model-host-path, Helm controllerManager.podSecurity.allowedModelHostPaths: {allowed})"
        ))
    }

    /// Refuses an image outside the allowed prefixes; `own` are the controller's configured
    /// images, always allowed.
    pub fn check_image(&self, field: &str, image: &str, own: &[&str]) -> Result<(), String> {
        let under = |prefix: &str| {
            !prefix.is_empty()
                && image.starts_with(prefix)
                && (prefix.ends_with('/')
                    || prefix.ends_with(':')
                    || image.len() == prefix.len()
                    || matches!(image.as_bytes()[prefix.len()], b'/' | b':' | b'@'))
        };
        if own.iter().any(|o| repository(o) == repository(image))
            || self.image_prefixes.iter().any(|p| under(p))
        {
            return Ok(());
        }
        Err(format!(
            "{field} {image:?} is not from a registry the cluster admin allows (controller flag --allowed-image-prefix, Helm controllerManager.allowedImagePrefixes: {})",
            if self.image_prefixes.is_empty() {
                "none besides the controller's own images".to_owned()
            } else {
                self.image_prefixes.join(", ")
            }
        ))
    }

    /// Every setting of an InferenceService's security contexts and env that goes beyond the
    /// `restricted` profile and is not allowed, as `field: why` lines.
    pub fn check_pod_settings(
        &self,
        pod: Option<&PodSecurityContext>,
        container: Option<&SecurityContext>,
        env: &[EnvVar],
    ) -> Result<(), String> {
        let mut problems = Vec::new();
        if !self.privileged {
            if let Some(c) = container {
                let f = |n: &str| format!("spec.securityContext.{n}");
                if c.privileged == Some(true) {
                    problems.push(format!("{} must not be true", f("privileged")));
                }
                if c.allow_privilege_escalation == Some(true) {
                    problems.push(format!(
                        "{} must not be true",
                        f("allowPrivilegeEscalation")
                    ));
                }
                root_settings(c.run_as_user, c.run_as_non_root, &f, &mut problems);
                if let Some(add) = c.capabilities.as_ref().and_then(|c| c.add.as_ref())
                    && add.iter().any(|cap| cap != "NET_BIND_SERVICE")
                {
                    problems.push(format!(
                        "{} may only add NET_BIND_SERVICE",
                        f("capabilities.add")
                    ));
                }
                if unconfined(c.seccomp_profile.as_ref()) {
                    problems.push(format!(
                        "{} must be RuntimeDefault or Localhost",
                        f("seccompProfile.type")
                    ));
                }
                if c.proc_mount.as_deref().is_some_and(|m| m != "Default") {
                    problems.push(format!("{} must be Default", f("procMount")));
                }
                if c.windows_options.as_ref().and_then(|w| w.host_process) == Some(true) {
                    problems.push(format!(
                        "{} must not be true",
                        f("windowsOptions.hostProcess")
                    ));
                }
            }
            if let Some(p) = pod {
                let f = |n: &str| format!("spec.podSecurityContext.{n}");
                root_settings(p.run_as_user, p.run_as_non_root, &f, &mut problems);
                if unconfined(p.seccomp_profile.as_ref()) {
                    problems.push(format!(
                        "{} must be RuntimeDefault or Localhost",
                        f("seccompProfile.type")
                    ));
                }
                if p.sysctls.as_ref().is_some_and(|s| !s.is_empty()) {
                    problems.push(format!("{} must be empty", f("sysctls")));
                }
                if p.windows_options.as_ref().and_then(|w| w.host_process) == Some(true) {
                    problems.push(format!(
                        "{} must not be true",
                        f("windowsOptions.hostProcess")
                    ));
                }
            }
            if !problems.is_empty() {
                problems.push("(the cluster admin can allow these with the controller flag --allow-privileged-pods, Helm controllerManager.podSecurity.allowPrivileged)".into());
            }
        }
        if !self.secret_env {
            let refs: Vec<&str> = env
                .iter()
                .filter(|e| {
                    e.value_from
                        .as_ref()
                        .is_some_and(|v| v.secret_key_ref.is_some())
                })
                .map(|e| e.name.as_str())
                .collect();
            if !refs.is_empty() {
                problems.push(format!(
                    "spec.env {} reference Secrets, which the controller would read on your behalf (the cluster admin can allow it with the controller flag --allow-secret-env, Helm controllerManager.podSecurity.allowSecretEnv)",
                    refs.join(", ")
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The pod security context of a pod the controller builds: `restricted`, with the user's
    /// own (already checked) settings layered on top.
    pub fn pod_security(&self, user: Option<&PodSecurityContext>) -> PodSecurityContext {
        let mut ctx = user.cloned().unwrap_or_default();
        if ctx.run_as_non_root.is_none() && ctx.run_as_user != Some(0) {
            ctx.run_as_non_root = Some(true);
        }
        if ctx.run_as_user.is_none() && !self.no_fixed_uid {
            ctx.run_as_user = Some(NON_ROOT_UID);
        }
        if ctx.seccomp_profile.is_none() {
            ctx.seccomp_profile = Some(runtime_default());
        }
        ctx
    }

    /// The security context of a container the controller builds: `restricted`, with the
    /// user's own (already checked) settings layered on top.
    pub fn container_security(&self, user: Option<&SecurityContext>) -> SecurityContext {
        let mut ctx = user.cloned().unwrap_or_default();
        if ctx.allow_privilege_escalation.is_none() && ctx.privileged != Some(true) {
            ctx.allow_privilege_escalation = Some(false);
        }
        let caps = ctx.capabilities.get_or_insert_with(Capabilities::default);
        if caps.drop.is_none() {
            caps.drop = Some(vec!["ALL".into()]);
        }
        if ctx.seccomp_profile.is_none() {
            ctx.seccomp_profile = Some(runtime_default());
        }
        ctx
    }
}

/// An image reference without its tag and digest: `registry/path/name`.
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

fn root_settings(
    user: Option<i64>,
    non_root: Option<bool>,
    f: &dyn Fn(&str) -> String,
    problems: &mut Vec<String>,
) {
    if user == Some(0) {
        problems.push(format!("{} must not be 0 (root)", f("runAsUser")));
    }
    if non_root == Some(false) {
        problems.push(format!("{} must not be false", f("runAsNonRoot")));
    }
}

fn unconfined(profile: Option<&SeccompProfile>) -> bool {
    profile.is_some_and(|p| p.type_ == "Unconfined")
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_must_be_inside_an_allowed_directory() {
        let a = Allowance {
            model_host_paths: vec!["/mnt/models/".into(), "/srv/llm".into()],
            ..Allowance::default()
        };
        assert!(a.check_host_path("/mnt/models/m.gguf").is_ok());
        assert!(a.check_host_path("/srv/llm/sub/m.gguf").is_ok());
        for bad in [
            "/etc/kubernetes/admin.conf",
            "/mnt/models/../../etc/shadow",
            "/srv/llmx/m.gguf",
            "/srv/llm",
            "/mnt/models/./m",
        ] {
            let e = a.check_host_path(bad).unwrap_err();
            assert!(e.contains("--allowed-model-host-path"), "{bad}: {e}");
        }
        let none = Allowance::default()
            .check_host_path("/mnt/models/m.gguf")
            .unwrap_err();
        assert!(none.contains(": none)"), "{none}");
    }

    #[test]
    fn images_come_from_allowed_prefixes_or_the_controllers_own() {
        let a = Allowance {
            image_prefixes: vec!["registry.local/".into(), "harbor.corp/llm".into()],
            ..Allowance::default()
        };
        let own = ["ghcr.io/llmkube/llmkube-gateway:0.1.0"];
        for ok in [
            "registry.local/anything:1",
            "harbor.corp/llm/gw@sha256:abc",
            "harbor.corp/llm:2",
            "ghcr.io/llmkube/llmkube-gateway:0.2.0",
        ] {
            assert!(a.check_image("spec.proxy.image", ok, &own).is_ok(), "{ok}");
        }
        for bad in [
            "docker.io/evil/gw:1",
            "harbor.corp/llmx/gw:1",
            "registry.localhost/x:1",
        ] {
            let e = a.check_image("spec.proxy.image", bad, &own).unwrap_err();
            assert!(e.contains("--allowed-image-prefix"), "{e}");
        }
    }

    #[test]
    fn privileged_settings_and_secret_env_need_an_allowance() {
        let escalate = SecurityContext {
            privileged: Some(true),
            run_as_user: Some(0),
            capabilities: Some(Capabilities {
                add: Some(vec!["SYS_ADMIN".into()]),
                drop: None,
            }),
            ..SecurityContext::default()
        };
        let pod = PodSecurityContext {
            run_as_non_root: Some(false),
            ..PodSecurityContext::default()
        };
        let env = vec![EnvVar {
            name: "TOKEN".into(),
            value: None,
            value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                secret_key_ref: Some(k8s_openapi::api::core::v1::SecretKeySelector {
                    name: "admin".into(),
                    key: "token".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
        }];
        let e = Allowance::default()
            .check_pod_settings(Some(&pod), Some(&escalate), &env)
            .unwrap_err();
        for want in [
            "spec.securityContext.privileged must not be true",
            "spec.securityContext.runAsUser must not be 0",
            "spec.securityContext.capabilities.add may only add NET_BIND_SERVICE",
            "spec.podSecurityContext.runAsNonRoot must not be false",
            "--allow-privileged-pods",
            "spec.env TOKEN reference Secrets",
            "--allow-secret-env",
        ] {
            assert!(e.contains(want), "{want} missing from {e}");
        }
        let open = Allowance {
            privileged: true,
            secret_env: true,
            ..Allowance::default()
        };
        assert!(
            open.check_pod_settings(Some(&pod), Some(&escalate), &env)
                .is_ok()
        );
    }

    #[test]
    fn built_contexts_are_restricted_by_default() {
        let a = Allowance::default();
        let pod = a.pod_security(None);
        assert_eq!(pod.run_as_non_root, Some(true));
        assert_eq!(pod.run_as_user, Some(NON_ROOT_UID));
        assert_eq!(pod.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = a.container_security(None);
        assert_eq!(c.allow_privilege_escalation, Some(false));
        assert_eq!(c.capabilities.unwrap().drop, Some(vec!["ALL".into()]));
        let openshift = Allowance {
            no_fixed_uid: true,
            ..Allowance::default()
        };
        assert_eq!(openshift.pod_security(None).run_as_user, None);
    }
}
