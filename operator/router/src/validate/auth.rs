//! Checks of `spec.auth`: a way to authenticate, team names that are unique and bounded, and
//! globs and tiers a team's access can be decided by.

use std::collections::HashSet;

use super::Collector;
use crate::names::{check_model_glob, is_dns_subdomain};
use crate::spec::{MAX_NAME_LEN, ModelRouterSpec};

pub(super) fn check_auth(spec: &ModelRouterSpec, c: &mut Collector) {
    let Some(auth) = &spec.auth else { return };
    match &auth.api_keys {
        None => c.push(
            "spec.auth.apiKeys",
            "is required: API keys are the way this gateway authenticates (remove spec.auth to serve without authentication)",
        ),
        Some(keys) => {
            let secret = &keys.secret_ref;
            if !is_dns_subdomain(&secret.name) {
                c.push(
                    "spec.auth.apiKeys.secretRef.name",
                    format!("{:?} is not a valid Secret name", secret.name),
                );
            }
            let key = secret.key();
            let key_ok = !key.is_empty()
                && key.len() <= MAX_NAME_LEN
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !key_ok {
                c.push(
                    "spec.auth.apiKeys.secretRef.key",
                    format!("{key:?} is not a valid Secret key"),
                );
            }
        }
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
