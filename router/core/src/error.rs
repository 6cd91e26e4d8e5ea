//! The crate's one error type.
//!
//! Following Quickwit's `Retryable` idea, every error knows whether trying the
//! same thing again later could succeed ([`Error::is_retryable`]). The delivery
//! layer uses that to decide between a delayed retry and a dead letter; the HTTP
//! layer uses it to choose between 4xx (the caller must change something) and
//! 503 (come back later).

use std::fmt;

/// A problem found in a file an administrator edits (config, routes, mapping,
/// schema, lookup), with its position. Validation collects all of them at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file, relative to the working directory when possible.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// The rule or key the problem is about (e.g. `rules[3] (target: NgayHenTra)`), may be empty.
    pub context: String,
    /// What is wrong and, where possible, what to do about it.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `line:column` of `file`, about `context`.
    pub fn at(
        file: &str,
        line: usize,
        column: usize,
        context: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            context: context.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        if !self.context.is_empty() {
            write!(f, ": {}", self.context)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found by one validation pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// `Ok(())` when empty, otherwise `Err(self)`.
    pub fn into_result(self) -> std::result::Result<(), Diagnostics> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        write!(f, "{} error(s)", self.0.len())
    }
}

impl std::error::Error for Diagnostics {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A lower layer's error, kept as the `#[source]` of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The router crate's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration, routes, mappings or schemas are invalid. Fix the files.
    #[error("invalid configuration:\n{0}")]
    Invalid(Diagnostics),

    /// Bytes could not be decoded (malformed JSON/XML, not UTF-8, DOCTYPE, too deep, too large...).
    #[error("{0}")]
    Codec(#[from] crate::codec::CodecError),

    /// A message does not satisfy its JSON Schema. One entry per failing instance path.
    #[error("schema {schema}: {} violation(s): {}", .violations.len(), .violations.join("; "))]
    Schema {
        schema: String,
        violations: Vec<String>,
    },

    /// Mapping a message failed (missing required field, unknown lookup code, bad date...).
    #[error("mapping {mapping}: {message}")]
    Mapping { mapping: String, message: String },

    /// The store (SQLite/PostgreSQL) failed. `source` keeps the driver's
    /// error where there is one, boxed so that crates which never touch a
    /// database do not depend on its driver.
    #[error("store: {message}")]
    Store {
        message: String,
        retryable: bool,
        #[source]
        source: Option<BoxError>,
    },

    /// The queue backend failed.
    #[error("queue: {message}")]
    Queue { message: String, retryable: bool },

    /// A delivery to a partner failed.
    #[error("delivery to {destination}: {message}")]
    Delivery {
        destination: String,
        message: String,
        retryable: bool,
    },

    /// The caller is not allowed (bad key, bad signature, wrong role).
    #[error("unauthorized: {0}")]
    Unauthorized(String),

    /// The request refers to something that does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// The hub is shutting down or over a limit; try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// Local I/O (files, sockets).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Could the same operation succeed if tried again later, unchanged?
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store { retryable, .. }
            | Error::Queue { retryable, .. }
            | Error::Delivery { retryable, .. } => *retryable,
            Error::Unavailable(_) | Error::Io { .. } => true,
            Error::Invalid(_)
            | Error::Codec(_)
            | Error::Schema { .. }
            | Error::Mapping { .. }
            | Error::Unauthorized(_)
            | Error::NotFound(_) => false,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
