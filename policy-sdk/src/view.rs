//! The request view: what a policy sees of a request.
//!
//! ```text
//! u8   view version (1)
//! u8   flags: bit 0 = stream, bit 1 = prompt present
//! str  method, str path, str model
//! list<str>          classifications so far (lowercase)
//! list<(str, str)>   headers the policy asked for (lowercase names), one entry per occurrence
//! str  rule that matched (empty before rules run)
//! list<str>          backends of the route so far (empty before rules run)
//! str  prompt text (message contents joined by "\n", capped), when asked for and present
//! str  principal, str team (ABI minor >= 1; empty when there is none)
//! u32 n, then n × (str tier, list<str> capabilities), one per route backend, in route order
//!     (ABI minor >= 2)
//! ```
//! Decoding validates everything once; the accessors then borrow from the buffer.

use crate::wire::{Reader, Strs, WireError, Writer};

/// Version byte of this layout.
pub const VIEW_VERSION: u8 = 1;
const FLAG_STREAM: u8 = 1;
const FLAG_PROMPT: u8 = 2;

/// What the host encodes for a policy (borrowing from the request).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestView<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: &'a str,
    /// Body `model`.
    pub model: &'a str,
    /// Body `stream`.
    pub stream: bool,
    /// Classifications so far.
    pub classifications: &'a [String],
    /// `(lowercase name, value)` of the headers the policy asked for.
    pub headers: &'a [(&'a str, &'a str)],
    /// Rule that matched, when evaluating after the rules.
    pub rule: Option<&'a str>,
    /// Backends of the route so far.
    pub route_backends: &'a [&'a str],
    /// Prompt text, for policies that need it.
    pub prompt: Option<&'a str>,
    /// Who sent the request, when the router authenticates (`spec.auth`). ABI minor 1.
    pub principal: Option<&'a str>,
    /// The team the request is for. ABI minor 1.
    pub team: Option<&'a str>,
    /// Tier and capabilities of each of `route_backends`, in the same order. ABI minor 2.
    pub route_details: &'a [BackendDetail<'a>],
}

/// What a policy sees of a route backend besides its name.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackendDetail<'a> {
    /// `local` or `cloud`.
    pub tier: &'a str,
    /// The backend's `capabilities`.
    pub capabilities: &'a [String],
}

impl RequestView<'_> {
    /// Encodes the view in the current layout.
    pub fn encode(&self, w: &mut Writer) {
        self.encode_for(crate::abi::MINOR, w);
    }

    /// Encodes the view as a module built for ABI minor `minor` reads it: fields added after
    /// that minor are left out (such a module refuses trailing bytes).
    pub fn encode_for(&self, minor: u32, w: &mut Writer) {
        w.u8(VIEW_VERSION);
        let flags = if self.stream { FLAG_STREAM } else { 0 }
            | if self.prompt.is_some() {
                FLAG_PROMPT
            } else {
                0
            };
        w.u8(flags);
        w.str(self.method);
        w.str(self.path);
        w.str(self.model);
        w.strs(self.classifications.iter().map(String::as_str));
        w.u32(self.headers.len() as u32);
        for (name, value) in self.headers {
            w.str(name);
            w.str(value);
        }
        w.str(self.rule.unwrap_or(""));
        w.strs(self.route_backends.iter().copied());
        w.str(self.prompt.unwrap_or(""));
        if minor >= 1 {
            w.str(self.principal.unwrap_or(""));
            w.str(self.team.unwrap_or(""));
        }
        if minor >= 2 {
            w.u32(self.route_details.len() as u32);
            for d in self.route_details {
                w.str(d.tier);
                w.strs(d.capabilities.iter().map(String::as_str));
            }
        }
    }

    /// Encodes the view into a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256 + self.prompt.map_or(0, str::len));
        self.encode(&mut w);
        w.buf
    }
}

/// A decoded request view: what a policy's `evaluate` receives.
#[derive(Clone)]
pub struct Request<'a> {
    method: &'a str,
    path: &'a str,
    model: &'a str,
    stream: bool,
    classifications: &'a [u8],
    headers: &'a [u8],
    rule: &'a str,
    route_backends: &'a [u8],
    prompt: Option<&'a str>,
    principal: &'a str,
    team: &'a str,
    /// `n × (str tier, list<str> capabilities)`, validated; empty from an older host.
    route_details: &'a [u8],
}

/// A backend of the route so far: its name, tier and capabilities.
#[derive(Debug, Clone, Copy)]
pub struct RouteBackend<'a> {
    /// Backend name.
    pub name: &'a str,
    /// `local` or `cloud` (empty from a gateway older than ABI 1.2).
    pub tier: &'a str,
    capabilities: &'a [u8],
}

