//! Reading a client request: the bounded body and the routing facts from headers (the body's
//! JSON is read by [`crate::request::json_body`]).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::http::error::ApiError;
use crate::request::body_budget::{BudgetFull, Reservation};
use llmkube_router::spec::{MAX_CLASSIFICATION_LEN, MAX_CLASSIFICATIONS};

/// Longest time a client may take to send its body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the whole body, refusing more than `limit` bytes (413) or a client slower than a
/// minute (408). Every byte is first reserved in `reservation`, `factor` times (the body, and
/// its text when the detector will scan it): the declared length up front, else frame by
/// frame; a budget that stays full answers 503 with `Retry-After`.
pub async fn read_body(
    mut body: Incoming,
    headers: &HeaderMap,
    limit: u64,
    reservation: &mut Reservation,
    factor: u64,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let full = |e: BudgetFull| ApiError::body_budget_full(e.retry_after_secs);
    if let Some(n) = declared {
        reservation.grow(n * factor).await.map_err(full)?;
    }
    let deadline = tokio::time::Instant::now() + BODY_READ_TIMEOUT;
    let mut frames: Vec<Bytes> = Vec::new();
    let mut len: u64 = 0;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(ApiError::body_timeout()),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(
                    format!("could not read the request body: {e}"),
                    None,
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > limit {
            return Err(ApiError::too_large(limit));
        }
        if declared.is_none() {
            reservation
                .grow(data.len() as u64 * factor)
                .await
                .map_err(full)?;
        }
        frames.push(data);
    }
    Ok(match frames.len() {
        0 => Bytes::new(),
        1 => frames.swap_remove(0),
        _ => {
            let mut all = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
            for f in &frames {
                all.extend_from_slice(f);
            }
            all.freeze()
        }
    })
}

/// The request's classifications from every occurrence of `header`: comma-separated,
/// trimmed, lowercased, de-duplicated. Too many or too long values are refused (400) rather
/// than partly ignored, so no value can be hidden behind a limit.
pub fn classifications(headers: &HeaderMap, header: &str) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for value in headers.get_all(header) {
        let text = value.to_str().map_err(|_| {
            ApiError::bad_request(format!("header {header} must be visible ASCII"), None)
        })?;
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if item.len() > MAX_CLASSIFICATION_LEN || out.len() >= MAX_CLASSIFICATIONS {
                return Err(ApiError::bad_request(
                    format!(
                        "header {header} may carry at most {MAX_CLASSIFICATIONS} values of at most {MAX_CLASSIFICATION_LEN} bytes"
                    ),
                    None,
                ));
            }
            let item = item.to_ascii_lowercase();
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifications_are_normalised_and_bounded() {
        let mut h = HeaderMap::new();
        h.append("x-c", "PII, internal".parse().unwrap());
        h.append("x-c", "pii,,phi".parse().unwrap());
        assert_eq!(
            classifications(&h, "x-c").unwrap(),
            ["pii", "internal", "phi"]
        );
        let mut many = HeaderMap::new();
        many.insert(
            "x-c",
            vec!["a"; 40].join(",").replace('a', "v").parse().unwrap(),
        );
        assert!(classifications(&many, "x-c").is_ok(), "duplicates collapse");
        let distinct: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        many.insert("x-c", distinct.join(",").parse().unwrap());
        assert!(classifications(&many, "x-c").is_err());
    }

    /// The header takes the values a rule can name, no longer: the spec's limit (63 bytes).
    #[test]
    fn a_classification_value_is_as_long_as_the_spec_allows() {
        let mut h = HeaderMap::new();
        h.insert("x-c", "a".repeat(63).parse().unwrap());
        assert!(classifications(&h, "x-c").is_ok());
        h.insert("x-c", "a".repeat(64).parse().unwrap());
        let err = classifications(&h, "x-c").unwrap_err();
        assert!(err.message.contains("at most 63 bytes"), "{}", err.message);
    }
}
