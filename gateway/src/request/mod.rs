//! One proxied request from its bytes to its audit line: read and parse, decide, dispatch to
//! the route's backends, respond. [`proxy`] lists the steps.

mod accounting;
pub(crate) mod body_budget;
pub(crate) mod body_text;
pub(crate) mod dispatch;
pub(crate) mod inbound;
pub(crate) mod json_body;
pub(crate) mod proxy;
pub(crate) mod record;
mod refusal;
mod spans;
mod translated;
pub(crate) mod upstream;
