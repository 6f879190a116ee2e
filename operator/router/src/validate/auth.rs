//! Checks of `spec.auth`: a way to authenticate, team names that are unique and bounded, and
//! globs and tiers a team's access can be decided by.

use std::collections::HashSet;

use super::Collector;
use crate::names::{check_model_glob, check_url, is_dns_subdomain};
use crate::spec::{JwtSpec, MAX_NAME_LEN, ModelRouterSpec, SecretKeyRef};

pub(super) fn check_auth(spec: &ModelRouterSpec, c: &mut Collector) {
    let Some(auth) = &spec.auth else { return };
    if auth.api_keys.is_none() && auth.jwt.is_none() && auth.client_certificates.is_none() {
        c.push(
            "spec.auth",
            "name a way to authenticate: apiKeys, jwt, clientCertificates or several (remove spec.auth to serve without authentication)",
        );
    }
    if let Some(keys) = &auth.api_keys {
        check_secret(&keys.secret_ref, "spec.auth.apiKeys.secretRef", c);
    }
    if let Some(jwt) = &auth.jwt {
        check_jwt(jwt, c);
    }
    let mut seen = HashSet::new();
    for (i, team) in auth.teams.iter().enumerate() {
        let path = format!("spec.auth.teams[{i}]");
        if !valid_name(&team.name) {
            c.push(format!("{path}.name"), name_message(&team.name));
        } else if !seen.insert(team.name.as_str()) {
            c.push(
                format!("{path}.name"),
                format!("duplicate team {:?}", team.name),
            );
        }
        for (field, globs) in [("models", &team.models), ("backends", &team.backends)] {
            for (k, glob) in globs.iter().enumerate() {
                if let Err(why) = check_model_glob(glob) {
                    c.push(format!("{path}.{field}[{k}]"), why);
                }
            }
        }
        for (k, name) in team.backends.iter().enumerate() {
            let exact = !name.contains(['*', '?']);
            if exact && !spec.backends.iter().any(|x| &x.name == name) {
                c.push(
                    format!("{path}.backends[{k}]"),
                    format!("unknown backend {name:?}"),
                );
            }
        }
    }
    for (i, principal) in auth.act_for_teams.iter().enumerate() {
        if !valid_name(principal) {
            c.push(
                format!("spec.auth.actForTeams[{i}]"),
                name_message(principal),
            );
        }
    }
}

fn check_secret(secret: &SecretKeyRef, path: &str, c: &mut Collector) {
    if !is_dns_subdomain(&secret.name) {
        c.push(
            format!("{path}.name"),
            format!("{:?} is not a valid Secret name", secret.name),
        );
    }
    if let Some(key) = &secret.key {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_NAME_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !key_ok {
            c.push(
                format!("{path}.key"),
                format!("{key:?} is not a valid Secret key"),
            );
        }
    }
}

fn check_jwt(jwt: &JwtSpec, c: &mut Collector) {
    if jwt.issuer.trim().is_empty() {
        c.push("spec.auth.jwt.issuer", "must not be empty");
    }
    if jwt.audiences.is_empty() || jwt.audiences.iter().any(|a| a.trim().is_empty()) {
        c.push(
            "spec.auth.jwt.audiences",
            "list at least one non-empty audience: a token for another service must not pass",
        );
    }
    match (&jwt.jwks.url, &jwt.jwks.secret_ref) {
        (Some(url), None) => {
            if let Err(why) = check_url(url) {
                c.push("spec.auth.jwt.jwks.url", why);
            }
        }
        (None, Some(secret)) => check_secret(secret, "spec.auth.jwt.jwks.secretRef", c),
        _ => c.push("spec.auth.jwt.jwks", "set exactly one of url and secretRef"),
    }
    if jwt
        .refresh_seconds
        .is_some_and(|s| !(10..=86_400).contains(&s))
    {
        c.push("spec.auth.jwt.refreshSeconds", "must be 10..86400");
    }
    if jwt.leeway_seconds.is_some_and(|s| s > 300) {
        c.push("spec.auth.jwt.leewaySeconds", "must be at most 300");
    }
    for (field, claim) in [
        ("principalClaim", jwt.principal_claim()),
        ("teamClaim", jwt.team_claim()),
    ] {
        if claim.is_empty() || claim.len() > 256 {
            c.push(
                format!("spec.auth.jwt.{field}"),
                "must be 1..256 characters",
            );
        }
    }
}

/// A team or principal name: printable, no separators a header or a label would split on.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b",;\"\\".contains(&b))
}

fn name_message(name: &str) -> String {
    format!(
        "{name:?} must be 1 to {MAX_NAME_LEN} printable ASCII characters without spaces, commas, semicolons, quotes or backslashes"
    )
}
