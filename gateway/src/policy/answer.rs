//! A custom policy's answer, decoded and checked: the action, and the classifications,
//! headers and annotations it adds. Anything malformed is an error, so the policy fails
//! (closed, unless configured open) instead of being half obeyed.

use http::{HeaderName, HeaderValue};
use llmkube_policy_sdk::output::{Output, OutputAction};
use llmkube_router::compiler::route_from;
use llmkube_router::routing::{Route, RoutingTable, Via};
use llmkube_router::spec::MAX_CLASSIFICATION_LEN;

use crate::http::headers::gateway_owned;

/// Most annotations per policy answer.
const MAX_ANNOTATIONS: usize = 16;

/// What a policy's answer contributes, validated.
pub(super) struct Answer {
    pub(super) action: Action,
    pub(super) add: Vec<String>,
    pub(super) set: Vec<(HeaderName, HeaderValue)>,
    pub(super) remove: Vec<HeaderName>,
    pub(super) notes: Vec<(String, String)>,
}

/// What the policy asked for.
pub(super) enum Action {
    Continue,
    Route(Route),
    Reject {
        status: u16,
        code: String,
        message: String,
    },
}

impl Answer {
    pub(super) fn from_output(
        out: &Output<'_>,
        table: &RoutingTable,
        policy: Option<usize>,
    ) -> Result<Self, String> {
        let action = match &out.action {
            OutputAction::Continue => Action::Continue,
            OutputAction::Reject {
                status,
                code,
                message,
            } => Action::Reject {
                status: *status,
                code: (*code).to_owned(),
                message: (*message).to_owned(),
            },
            OutputAction::Route {
                backends,
                strategy,
                fail_closed,
                timeout_ms,
                ..
            } => Action::Route(route_from(
                table,
                backends.clone(),
                *strategy,
                *fail_closed,
                *timeout_ms,
                policy.map_or(Via::Detector, Via::Policy),
            )?),
        };
        let mut add = Vec::new();
        for class in out.add_classifications() {
            let class = class.trim().to_ascii_lowercase();
            if class.is_empty() || class.len() > MAX_CLASSIFICATION_LEN || class.contains(',') {
                return Err(format!("invalid classification {class:?}"));
            }
            add.push(class);
        }
        let header = |name: &str| -> Result<HeaderName, String> {
            let name =
                HeaderName::try_from(name).map_err(|_| format!("invalid header name {name:?}"))?;
            if gateway_owned(&name) {
                return Err(format!("may not change header {name}"));
            }
            Ok(name)
        };
        let mut set = Vec::new();
        for (name, value) in out.set_headers() {
            let value = HeaderValue::try_from(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            set.push((header(name)?, value));
        }
        let remove = out
            .remove_headers()
            .map(header)
            .collect::<Result<Vec<_>, _>>()?;
        let notes: Vec<(String, String)> = out
            .annotations()
            .map(|(k, v)| (k.chars().take(64).collect(), v.chars().take(256).collect()))
            .collect();
        if notes.len() > MAX_ANNOTATIONS {
            return Err(format!("more than {MAX_ANNOTATIONS} annotations"));
        }
        Ok(Answer {
            action,
            add,
            set,
            remove,
            notes,
        })
    }
}
