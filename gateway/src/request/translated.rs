//! A backend's whole answer in another API than the client's: read (bounded in size and
//! time), its usage metered, translated, then sent. Streams are translated as they pass
//! instead (see [`crate::dialect::stream`] and the request record).

use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::dialect::Conversion;
use crate::dialect::answer::translate_answer;
use crate::http::body::GatewayBody;
use crate::http::error::ApiError;
use crate::request::record::{Outcome, RequestRecord};
use crate::request::refusal::Refusal;
use crate::router::snapshot::RouterSnapshot;
use crate::usage::{JSON_METER_MAX, UsageMeter};

/// Reads, translates and answers the backend's whole answer.
pub async fn respond_whole(
    snap: &RouterSnapshot,
    mut head: http::response::Parts,
    body: Incoming,
    conversion: Conversion,
    mut rec: RequestRecord,
) -> Response<GatewayBody> {
    let name = rec
        .backend
        .map_or("", |b| snap.backends[b].name.as_str())
        .to_owned();
    let idle = snap.settings.stream_idle_timeout;
    let read = tokio::time::timeout(idle, Limited::new(body, JSON_METER_MAX).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => {
            let e = ApiError::all_backends_failed(format!(
                "backend {name:?} answered with a body that could not be read whole for translation (at most {JSON_METER_MAX} bytes): {e}"
            ));
            return Refusal::new(e, Outcome::StreamError).answer(rec);
        }
        Err(_) => {
            let e = ApiError::timeout(format!(
                "backend {name:?} sent its headers but not its body within {}s",
                idle.as_secs_f64()
            ));
            return Refusal::new(e, Outcome::StreamError).answer(rec);
        }
    };
    rec.ttfb = Some(rec.started.elapsed());
    let mut meter = UsageMeter::json();
    meter.read_whole(&bytes);
    rec.accounting.meter = Some(meter);
    match translate_answer(rec.api, conversion, head.status, &bytes, &rec.dialect) {
        Ok(out) => {
            head.headers.remove(header::CONTENT_LENGTH);
            head.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            rec.bytes_out = out.len() as u64;
            rec.headers_sent = Some(std::time::Instant::now());
            rec.finish(Outcome::Ok);
            Response::from_parts(head, GatewayBody::full(out))
        }
        Err(why) => {
            let e = ApiError::all_backends_failed(format!("backend {name:?}: {why}"));
            Refusal::new(e, Outcome::AllBackendsFailed).answer(rec)
        }
    }
}