impl<'a> RouteBackend<'a> {
    /// Whether the backend is in the cloud tier: data sent there leaves the site.
    pub fn is_cloud(&self) -> bool {
        self.tier == "cloud"
    }

    /// The backend's capability tags.
    pub fn capabilities(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        Strs::new(self.capabilities)
    }
}

impl<'a> Request<'a> {
    /// Decodes and validates a view.
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        if r.u8()? != VIEW_VERSION {
            return Err(WireError {
                offset: 0,
                what: "unknown view version",
            });
        }
        let flags = r.u8()?;
        let (method, path, model) = (r.str()?, r.str()?, r.str()?);
        let n = r.count(4)?;
        let classifications = r.strs(n)?;
        let n = r.count(8)?;
        let headers = r.strs(n * 2)?;
        let rule = r.str()?;
        let n = r.count(4)?;
        let route_backends = r.strs(n)?;
        let prompt = r.str()?;
        // Minor 1 fields; a host of minor 0 does not send them.
        let (principal, team) = if r.is_empty() {
            ("", "")
        } else {
            (r.str()?, r.str()?)
        };
        // Minor 2: one (tier, capabilities) per route backend.
        let route_details = if r.is_empty() {
            &[][..]
        } else {
            if r.count(8)? != n {
                return Err(WireError {
                    offset: buf.len() - r.rest().len(),
                    what: "route details do not match the route",
                });
            }
            let mut probe = r.clone();
            for _ in 0..n {
                probe.str()?;
                let m = probe.count(4)?;
                probe.strs(m)?;
            }
            r.bytes(r.rest().len() - probe.rest().len())?
        };
        r.finish()?;
        Ok(Request {
            method,
            path,
            model,
            stream: flags & FLAG_STREAM != 0,
            classifications,
            headers,
            rule,
            route_backends,
            prompt: (flags & FLAG_PROMPT != 0).then_some(prompt),
            principal,
            team,
            route_details,
        })
    }

    /// HTTP method.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// Request path.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// Body `model` (empty when absent).
    pub fn model(&self) -> &'a str {
        self.model
    }

    /// Body `stream`.
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// Classifications so far (lowercase).
    pub fn classifications(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        Strs::new(self.classifications)
    }

    /// Whether the request already carries `classification`.
    pub fn has_classification(&self, classification: &str) -> bool {
        self.classifications().any(|c| c == classification)
    }

    /// `(name, value)` of every header the policy asked for, per occurrence.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let mut it = Strs::new(self.headers);
        std::iter::from_fn(move || Some((it.next()?, it.next()?)))
    }

    /// The first value of header `name`, in any case (header names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The rule that matched, when the policy runs after the rules.
    pub fn rule(&self) -> Option<&'a str> {
        (!self.rule.is_empty()).then_some(self.rule)
    }

    /// Backends of the route so far (names only; [`Request::route`] adds tiers).
    pub fn route_backends(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        Strs::new(self.route_backends)
    }

    /// Backends of the route so far with their tier and capabilities, so a policy can keep a
    /// team off the cloud without copying the router's list of cloud backends into its config.
    pub fn route(&self) -> impl Iterator<Item = RouteBackend<'a>> + use<'a> {
        let mut names = Strs::new(self.route_backends);
        let mut details = Reader::new(self.route_details);
        std::iter::from_fn(move || {
            let name = names.next()?;
            // Validated by `decode`; an older host sent none.
            let (tier, capabilities) = match details.str() {
                Ok(tier) => {
                    let m = details.u32().unwrap_or(0) as usize;
                    (tier, details.strs(m).unwrap_or(&[]))
                }
                Err(_) => ("", &[][..]),
            };
            Some(RouteBackend {
                name,
                tier,
                capabilities,
            })
        })
    }

    /// The prompt text (message contents), when the policy declared it needs it.
    pub fn prompt(&self) -> Option<&'a str> {
        self.prompt
    }

    /// Who sent the request, when the router authenticates (`spec.auth`): the principal its
    /// API key names.
    pub fn principal(&self) -> Option<&'a str> {
        (!self.principal.is_empty()).then_some(self.principal)
    }

    /// The team the request is for: its key's team (or the one a principal allowed to act for
    /// teams names), or without `spec.auth` what `x-llmkube-team` says.
    pub fn team(&self) -> Option<&'a str> {
        (!self.team.is_empty()).then_some(self.team)
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("model", &self.model)
            .field("stream", &self.stream)
            .field(
                "classifications",
                &self.classifications().collect::<Vec<_>>(),
            )
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("rule", &self.rule())
            .field("route_backends", &self.route_backends().collect::<Vec<_>>())
            .field("prompt", &self.prompt)
            .field("principal", &self.principal())
            .field("team", &self.team())
            .finish()
    }
}
