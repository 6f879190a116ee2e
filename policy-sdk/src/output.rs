//! A policy's answer: a [`Decision`] and its encoding.
//!
//! ```text
//! u8   output version (1)
//! u8   action: 0 continue, 1 route, 2 reject
//! route:  u8 strategy (0 = the route's own, 1 primary-fallback, 2 weighted, 3 shadow),
//!         u8 fail-closed (0/1), u32 timeout in ms (0 = none), str rule, list<str> backends
//! reject: u16 status, str code, str message
//! list<str>          classifications to add
//! list<(str, str)>   headers to set
//! list<str>          headers to remove
//! list<(str, str)>   annotations for the audit line
//! ```

use crate::wire::{Reader, Strs, WireError, Writer};

/// Version byte of this layout.
pub const OUTPUT_VERSION: u8 = 1;

/// How routed backends are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// In order, falling back on failure.
    PrimaryFallback,
    /// One picked by weight, the others as fallbacks.
    Weighted,
    /// The first answers, copies go to the others.
    Shadow,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No opinion: the next policy (or the rules) decides.
    Continue,
    /// Send the request to these backends.
    Route {
        /// Backend names, in preference order.
        backends: Vec<String>,
        /// Strategy; `None` keeps primary-fallback (or the rule's own, for the rule module).
        strategy: Option<Strategy>,
        /// Deny instead of falling through when none of them can serve.
        fail_closed: bool,
        /// Per-attempt timeout in milliseconds.
        timeout_ms: Option<u32>,
        /// Name of the rule that produced this route (the rule module sets it).
        rule: Option<String>,
    },
    /// Refuse the request.
    Reject {
        /// HTTP status (400..=599).
        status: u16,
        /// Machine-readable code for the error body.
        code: String,
        /// Message for the client.
        message: String,
    },
}

/// A policy's full answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Classifications to add (a policy can add, never remove).
    pub add_classifications: Vec<String>,
    /// Headers to set on the upstream request.
    pub set_headers: Vec<(String, String)>,
    /// Headers to remove from the upstream request.
    pub remove_headers: Vec<String>,
    /// Key/value notes for the audit line.
    pub annotations: Vec<(String, String)>,
}

impl Decision {
    fn of(action: Action) -> Self {
        Decision {
            action,
            add_classifications: Vec::new(),
            set_headers: Vec::new(),
            remove_headers: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// No opinion: let the next policy or the rules decide.
    pub fn proceed() -> Self {
        Self::of(Action::Continue)
    }

    /// Route to `backends` (by name), primary-fallback.
    pub fn route<S: Into<String>>(backends: impl IntoIterator<Item = S>) -> Self {
        Self::of(Action::Route {
            backends: backends.into_iter().map(Into::into).collect(),
            strategy: None,
            fail_closed: false,
            timeout_ms: None,
            rule: None,
        })
    }

    /// Refuse with `status` and `message` (code `policy_rejected`).
    pub fn reject(status: u16, message: impl Into<String>) -> Self {
        Self::of(Action::Reject {
            status,
            code: "policy_rejected".to_owned(),
            message: message.into(),
        })
    }

    /// Adds a classification (e.g. `pii`).
    pub fn classify(mut self, classification: impl Into<String>) -> Self {
        self.add_classifications.push(classification.into());
        self
    }

    /// Sets a header on the upstream request.
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_headers.push((name.into(), value.into()));
        self
    }

    /// Removes a header from the upstream request.
    pub fn remove_header(mut self, name: impl Into<String>) -> Self {
        self.remove_headers.push(name.into());
        self
    }

    /// Adds a note to the audit line.
    pub fn annotate(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }

    /// For a route: the strategy.
    ///
    /// # Panics
    /// On a decision that is not a route: a setting that would be ignored is a bug in the
    /// policy, and a panic (a trap under the gateway, so the policy fails) shows it in the
    /// policy's own tests instead of in production.
    #[track_caller]
    pub fn with_strategy(mut self, s: Strategy) -> Self {
        match &mut self.action {
            Action::Route { strategy, .. } => *strategy = Some(s),
            other => wrong_action("with_strategy", "route", other),
        }
        self
    }

    /// For a route: deny rather than fall through when its backends cannot serve.
    ///
    /// # Panics
    /// On a decision that is not a route (see [`Decision::with_strategy`]).
    #[track_caller]
    pub fn fail_closed(mut self) -> Self {
        match &mut self.action {
            Action::Route { fail_closed, .. } => *fail_closed = true,
            other => wrong_action("fail_closed", "route", other),
        }
        self
    }

    /// For a route: per-attempt timeout.
    ///
    /// # Panics
    /// On a decision that is not a route (see [`Decision::with_strategy`]).
    #[track_caller]
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        match &mut self.action {
            Action::Route { timeout_ms, .. } => *timeout_ms = Some(ms),
            other => wrong_action("timeout_ms", "route", other),
        }
        self
    }

