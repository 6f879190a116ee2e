//! What the body reader hands the classification pipeline: the body's strings as one text, or
//! why there is none. A leaf type, so the pipeline does not depend on the reader.

/// The body's strings as one text (joined by newlines), when the request needs them.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyText {
    /// Nothing asked for the text.
    NotCollected,
    /// Every key, string value and integer of the body.
    Complete(String),
    /// The body is larger than the scan limit: it was validated but not collected, and must
    /// be treated as sensitive.
    OverScanLimit,
}

impl BodyText {
    /// The text, when it was collected.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            BodyText::Complete(s) => Some(s),
            _ => None,
        }
    }
}
