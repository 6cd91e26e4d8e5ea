//! The codec error: what is wrong and where.
//!
//! A partner's support engineer reads these messages (they are returned in the
//! `400` body and written to the trail), so each one names the codec, a position
//! they can find in their payload, and the problem in plain words.

/// A decoding or encoding failure, with the position in the input when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} at {position}: {message}")]
pub struct CodecError {
    /// Which codec: `json`, `xml`, `soap`, `tax-gip`, `station-file`.
    pub format: &'static str,
    /// Human-readable position: `line 3, column 7`, `byte 120`, `line 4 (field 2)`, or `-`.
    pub position: String,
    pub message: String,
}

impl CodecError {
    /// An error at a known position.
    pub fn at(
        format: &'static str,
        position: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        CodecError {
            format,
            position: position.into(),
            message: message.into(),
        }
    }

    /// An error without a position in the input (encoding problems, whole-input problems).
    /// For encoders the "position" is the path in the tree, when there is one.
    pub fn general(format: &'static str, message: impl Into<String>) -> Self {
        CodecError {
            format,
            position: "-".into(),
            message: message.into(),
        }
    }

    /// Re-labels an error raised by an inner codec (e.g. the XML parser used by the
    /// SOAP codec), prefixing where the inner document sits in the outer one.
    pub(crate) fn within(self, format: &'static str, context: &str) -> Self {
        CodecError {
            format,
            position: self.position,
            message: format!("{context}: {}", self.message),
        }
    }
}