    /// For a reject: the machine-readable code.
    ///
    /// # Panics
    /// On a decision that is not a reject (see [`Decision::with_strategy`]).
    #[track_caller]
    pub fn with_code(mut self, c: impl Into<String>) -> Self {
        match &mut self.action {
            Action::Reject { code, .. } => *code = c.into(),
            other => wrong_action("with_code", "reject", other),
        }
        self
    }

    /// Encodes the decision.
    pub fn encode(&self, w: &mut Writer) {
        w.u8(OUTPUT_VERSION);
        match &self.action {
            Action::Continue => w.u8(0),
            Action::Route {
                backends,
                strategy,
                fail_closed,
                timeout_ms,
                rule,
            } => {
                w.u8(1);
                w.u8(match strategy {
                    None => 0,
                    Some(Strategy::PrimaryFallback) => 1,
                    Some(Strategy::Weighted) => 2,
                    Some(Strategy::Shadow) => 3,
                });
                w.u8(u8::from(*fail_closed));
                w.u32(timeout_ms.unwrap_or(0));
                w.str(rule.as_deref().unwrap_or(""));
                w.strs(backends.iter().map(String::as_str));
            }
            Action::Reject {
                status,
                code,
                message,
            } => {
                w.u8(2);
                w.u16(*status);
                w.str(code);
                w.str(message);
            }
        }
        w.strs(self.add_classifications.iter().map(String::as_str));
        pairs(w, &self.set_headers);
        w.strs(self.remove_headers.iter().map(String::as_str));
        pairs(w, &self.annotations);
    }

    /// Encodes the decision into a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        self.encode(&mut w);
        w.buf
    }
}

fn pairs(w: &mut Writer, items: &[(String, String)]) {
    w.u32(items.len() as u32);
    for (k, v) in items {
        w.str(k);
        w.str(v);
    }
}

/// A decoded output, borrowing from the guest's buffer (what the host reads).
#[derive(Debug, Clone)]
pub struct Output<'a> {
    /// What to do (names borrowed).
    pub action: OutputAction<'a>,
    add_classifications: &'a [u8],
    set_headers: &'a [u8],
    remove_headers: &'a [u8],
    annotations: &'a [u8],
}

/// [`Action`], borrowing.
#[derive(Debug, Clone)]
pub enum OutputAction<'a> {
    /// No opinion.
    Continue,
    /// Send the request to these backends (a route decision).
    Route {
        /// Backend names.
        backends: Strs<'a>,
        /// Strategy, `None` = unspecified.
        strategy: Option<Strategy>,
        /// Refuse (503) rather than fall back beyond `backends` when they all fail.
        fail_closed: bool,
        /// Per-attempt time to response headers, in milliseconds.
        timeout_ms: Option<u32>,
        /// Rule name.
        rule: Option<&'a str>,
    },
    /// Refuse the request with this error.
    Reject {
        /// HTTP status, 400..=599.
        status: u16,
        /// Machine-readable, e.g. `tenant_unknown`.
        code: &'a str,
        /// Shown to the client.
        message: &'a str,
    },
}

