//! The APIs clients and backends speak, and translation between them.
//!
//! A request arrives in one [`Api`]; each backend speaks one [`Wire`] protocol: OpenAI's chat
//! completions, or Anthropic's Messages for `provider: anthropic`. Their pair is a
//! [`Conversion`]: `Native` passes the client's bytes untouched (the path of every plain chat
//! request), the others translate the request for that backend and its answer back, JSON
//! ([`answer`]) or event stream ([`stream`]). Translation works on parsed JSON and refuses,
//! with a message naming it, any field the other API cannot express: nothing a client asks
//! for is silently dropped.

pub mod answer;
mod anthropic_answer;
mod anthropic_request;
mod anthropic_stream;
mod errors;
mod event;
mod fields;
mod messages_request;
mod responses_answer;
mod responses_request;
mod responses_stream;
pub mod stream;

use bytes::Bytes;
use llmkube_router::spec::Provider;
use serde_json::Value;

pub use errors::{ErrorShape, stream_error_event};
pub use fields::Untranslatable;
pub use responses_answer::Echo;

/// `max_tokens` sent to an Anthropic backend when the client set none (Anthropic requires it;
/// chat completions and the Responses API do not).
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u64 = 4096;
/// The Anthropic API version the gateway speaks, sent to every `anthropic` backend.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The endpoint a client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/messages` (Anthropic).
    Messages,
    /// `POST /v1/responses` (OpenAI, stateless).
    Responses,
}

impl Api {
    /// Every proxied endpoint, in the route table's order.
    pub const ALL: [Api; 5] = [
        Api::ChatCompletions,
        Api::Completions,
        Api::Embeddings,
        Api::Messages,
        Api::Responses,
    ];

    /// The endpoint at `path`.
    pub fn from_path(path: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.path() == path)
    }

    /// Its path.
    pub fn path(self) -> &'static str {
        match self {
            Api::ChatCompletions => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
            Api::Embeddings => "/v1/embeddings",
            Api::Messages => "/v1/messages",
            Api::Responses => "/v1/responses",
        }
    }

    /// How errors are written to its clients.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Api::Messages => ErrorShape::Anthropic,
            _ => ErrorShape::OpenAi,
        }
    }
}

/// What a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI's API (local servers, OpenAI, LiteLLM).
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Wire {
    /// The protocol of a backend with this provider (`None`: a local server).
    pub fn of(provider: Option<Provider>) -> Wire {
        match provider {
            Some(Provider::Anthropic) => Wire::Anthropic,
            _ => Wire::OpenAi,
        }
    }
}

/// How one request goes to one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The client's bytes, untouched.
    Native,
    /// Chat completions to an Anthropic backend.
    ChatToMessages,
    /// Anthropic Messages to an OpenAI-compatible backend.
    MessagesToChat,
    /// The Responses API to an OpenAI-compatible backend.
    ResponsesToChat,
    /// The Responses API to an Anthropic backend (through chat completions).
    ResponsesToMessages,
    /// The backend's API has no such endpoint (embeddings, legacy completions on Anthropic).
    Unsupported,
}

impl Conversion {
    /// The conversion of `api` for a backend speaking `wire`.
    pub fn new(api: Api, wire: Wire) -> Conversion {
        match (api, wire) {
            (Api::ChatCompletions | Api::Completions | Api::Embeddings, Wire::OpenAi)
            | (Api::Messages, Wire::Anthropic) => Conversion::Native,
            (Api::ChatCompletions, Wire::Anthropic) => Conversion::ChatToMessages,
            (Api::Messages, Wire::OpenAi) => Conversion::MessagesToChat,
            (Api::Responses, Wire::OpenAi) => Conversion::ResponsesToChat,
            (Api::Responses, Wire::Anthropic) => Conversion::ResponsesToMessages,
            (Api::Completions | Api::Embeddings, Wire::Anthropic) => Conversion::Unsupported,
        }
    }

    /// The backend path a translated request goes to (`None`: the client's own).
    pub fn upstream_path(self) -> Option<&'static str> {
        match self {
            Conversion::Native | Conversion::Unsupported => None,
            Conversion::ChatToMessages | Conversion::ResponsesToMessages => {
                Some(Api::Messages.path())
            }
            Conversion::MessagesToChat | Conversion::ResponsesToChat => {
                Some(Api::ChatCompletions.path())
            }
        }
    }

    /// The request body for the backend: `body` translated, with `model` when the backend
    /// replaces it. Only for conversions other than `Native`.
    pub fn translate_request(
        self,
        body: &[u8],
        model: Option<&str>,
    ) -> Result<Bytes, Untranslatable> {
        let Value::Object(request) = serde_json::from_slice(body)
            .map_err(|e| Untranslatable::new(format!("the body is not JSON: {e}")))?
        else {
            return Err(Untranslatable::new("the body is not a JSON object"));
        };
        let mut out = match self {
            Conversion::Native => return Ok(Bytes::copy_from_slice(body)),
            Conversion::Unsupported => {
                return Err(Untranslatable::new(
                    "Anthropic's API has no such endpoint (only chat completions, messages and responses translate)",
                ));
            }
            Conversion::ChatToMessages => anthropic_request::chat_to_messages(request)?,
            Conversion::MessagesToChat => messages_request::messages_to_chat(request)?,
            Conversion::ResponsesToChat => responses_request::responses_to_chat(request)?,
            Conversion::ResponsesToMessages => {
                anthropic_request::chat_to_messages(responses_request::responses_to_chat(request)?)?
            }
        };
        if let Some(model) = model {
            out.insert("model".into(), Value::from(model));
        }
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .map_err(|e| Untranslatable::new(format!("cannot encode the translated body: {e}")))
    }

    /// Whether answers are translated back.
    pub fn translates(self) -> bool {
        !matches!(self, Conversion::Native | Conversion::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_pair_every_api_with_every_wire() {
        for api in Api::ALL {
            assert_eq!(Api::from_path(api.path()), Some(api));
            for wire in [Wire::OpenAi, Wire::Anthropic] {
                let c = Conversion::new(api, wire);
                let native = matches!(
                    (api, wire),
                    (Api::Messages, Wire::Anthropic)
                        | (
                            Api::ChatCompletions | Api::Completions | Api::Embeddings,
                            Wire::OpenAi
                        )
                );
                assert_eq!(c == Conversion::Native, native, "{api:?} to {wire:?}");
            }
        }
        assert_eq!(Api::from_path("/v1/messages/count_tokens"), None);
    }
}
