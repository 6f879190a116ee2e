//! Taking a request apart field by field, so that whatever is left over — a field the other
//! API cannot express — is refused by name instead of dropped.

use serde_json::{Map, Value};

/// A request that cannot be expressed in the backend's API (a 400 for the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Untranslatable(pub String);

impl Untranslatable {
    /// With this message.
    pub fn new(message: impl Into<String>) -> Self {
        Untranslatable(message.into())
    }
}

/// The fields of one JSON object, taken out one at a time.
pub struct Fields {
    map: Map<String, Value>,
    /// How the object is named in messages (`the request`, `messages[2]`).
    what: String,
    /// The API the leftovers cannot go to (`Anthropic's Messages API`).
    target: &'static str,
}

impl Fields {
    /// Fields of `map`, for messages about `what` going to `target`.
    pub fn new(map: Map<String, Value>, what: impl Into<String>, target: &'static str) -> Self {
        Fields {
            map,
            what: what.into(),
            target,
        }
    }

    /// `key`, when present and not `null`.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// `key` as a string, when present; an error when it is not a string.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, Untranslatable> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(format!("{key:?} must be a string"))),
        }
    }

    /// Drops `key` when it holds `neutral` (or is absent); refuses any other value.
    pub fn only(&mut self, key: &str, neutral: &[Value]) -> Result<(), Untranslatable> {
        match self.take(key) {
            None => Ok(()),
            Some(v) if neutral.contains(&v) => Ok(()),
            Some(_) => Err(self.unsupported(key)),
        }
    }

    /// Drops a field that changes nothing in the answer (a caching hint).
    pub fn ignore(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Moves `key` unchanged into `out` (as `to`).
    pub fn copy(&mut self, key: &str, out: &mut Map<String, Value>, to: &str) {
        if let Some(v) = self.take(key) {
            out.insert(to.to_owned(), v);
        }
    }

    /// The refusal of `key`.
    pub fn unsupported(&self, key: &str) -> Untranslatable {
        self.error(format!(
            "{key:?} has no equivalent in {} and would be lost; remove it or use a backend that speaks this API",
            self.target
        ))
    }

    /// An error about this object.
    pub fn error(&self, message: String) -> Untranslatable {
        Untranslatable(format!("{}: {message}", self.what))
    }

    /// Ends the taking: any field still there is refused (a `null` one means "not set").
    pub fn finish(self) -> Result<(), Untranslatable> {
        match self.map.iter().find(|(_, v)| !v.is_null()).map(|(k, _)| k) {
            None => Ok(()),
            Some(key) => Err(self.unsupported(key)),
        }
    }
}

/// `v` as an object, or an error naming `what`.
pub fn object(v: Value, what: &str) -> Result<Map<String, Value>, Untranslatable> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(Untranslatable(format!("{what} must be an object"))),
    }
}

/// `v` as an array, or an error naming `what`.
pub fn array(v: Value, what: &str) -> Result<Vec<Value>, Untranslatable> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(Untranslatable(format!("{what} must be an array"))),
    }
}
