//! The crate's one error type.
//!
//! Transports never return this type from `send` (they return the router's
//! classified `Failure`); it is for everything around sending: building a connector
//! from configuration, reading secrets, starting a simulator, loading the QCVN limits
//! file, moving drop-folder files. Like the router's error, every variant knows
//! whether trying again later, unchanged, could succeed ([`ConnectorError::is_retryable`]).

/// Errors of the connectors crate.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A connector's configuration is invalid. The message names the key.
    #[error("connector {connector}: invalid configuration: {message}")]
    Config { connector: String, message: String },

    /// A secret could not be read. Never contains the secret itself.
    #[error("secret {what}: {message}")]
    Secret { what: String, message: String },

    /// The HTTP client could not be built (TLS provider missing, bad proxy settings...).
    #[error("connector {connector}: cannot build the HTTP client: {message}; install a rustls crypto provider before building connectors")]
    Client { connector: String, message: String },

    /// Authentication against a partner failed (token, login).
    #[error("{system}: authentication failed: {message}")]
    Auth {
        system: String,
        message: String,
        retryable: bool,
    },

    /// A file (thresholds, drop folder) could not be read, parsed or moved.
    #[error("{context}: {message}")]
    File {
        context: String,
        message: String,
        retryable: bool,
    },

    /// Local I/O (binding a simulator socket, reading a folder).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConnectorError {
    /// Could the same operation succeed if tried again later, unchanged?
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectorError::Config { .. }
            | ConnectorError::Secret { .. }
            | ConnectorError::Client { .. } => false,
            ConnectorError::Auth { retryable, .. } | ConnectorError::File { retryable, .. } => {
                *retryable
            }
            ConnectorError::Io { .. } => true,
        }
    }

    pub fn config(connector: &str, message: impl Into<String>) -> Self {
        ConnectorError::Config {
            connector: connector.to_string(),
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ConnectorError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability() {
        assert!(!ConnectorError::config("lis", "x").is_retryable());
        assert!(ConnectorError::io("bind", std::io::Error::other("x")).is_retryable());
        let auth = ConnectorError::Auth {
            system: "lgsp".into(),
            message: "503".into(),
            retryable: true,
        };
        assert!(auth.is_retryable());
    }
}