impl std::fmt::Debug for Strs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<'a> Output<'a> {
    /// Decodes and validates an output.
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        if r.u8()? != OUTPUT_VERSION {
            return Err(WireError {
                offset: 0,
                what: "unknown output version",
            });
        }
        let action = match r.u8()? {
            0 => OutputAction::Continue,
            1 => {
                let strategy = match r.u8()? {
                    0 => None,
                    1 => Some(Strategy::PrimaryFallback),
                    2 => Some(Strategy::Weighted),
                    3 => Some(Strategy::Shadow),
                    _ => {
                        return Err(WireError {
                            offset: 2,
                            what: "unknown strategy",
                        });
                    }
                };
                let fail_closed = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(WireError {
                            offset: 3,
                            what: "fail-closed must be 0 or 1",
                        });
                    }
                };
                let timeout = r.u32()?;
                let rule = r.str()?;
                let n = r.count(4)?;
                if n == 0 {
                    return Err(WireError {
                        offset: 8,
                        what: "a route needs at least one backend",
                    });
                }
                OutputAction::Route {
                    backends: Strs::new(r.strs(n)?),
                    strategy,
                    fail_closed,
                    timeout_ms: (timeout > 0).then_some(timeout),
                    rule: (!rule.is_empty()).then_some(rule),
                }
            }
            2 => {
                let status = r.u16()?;
                if !(400..=599).contains(&status) {
                    return Err(WireError {
                        offset: 2,
                        what: "reject status must be 400..=599",
                    });
                }
                OutputAction::Reject {
                    status,
                    code: r.str()?,
                    message: r.str()?,
                }
            }
            _ => {
                return Err(WireError {
                    offset: 1,
                    what: "unknown action",
                });
            }
        };
        let n = r.count(4)?;
        let add_classifications = r.strs(n)?;
        let n = r.count(8)?;
        let set_headers = r.strs(n * 2)?;
        let n = r.count(4)?;
        let remove_headers = r.strs(n)?;
        let n = r.count(8)?;
        let annotations = r.strs(n * 2)?;
        r.finish()?;
        Ok(Output {
            action,
            add_classifications,
            set_headers,
            remove_headers,
            annotations,
        })
    }

    /// Classifications to add.
    pub fn add_classifications(&self) -> Strs<'a> {
        Strs::new(self.add_classifications)
    }

    /// Headers to set.
    pub fn set_headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        pairs_of(self.set_headers)
    }

    /// Headers to remove.
    pub fn remove_headers(&self) -> Strs<'a> {
        Strs::new(self.remove_headers)
    }

    /// Audit annotations.
    pub fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        pairs_of(self.annotations)
    }

    /// An owned copy (for tests and fixtures).
    pub fn to_decision(&self) -> Decision {
        let owned = |it: Strs<'a>| it.map(str::to_owned).collect::<Vec<_>>();
        let owned_pairs = |raw| {
            pairs_of(raw)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        Decision {
            action: match &self.action {
                OutputAction::Continue => Action::Continue,
                OutputAction::Route {
                    backends,
                    strategy,
                    fail_closed,
                    timeout_ms,
                    rule,
                } => Action::Route {
                    backends: owned(backends.clone()),
                    strategy: *strategy,
                    fail_closed: *fail_closed,
                    timeout_ms: *timeout_ms,
                    rule: rule.map(str::to_owned),
                },
                OutputAction::Reject {
                    status,
                    code,
                    message,
                } => Action::Reject {
                    status: *status,
                    code: (*code).to_owned(),
                    message: (*message).to_owned(),
                },
            },
            add_classifications: owned(self.add_classifications()),
            set_headers: owned_pairs(self.set_headers),
            remove_headers: owned(self.remove_headers()),
            annotations: owned_pairs(self.annotations),
        }
    }
}

fn pairs_of(raw: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    let mut it = Strs::new(raw);
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
}

/// A builder setting applied to the wrong kind of decision.
#[track_caller]
fn wrong_action(setting: &str, applies_to: &str, action: &Action) -> ! {
    let kind = match action {
        Action::Continue => "proceed",
        Action::Route { .. } => "route",
        Action::Reject { .. } => "reject",
    };
    panic!("Decision::{setting} applies to a {applies_to}, not to a {kind}")
}
