//! Facility drop folders submitting station files into the hub's intake, in process.
//!
//! The FTP server writes each facility's files into its own folder;
//! [`connectors::stations::dropfolder::DropFolder`] decides when a file is complete
//! and moves it to `processed/` or `rejected/` (+ `.reason`). This file supplies the
//! one thing it needs from the hub: a submit function that hands the bytes to
//! [`Intake::handle`] exactly as `POST /inbound/stations/observation.file` with an
//! `X-File-Name` header would (same checks, same trail, same idempotency on the file
//! name), without a loopback HTTP hop or intake credentials.
//!
//! Only a definitive answer moves a file: 202 → `processed/`, a 4xx rejection →
//! `rejected/` with the hub's reasons. Flow control (429, 503 while the store is
//! down) is not the file's fault, so the submission waits (`Retry-After`, else a
//! second) and tries again; at shutdown it gives up without an answer and the file
//! stays where it is, to be picked up by the next start.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use connectors::stations::dropfolder::{DropFolder, DropFolderConfig, Submit};
use futures::FutureExt;
use router::intake::{InboundRequest, Intake};
use tokio_util::sync::CancellationToken;

use super::enricher::OBSERVATION_FILE;
use super::settings::DropFolderSettings;

/// The system drop-folder files are submitted as.
const SYSTEM: &str = "stations";

/// A submit function feeding `intake`; gives up (never answers) once `cancel` fires.
pub fn submitter(intake: Arc<Intake>, cancel: CancellationToken) -> Submit {
    Arc::new(move |file_name: String, bytes: Vec<u8>| {
        let intake = Arc::clone(&intake);
        let cancel = cancel.clone();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("text/plain; charset=utf-8"));
            match HeaderValue::from_str(&file_name) {
                Ok(v) => headers.insert("x-file-name", v),
                Err(_) => return Err(format!("the file name {file_name:?} cannot be passed on (control characters); rename the file")),
            };
            let body = Bytes::from(bytes);
            loop {
                let req = InboundRequest { system: SYSTEM.into(), message_type: OBSERVATION_FILE.into(), headers: headers.clone(), body: body.clone() };
                let resp = intake.handle(req).await;
                if resp.status == StatusCode::ACCEPTED {
                    return Ok(resp.body["id"].as_str().unwrap_or_default().to_string());
                }
                let transient = resp.status == StatusCode::TOO_MANY_REQUESTS || resp.status.is_server_error();
                if !transient {
                    return Err(reasons(resp.status, &resp.body));
                }
                let wait = Duration::from_secs(resp.retry_after.unwrap_or(1).clamp(1, 60));
                tracing::debug!(file = %file_name, status = resp.status.as_u16(), ?wait, "intake busy; the drop folder waits");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    // Leave the file in place: no answer means no move.
                    _ = cancel.cancelled() => std::future::pending::<()>().await,
                }
            }
        }
        .boxed()
    })
}

/// The `.reason` text: status, error and every reason the hub gave.
fn reasons(status: StatusCode, body: &serde_json::Value) -> String {
    let mut out = format!(
        "HTTP {} {}",
        status.as_u16(),
        body["error"].as_str().unwrap_or("rejected")
    );
    for r in body["reasons"].as_array().into_iter().flatten() {
        out.push_str("\n- ");
        out.push_str(r.as_str().unwrap_or_default());
    }
    if let Some(id) = body["id"].as_str() {
        out.push_str(&format!(
            "\n(message {id} in the hub's trail; fix the file and drop it again)"
        ));
    }
    out
}

/// Starts one watcher per configured folder.
pub fn spawn_all(
    folders: &[DropFolderSettings],
    intake: &Arc<Intake>,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::with_capacity(folders.len());
    for f in folders {
        let config = DropFolderConfig {
            path: f.path.clone(),
            settle: Duration::from_millis(f.settle_ms),
            poll: Duration::from_millis(f.poll_ms),
            max_file_bytes: f.max_file_bytes,
        };
        let folder = DropFolder::new(config, submitter(Arc::clone(intake), cancel.clone()))
            .map_err(|e| {
                anyhow::anyhow!(
                    "facility {}: cannot use drop folder {}: {e}",
                    f.facility,
                    f.path.display()
                )
            })?;
        tracing::info!(facility = %f.facility, folder = %f.path.display(), "watching station drop folder");
        tasks.push(folder.spawn(cancel.clone()));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_lists_every_hub_reason() {
        let body = serde_json::json!({"error": "malformed body", "reasons": ["line 2 field 2: \"N/A\" is not a decimal number", "x"], "id": "m1"});
        let r = reasons(StatusCode::BAD_REQUEST, &body);
        assert!(
            r.starts_with("HTTP 400 malformed body\n- line 2 field 2"),
            "{r}"
        );
        assert!(r.contains("\n- x\n(message m1"), "{r}");
    }
}
