//! [`Invalid`]: input from outside the process that is not acceptable.

/// Input from outside the process (a request, a message, a file) that is not acceptable;
/// the message names the field and what is wrong with it. Retrying never helps: the input
/// must change, so callers answer it as a client error (HTTP 4xx, a dead letter, exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Self(message.to_string())
    }
}
