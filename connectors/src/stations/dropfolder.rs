//! A watched drop folder per facility.
//!
//! The department's FTP server writes station files into one folder per facility.
//! An FTP upload is not atomic: a file appears, grows, and is complete only when the
//! client closes it. So a file is submitted only when its size and modification time
//! have not changed for `settle` (observed across scans), and names that uploaders
//! use while writing (`*.part`, `*.tmp`, `*.filepart`, `*~`, dot-files) are ignored.
//! Polling, not inotify: the folder is often a network mount where change
//! notifications are unreliable, and the settle rule needs periodic scans anyway.
//!
//! After submission a file moves to `processed/`; a file the hub rejected moves to
//! `rejected/` with `<file>.reason` beside it, so the facility's operator sees why.
//! A name already present in the target folder gets a timestamp suffix rather than
//! overwriting the earlier file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ConnectorError;

/// Submits one file: `Ok(message id)` or `Err(reason it was rejected)`.
pub type Submit =
    Arc<dyn Fn(String, Vec<u8>) -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// One drop folder's settings.
#[derive(Debug, Clone)]
pub struct DropFolderConfig {
    pub path: PathBuf,
    pub settle: Duration,
    pub poll: Duration,
    /// Larger files are rejected unread (a station file is a few hundred bytes).
    pub max_file_bytes: u64,
}

impl DropFolderConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DropFolderConfig {
            path: path.into(),
            settle: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            max_file_bytes: 1024 * 1024,
        }
    }
}

/// What one scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// (file, id)
    pub processed: Vec<(String, String)>,
    /// (file, reason)
    pub rejected: Vec<(String, String)>,
    /// Files still being written or settling.
    pub waiting: Vec<String>,
}

struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    stable_since: Instant,
}

/// A drop folder and what its scans have observed.
pub struct DropFolder {
    config: DropFolderConfig,
    submit: Submit,
    seen: HashMap<String, Seen>,
}

/// Names uploaders use while a file is incomplete.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".tmp", ".filepart", ".partial", ".crdownload"]
            .iter()
            .any(|s| name.to_ascii_lowercase().ends_with(s))
}

fn err(context: String, e: std::io::Error) -> ConnectorError {
    ConnectorError::File {
        context,
        message: format!("{e}; check the folder exists and the hub may write to it"),
        retryable: true,
    }
}

impl DropFolder {
    /// Creates `processed/` and `rejected/` inside the folder.
    pub fn new(config: DropFolderConfig, submit: Submit) -> Result<Self, ConnectorError> {
        for sub in ["processed", "rejected"] {
            let p = config.path.join(sub);
            std::fs::create_dir_all(&p)
                .map_err(|e| err(format!("drop folder {}", p.display()), e))?;
        }
        Ok(DropFolder {
            config,
            submit,
            seen: HashMap::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// One pass over the folder.
    pub async fn scan(&mut self) -> Result<ScanReport, ConnectorError> {
        let dir = &self.config.path;
        let mut report = ScanReport::default();
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| err(format!("drop folder {}", dir.display()), e))?;
        let mut present = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| err(format!("drop folder {}", dir.display()), e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !meta.is_file() || is_temporary(&name) {
                continue;
            }
            present.push(name.clone());
            let (len, modified) = (meta.len(), meta.modified().ok());
            let now = Instant::now();
            let seen = self.seen.entry(name.clone()).or_insert(Seen {
                len,
                modified,
                stable_since: now,
            });
            if seen.len != len || seen.modified != modified {
                *seen = Seen {
                    len,
                    modified,
                    stable_since: now,
                };
            }
            if seen.stable_since.elapsed() < self.config.settle || seen.stable_since == now {
                report.waiting.push(name);
                continue;
            }
            self.seen.remove(&name);
            self.process(&name, len, &mut report).await?;
        }
        self.seen.retain(|k, _| present.contains(k));
        report.waiting.sort();
        Ok(report)
    }

    async fn process(
        &self,
        name: &str,
        len: u64,
        report: &mut ScanReport,
    ) -> Result<(), ConnectorError> {
        let path = self.config.path.join(name);
        let outcome = if len > self.config.max_file_bytes {
            Err(format!(
                "file is {len} bytes, over the {} byte limit for a station file",
                self.config.max_file_bytes
            ))
        } else {
            match tokio::fs::read(&path).await {
                Ok(bytes) => (self.submit)(name.to_string(), bytes).await,
                Err(e) => return Err(err(format!("reading {}", path.display()), e)),
            }
        };
        match outcome {
            Ok(id) => {
                self.move_to(name, "processed").await?;
                tracing::info!(file = name, id = %id, "station file submitted");
                report.processed.push((name.to_string(), id));
            }
            Err(reason) => {
                let target = self.move_to(name, "rejected").await?;
                let reason_path = PathBuf::from(format!("{}.reason", target.display()));
                tokio::fs::write(&reason_path, format!("{reason}\n"))
                    .await
                    .map_err(|e| err(format!("writing {}", reason_path.display()), e))?;
                tracing::warn!(file = name, %reason, "station file rejected");
                report.rejected.push((name.to_string(), reason));
            }
        }
        Ok(())
    }

    async fn move_to(&self, name: &str, sub: &str) -> Result<PathBuf, ConnectorError> {
        let from = self.config.path.join(name);
        let mut to = self.config.path.join(sub).join(name);
        if tokio::fs::try_exists(&to).await.unwrap_or(false) {
            to = self.config.path.join(sub).join(format!(
                "{name}.{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
            ));
        }
        tokio::fs::rename(&from, &to)
            .await
            .map_err(|e| err(format!("moving {} to {}", from.display(), to.display()), e))?;
        Ok(to)
    }

    /// Scans every `poll` until cancelled. Scan errors are logged, not fatal (a
    /// network mount may come back).
    pub fn spawn(mut self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = self.scan().await {
                    tracing::warn!(folder = %self.config.path.display(), error = %e, "drop folder scan failed");
                }
            }
        })
    }
}
