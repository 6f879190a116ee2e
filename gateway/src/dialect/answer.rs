//! Whole (non-streamed) answers translated back into the client's API: success bodies by the
//! conversion's mapping, error bodies into the client's error object.

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use super::errors::translate_error;
use super::stream::StreamContext;
use super::{Api, Conversion, anthropic_answer, responses_answer};

/// The backend's answer `body` with `status`, as the client of `api` reads it; `Err` when a
/// successful answer cannot be read or expressed (the client gets a 502).
pub fn translate_answer(
    api: Api,
    conversion: Conversion,
    status: StatusCode,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<Bytes, String> {
    if !status.is_success() {
        return Ok(translate_error(api.error_shape(), status, body));
    }
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the backend's answer is not JSON ({e})"))?;
    let translated = match conversion {
        Conversion::Native | Conversion::Unsupported => return Ok(Bytes::copy_from_slice(body)),
        Conversion::ChatToMessages => anthropic_answer::messages_to_chat(&answer, ctx.created),
        Conversion::MessagesToChat => anthropic_answer::chat_to_messages(&answer, &ctx.request_id)?,
        Conversion::ResponsesToChat => {
            responses_answer::chat_to_responses(&answer, &ctx.echo, ctx.created)
        }
        Conversion::ResponsesToMessages => responses_answer::chat_to_responses(
            &anthropic_answer::messages_to_chat(&answer, ctx.created),
            &ctx.echo,
            ctx.created,
        ),
    };
    serde_json::to_vec(&translated)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode the translated answer: {e}"))
}
