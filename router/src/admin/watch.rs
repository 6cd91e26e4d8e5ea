//! Watching `mappings/` so that a file edit goes through the same gate as the API.
//!
//! Administrators who prefer their editor (or a `git pull` on the server) edit
//! files. Editors save in bursts (write a temp file, rename, touch), and a pull
//! changes many files at once, so events are debounced: the watcher waits until
//! the tree has been quiet for the debounce interval, then hands each changed
//! mapping file (and `routes.yaml`) to [`MappingAdmin::file_changed`], which
//! gates and activates it or logs why not. Nothing here activates anything by
//! itself.
//!
//! The `notify` callback runs on its own thread; it forwards paths over a
//! bounded channel with `try_send`. If the channel is full (a huge checkout),
//! the watcher notes the overflow and rescans every mapping file once instead:
//! unchanged files are no-ops, so a rescan is always safe.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::service::{is_mapping_file, scan_files, MappingAdmin};
use crate::{Error, Result};

const CHANNEL_CAPACITY: usize = 1024;

/// Starts watching `mappings_dir` (recursively). The returned task ends on `shutdown`.
pub fn spawn(
    admin: Arc<MappingAdmin>,
    mappings_dir: &Path,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let root = mappings_dir
        .canonicalize()
        .map_err(|e| Error::io(format!("watching {}", mappings_dir.display()), e))?;
    let (tx, rx) = mpsc::channel::<PathBuf>(CHANNEL_CAPACITY);
    let overflow = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&overflow);
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                if matches!(ev.kind, EventKind::Access(_)) {
                    return;
                }
                for p in ev.paths {
                    if tx.try_send(p).is_err() {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "file watcher error; a full rescan follows");
                flag.store(true, Ordering::Relaxed);
            }
        })
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot start the file watcher on {}: {e}",
                root.display()
            ))
        })?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| Error::Unavailable(format!("cannot watch {}: {e}", root.display())))?;
    let given_root = mappings_dir.to_path_buf();
    Ok(tokio::spawn(async move {
        // Keep the watcher alive as long as the task.
        let _watcher = watcher;
        run(admin, root, given_root, rx, overflow, shutdown).await;
    }))
}

async fn run(
    admin: Arc<MappingAdmin>,
    root: PathBuf,
    given_root: PathBuf,
    mut rx: mpsc::Receiver<PathBuf>,
    overflow: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let debounce = admin.options().debounce;
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let mut changed = BTreeSet::from([first]);
        // Wait until quiet for `debounce`.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                p = tokio::time::timeout(debounce, rx.recv()) => match p {
                    Ok(Some(p)) => { changed.insert(p); }
                    Ok(None) => return,
                    Err(_) => break,
                },
            }
        }
        let paths: Vec<PathBuf> = if overflow.swap(false, Ordering::Relaxed) {
            let mut all = scan_files(&given_root).unwrap_or_default();
            all.push(given_root.join("routes.yaml"));
            all
        } else {
            changed
                .into_iter()
                .filter_map(|p| {
                    // Events name canonical paths; the admin knows the paths it was given.
                    let rel = p.strip_prefix(&root).ok()?.to_path_buf();
                    let given = given_root.join(rel);
                    (is_mapping_file(&given_root, &given)
                        || given == given_root.join("routes.yaml"))
                    .then_some(given)
                })
                .collect()
        };
        // Routes last, so a pull that adds a mapping and its route works in one go.
        let routes_file = given_root.join("routes.yaml");
        let (routes, mappings): (Vec<_>, Vec<_>) =
            paths.into_iter().partition(|p| *p == routes_file);
        for p in mappings.iter().chain(routes.iter().take(1)) {
            admin.file_changed(p).await;
        }
    }
}
