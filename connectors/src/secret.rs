//! Secrets that cannot leak by accident.
//!
//! Passwords, client secrets and API keys come from an environment variable or a
//! file named in the configuration (`*_env`, `*_file`), never from the config file
//! itself, so the config can be committed and shown to an auditor. Once read, a
//! secret lives in a [`Secret`] whose `Debug` and `Display` print `***`: a stray
//! `{:?}` in a log line or an error message shows nothing useful to an attacker.
//! The only way to the value is the explicit [`Secret::expose`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lienthong_core::{Diagnostic, Diagnostics};

use crate::error::ConnectorError;

/// A secret value. Cheap to clone; prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into()))
    }

    /// The secret itself. Call it only where the value goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from the environment variable `env` or the file `file`
    /// (exactly one must be given). A trailing newline in the file is dropped.
    /// `what` names the secret in errors (e.g. `connectors.lis.password`).
    pub fn load(
        what: &str,
        env: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Secret, ConnectorError> {
        let err = |message: String| ConnectorError::Secret {
            what: what.to_string(),
            message,
        };
        match (env, file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                Ok(_) => Err(err(format!("environment variable {var} is empty; set it to the secret"))),
                Err(_) => Err(err(format!(
                    "environment variable {var} is not set (or not UTF-8); export it before starting the hub"
                ))),
            },
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    err(format!("cannot read {}: {e}; check the path and its permissions", path.display()))
                })?;
                let value = text.trim_end_matches(['\r', '\n']);
                if value.is_empty() {
                    return Err(err(format!("{} is empty; write the secret into it", path.display())));
                }
                Ok(Secret::new(value))
            }
            (Some(_), Some(_)) => Err(err("both an environment variable and a file are given; keep one".into())),
            (None, None) => Err(err("no source given; set the `_env` or the `_file` key".into())),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Pure validation of a `<name>_env` / `<name>_file` pair: exactly one must be set.
/// Whether the variable or file exists is checked when the connector is built.
pub fn validate_source(
    diags: &mut Diagnostics,
    file: &str,
    context: &str,
    env: Option<&str>,
    path: Option<&PathBuf>,
) {
    let message = match (env, path) {
        (Some(_), Some(_)) => "both `_env` and `_file` are set; keep exactly one",
        (None, None) => {
            "no secret source; set the `_env` (environment variable name) or the `_file` (path) key"
        }
        (Some(""), None) => "the environment variable name is empty",
        _ => return,
    };
    diags.push(Diagnostic {
        file: file.to_string(),
        line: 0,
        column: 0,
        context: context.to_string(),
        message: message.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn loads_from_file_and_reports_missing_env() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(
            Secret::load("x", None, Some(&p)).unwrap().expose(),
            "s3cret"
        );
        let e = Secret::load("x", Some("LIENTHONG_SURELY_UNSET_VAR"), None).unwrap_err();
        assert!(e.to_string().contains("LIENTHONG_SURELY_UNSET_VAR"));
        assert!(Secret::load("x", None, None).is_err());
    }
}
