//! Reading a client request: the bounded body and the routing facts from headers (the body's
//! JSON is read by [`crate::json_body`]).

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error::ApiError;

/// Longest time a client may take to send its body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Most classification values one request may carry.
const MAX_CLASSIFICATIONS: usize = 16;
/// Longest classification value.
const MAX_CLASSIFICATION_LEN: usize = 64;

/// Reads the whole body, refusing more than `limit` bytes (413) or a client slower than a minute (408).
pub async fn read_body(body: Incoming, headers: &HeaderMap, limit: u64) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::body_timeout()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Ok(Err(e)) => Err(ApiError::bad_request(
            format!("could not read the request body: {e}"),
            None,
        )),
    }
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

/// `(name, value)` of every occurrence of each header in `names` (lowercase) with a text value.
pub fn match_headers<'a>(headers: &'a HeaderMap, names: &'a [String]) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for name in names {
        for value in headers.get_all(name.as_str()) {
            if let Ok(text) = value.to_str() {
                out.push((name.as_str(), text));
            }
        }
    }
    out
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
}
