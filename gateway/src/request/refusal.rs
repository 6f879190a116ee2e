//! A request the gateway will not serve, or could not: the error the client gets and the
//! outcome its audit line records, decided together so they never disagree.

use std::time::Instant;

use http::Response;

use crate::auth::Denied;
use crate::http::body::GatewayBody;
use crate::http::error::ApiError;
use crate::request::record::{Outcome, RequestRecord};

/// The error answered and the outcome recorded.
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub outcome: Outcome,
}

impl Refusal {
    pub fn new(error: ApiError, outcome: Outcome) -> Self {
        Refusal { error, outcome }
    }

    /// A request the client got wrong (400, 408, 413: the error says which).
    pub fn bad_request(error: ApiError) -> Self {
        Refusal::new(error, Outcome::BadRequest)
    }

    /// 401 or 403.
    pub fn denied(denied: Denied) -> Self {
        let outcome = match denied {
            Denied::Unauthenticated(_) => Outcome::Unauthenticated,
            Denied::Forbidden(_) => Outcome::Forbidden,
        };
        Refusal::new(ApiError::denied(denied), outcome)
    }

    /// Ends the request: writes its audit line and answers the error.
    pub fn answer(self, mut rec: RequestRecord) -> Response<GatewayBody> {
        rec.status = self.error.status.as_u16();
        rec.error = Some(self.error.message.clone());
        rec.headers_sent = Some(Instant::now());
        rec.finish(self.outcome);
        self.error.into_response_as(rec.api.error_shape())
    }
}
