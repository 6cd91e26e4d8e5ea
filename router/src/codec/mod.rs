//! (being written by the codec owner) bytes ⇄ tree.

/// A decoding or encoding failure, with the position in the input when known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{format} at {position}: {message}")]
pub struct CodecError {
    /// Which codec: `json`, `xml`, `soap`, `tax-gip`, `station-file`.
    pub format: &'static str,
    /// Human-readable position: `line 3, column 7`, `byte 120`, `line 4 (field 2)`, or `-`.
    pub position: String,
    pub message: String,
}
