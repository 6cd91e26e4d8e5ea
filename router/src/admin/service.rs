//! The one place that changes which mappings are active.
//!
//! [`MappingAdmin`] owns the swap handle, the version store and the gate, and
//! serialises changes in this process with an async mutex (the database
//! serialises them across replicas, see [`super::versions`]). Every change,
//! whatever its origin, is [`MappingAdmin::propose`]: gate, then a
//! compare-and-set commit of the new version with its trail event, then a
//! rebuild of the active set from the database and an atomic swap. Rebuilding
//! from the database (rather than from what this process just compiled) is what
//! makes a replica that polls [`MappingAdmin::refresh`] end up with exactly the
//! same set as the replica that made the change.
//!
//! Start-up ([`MappingAdmin::bootstrap`]) reconciles the files under
//! `mappings/` with the store: a mapping the store has never seen is imported
//! as version 1; a file whose content equals some stored version is left alone
//! (the store's active version wins, so a rollback survives a restart); a file
//! with new content is proposed through the gate like any other edit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::active::{ActiveMappings, ActiveSet};
use super::gate::{self, Entry, GateInput, GateOptions, GateReport, Sources};
use super::versions::{Activation, NewVersion, Origin, VersionStore};
use super::AdminError;
use crate::mapping::{MappingSet, NoSchemas, Schemas};
use crate::store::Store;
use crate::{Diagnostics, Error, Result};

/// Tuning of the admin layer.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub gate: GateOptions,
    /// How often a replica checks the generation counter.
    pub poll_interval: Duration,
    /// Quiet time after the last file event before the watcher acts.
    pub debounce: Duration,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions {
            gate: GateOptions::default(),
            poll_interval: Duration::from_secs(1),
            debounce: Duration::from_millis(500),
        }
    }
}

impl AdminOptions {
    /// The options `lienthong serve` runs with: the `admin:` section of the config.
    pub fn from_settings(s: &crate::config::AdminSettings) -> AdminOptions {
        AdminOptions {
            gate: GateOptions {
                dry_run_sample: s.dry_run_sample,
                ..GateOptions::default()
            },
            poll_interval: s.poll_interval,
            debounce: s.watch_debounce,
        }
    }
}

/// A change to propose.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub mapping_id: String,
    pub content: String,
    /// The active version the author started from (`None`: a new mapping).
    pub expected: Option<i64>,
    pub author: String,
    pub comment: String,
    pub origin: Origin,
    pub allow_regressions: bool,
}

struct State {
    src: Sources,
    /// The active contents the running set was built from.
    entries: Vec<Entry>,
    generation: i64,
}

/// See the module docs.
pub struct MappingAdmin {
    versions: VersionStore,
    /// The store, for the gate's dry run on stored traffic.
    store: Store,
    schemas: Arc<dyn Schemas + Send + Sync>,
    active: Arc<ActiveMappings>,
    state: Mutex<State>,
    options: AdminOptions,
    /// Last reports of file edits (the console shows refused edits); bounded.
    file_reports: std::sync::Mutex<std::collections::VecDeque<GateReport>>,
}

const FILE_REPORTS_KEPT: usize = 20;

/// Checks a mapping id given by a caller: `system/name`, safe as a relative path.
pub fn check_id(id: &str) -> Result<(), AdminError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('/')
        && !id
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::BadRequest(format!(
            "'{id}' is not a valid mapping id: use letters, digits, '-', '_', '.' and '/' (like province-portal/dossier-filed.to-lis)"
        )))
    }
}

impl MappingAdmin {
    /// Reconciles the files with the store and builds the first active set (see module docs).
    pub async fn bootstrap(
        store: &Store,
        schemas: Arc<dyn Schemas + Send + Sync>,
        mappings_dir: &Path,
        routes_file: &Path,
        options: AdminOptions,
    ) -> Result<Arc<MappingAdmin>> {
        let versions = VersionStore::new(store);
        let mut src = Sources::read(mappings_dir, routes_file)?;
        let files = scan_files(mappings_dir)?;
        let first_start = versions.active_all().await?.is_empty();
        let mut diags = Diagnostics::default();
        let mut changed = Vec::new();
        for path in files {
            let text = match read_mapping(&path) {
                Ok(t) => t,
                Err(d) => {
                    diags.extend(d);
                    continue;
                }
            };
            let compiled = match MappingSet::load_one(mappings_dir, &path, schemas.as_ref()) {
                Ok(m) => m,
                Err(d) => {
                    diags.extend(d);
                    continue;
                }
            };
            src.paths.insert(compiled.id.clone(), path.clone());
            if !versions
                .versions_with_hash(&compiled.id, &compiled.content_hash)
                .await?
                .is_empty()
            {
                continue;
            }
            if versions.active(&compiled.id).await?.is_none() {
                let new = NewVersion {
                    mapping_id: compiled.id.clone(),
                    author: "import".into(),
                    comment: format!("imported from {}", path.display()),
                    origin: Origin::Import,
                    content_hash: compiled.content_hash.clone(),
                    content: text,
                };
                match versions.commit_new(&new, None).await {
                    // Another replica imported it at the same moment: theirs stands.
                    Ok(_) | Err(AdminError::Conflict { .. }) => {}
                    Err(AdminError::Router(e)) => return Err(e),
                    Err(other) => return Err(Error::Unavailable(other.to_string())),
                }
            } else {
                changed.push((compiled.id.clone(), text));
            }
        }
        if !diags.is_empty() {
            if first_start {
                return Err(Error::Invalid(diags));
            }
            tracing::error!(problems = %diags, "some mapping files are invalid; the store's active versions of those mappings stay active");
        }
        let admin = Self::assemble(store, schemas, versions, src, options).await?;
        for (id, content) in changed {
            admin.propose_file_content(&id, content).await;
        }
        Ok(admin)
    }

    /// The mappings the hub has active, as the store records them, without
    /// touching the store or the files: for the CLI's replays, which must map
    /// with what the hub runs (a rollback included), not with the files on
    /// disk. `None` when the store has no mapping versions yet (no hub has
    /// started on it).
    pub async fn from_store(
        store: &Store,
        schemas: Arc<dyn Schemas + Send + Sync>,
        mappings_dir: &Path,
        routes_file: &Path,
    ) -> Result<Option<Arc<MappingAdmin>>> {
        let versions = VersionStore::new(store);
        if versions.active_all().await?.is_empty() {
            return Ok(None);
        }
        let src = Sources::read(mappings_dir, routes_file)?;
        Self::assemble(store, schemas, versions, src, AdminOptions::default())
            .await
            .map(Some)
    }

    /// The active set built from the store's active versions, and the admin around it.
    async fn assemble(
        store: &Store,
        schemas: Arc<dyn Schemas + Send + Sync>,
        versions: VersionStore,
        src: Sources,
        options: AdminOptions,
    ) -> Result<Arc<MappingAdmin>> {
        let generation = versions.generation().await?;
        let entries = active_entries(&versions).await?;
        let (mappings, routes) =
            gate::build_set(&src, &entries, None, schemas.as_ref()).map_err(Error::Invalid)?;
        let active = Arc::new(ActiveMappings::new(ActiveSet {
            generation,
            mappings,
            routes,
        }));
        Ok(Arc::new(MappingAdmin {
            versions,
            store: store.clone(),
            schemas,
            active,
            state: Mutex::new(State {
                src,
                entries,
                generation,
            }),
            options,
            file_reports: Default::default(),
        }))
    }

    /// The swap handle intake reads through.
    pub fn active(&self) -> &Arc<ActiveMappings> {
        &self.active
    }

    pub fn versions(&self) -> &VersionStore {
        &self.versions
    }

    pub fn options(&self) -> &AdminOptions {
        &self.options
    }

    pub fn schemas(&self) -> &(dyn Schemas + Send + Sync) {
        self.schemas.as_ref()
    }

    /// Recent reports of file edits, newest first.
    pub fn file_reports(&self) -> Vec<GateReport> {
        self.file_reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    /// Runs the gate (a)–(d) without activating anything.
    pub async fn validate(
        &self,
        mapping_id: &str,
        content: &str,
        allow_regressions: bool,
    ) -> Result<GateReport, AdminError> {
        check_id(mapping_id)?;
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await?;
        let outcome = self
            .gate_locked(&state, mapping_id, content, allow_regressions)
            .await?;
        Ok(outcome.report)
    }

    /// Gate, then activate as a new version if the active version is still `expected`.
    pub async fn propose(&self, p: Proposal) -> Result<(GateReport, Activation), AdminError> {
        check_id(&p.mapping_id)?;
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await?;
        let current = state
            .entries
            .iter()
            .find(|e| e.id == p.mapping_id)
            .map(|e| e.version);
        if current != p.expected {
            return Err(AdminError::Conflict {
                mapping_id: p.mapping_id,
                expected: p.expected,
                current,
            });
        }
        let outcome = self
            .gate_locked(&state, &p.mapping_id, &p.content, p.allow_regressions)
            .await?;
        if outcome.candidate.is_none() {
            return Err(AdminError::Rejected(Box::new(outcome.report)));
        }
        let new = NewVersion {
            mapping_id: p.mapping_id.clone(),
            author: p.author,
            comment: p.comment,
            origin: p.origin,
            content_hash: outcome.report.content_hash.clone(),
            content: p.content,
        };
        let act = self.versions.commit_new(&new, p.expected).await?;
        self.reload_locked(&mut state).await?;
        tracing::info!(mapping = %act.mapping_id, from = ?act.from_version, to = act.to_version, origin = p.origin.as_str(), "mapping activated");
        Ok((outcome.report, act))
    }

    /// Makes an earlier version active again. The version still has to compile,
    /// fit the schemas and routes, and pass its tests today; the dry run is
    /// reported but does not block (a rollback is how an incident is stopped).
    pub async fn rollback(
        &self,
        mapping_id: &str,
        to_version: i64,
        expected: i64,
        actor: &str,
        comment: &str,
    ) -> Result<(GateReport, Activation), AdminError> {
        check_id(mapping_id)?;
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await?;
        let current = state
            .entries
            .iter()
            .find(|e| e.id == mapping_id)
            .map(|e| e.version);
        if current != Some(expected) {
            return Err(AdminError::Conflict {
                mapping_id: mapping_id.to_owned(),
                expected: Some(expected),
                current,
            });
        }
        let Some(target) = self.versions.get(mapping_id, to_version).await? else {
            return Err(AdminError::Router(Error::NotFound(format!(
                "mapping '{mapping_id}' has no version {to_version}; list them with GET /api/v1/mappings/{mapping_id}/versions"
            ))));
        };
        let outcome = self
            .gate_locked(&state, mapping_id, &target.content, true)
            .await?;
        if outcome.candidate.is_none() {
            return Err(AdminError::Rejected(Box::new(outcome.report)));
        }
        let act = self
            .versions
            .rollback(mapping_id, to_version, expected, actor, comment)
            .await?;
        self.reload_locked(&mut state).await?;
        tracing::info!(mapping = %mapping_id, from = expected, to = to_version, "mapping rolled back");
        Ok((outcome.report, act))
    }

    /// Maps `input` with `content` (not activated): the console's live preview.
    pub async fn preview(
        &self,
        mapping_id: &str,
        content: &str,
        input: &Value,
    ) -> Result<Result<Value, String>, AdminError> {
        check_id(mapping_id)?;
        let state = self.state.lock().await;
        let mut cache = HashMap::new();
        let m = match gate::compile_mapping(
            &state.src,
            mapping_id,
            content,
            self.schemas.as_ref(),
            &mut cache,
        ) {
            Ok(m) => m,
            Err(d) => return Ok(Err(d.to_string())),
        };
        drop(state);
        Ok(gate::map_checked(&m, self.schemas.as_ref(), input))
    }

    /// Reloads from the store if another replica (or process) changed the generation.
    pub async fn refresh(&self) -> Result<bool> {
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await
    }

    /// Polls the generation every `poll_interval` until `shutdown`.
    pub fn spawn_poller(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.options.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // A database outage is logged once, not every poll.
            let outage = crate::store::Outage::new("the mapping-generation poller");
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        match me.refresh().await {
                            Ok(_) => outage.recovered(),
                            Err(e) if e.is_retryable() => outage.failed("checking the mapping generation", &e),
                            Err(e) => tracing::warn!(error = %e, "checking the mapping generation failed; will retry"),
                        }
                    }
                }
            }
        })
    }

    /// A file under `mappings/` changed: propose it through the gate (no precondition:
    /// the file is the author's intent). Routes changes reload the routes.
    pub async fn file_changed(&self, path: &Path) {
        let (is_routes, mappings_dir) = {
            let state = self.state.lock().await;
            (
                path == state.src.routes_file,
                state.src.mappings_dir.clone(),
            )
        };
        if is_routes {
            if let Err(e) = self.reload_routes().await {
                tracing::error!(file = %path.display(), error = %e, "routes.yaml change refused; the previous routes stay active");
            }
            return;
        }
        if !path.exists() {
            self.file_removed(path).await;
            return;
        }
        let text = match read_mapping(path) {
            Ok(t) => t,
            Err(d) => {
                tracing::error!(problems = %d, "mapping file change refused");
                return;
            }
        };
        // The id: the file's own `id:` if it compiles that far, else its path.
        let id = match MappingSet::load_one(&mappings_dir, path, &NoSchemas) {
            Ok(m) => m.id,
            Err(_) => default_id(&mappings_dir, path),
        };
        {
            let mut state = self.state.lock().await;
            state
                .src
                .paths
                .entry(id.clone())
                .or_insert_with(|| path.to_path_buf());
        }
        self.propose_file_content(&id, text).await;
    }

    /// A mapping file was deleted. If a route still sends through the mapping, removing
    /// it would break those routes: refused (logged with the routes' ids, shown on the
    /// dashboard), the active version stays. Otherwise the mapping is deactivated in the
    /// store (`mapping.deactivated` in the trail) and dropped from the running set; its
    /// versions stay, so recorded deliveries still name their text.
    pub async fn file_removed(&self, path: &Path) {
        let id = {
            let state = self.state.lock().await;
            state
                .src
                .paths
                .iter()
                .find(|(_, p)| p.as_path() == path)
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| default_id(&state.src.mappings_dir, path))
        };
        let report = match self
            .deactivate(&id, "file", &format!("file {} removed", path.display()))
            .await
        {
            Ok(Some(v)) => {
                tracing::info!(mapping = %id, version = v, file = %path.display(), "mapping file removed: mapping deactivated");
                return;
            }
            Ok(None) => {
                tracing::debug!(mapping = %id, file = %path.display(), "removed file named no active mapping");
                return;
            }
            Err(AdminError::Rejected(report)) => {
                tracing::error!(mapping = %id, file = %path.display(), reason = %report.summary(), "mapping file removed but the mapping is still used; the active version stays");
                *report
            }
            Err(e) => {
                tracing::error!(mapping = %id, file = %path.display(), error = %e, "mapping file removed; deactivating the mapping failed, the active version stays");
                return;
            }
        };
        let mut q = self.file_reports.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= FILE_REPORTS_KEPT {
            q.pop_front();
        }
        q.push_back(report);
    }

    /// Takes mapping `id` out of the active set, unless a route still uses it (then
    /// [`AdminError::Rejected`] with a `routes` step naming them). `Ok(None)`: not active.
    /// Returns the version that was active.
    pub async fn deactivate(
        &self,
        id: &str,
        actor: &str,
        comment: &str,
    ) -> Result<Option<i64>, AdminError> {
        check_id(id)?;
        let mut state = self.state.lock().await;
        self.refresh_locked(&mut state).await?;
        let Some(entry) = state.entries.iter().find(|e| e.id == id) else {
            return Ok(None);
        };
        let version = entry.version;
        let users = self.active.load().routes.routes_using(id);
        if !users.is_empty() {
            let message = format!(
                "mapping '{id}' cannot be removed: route(s) {} in {} still send through it; \
                 remove or change those routes first (the active version v{version} stays)",
                users.join(", "),
                state.src.routes_file.display()
            );
            let file = state
                .src
                .paths
                .get(id)
                .map_or_else(|| state.src.routes_file.clone(), |p| p.clone());
            return Err(AdminError::Rejected(Box::new(GateReport {
                mapping_id: id.to_owned(),
                content_hash: String::new(),
                active_version: Some(version),
                passed: false,
                steps: vec![gate::Step {
                    name: "routes",
                    status: gate::StepStatus::Failed,
                    message: message.clone(),
                    diagnostics: vec![crate::Diagnostic {
                        file: file.display().to_string(),
                        line: 0,
                        column: 0,
                        context: String::new(),
                        message,
                    }],
                }],
                test_cases: 0,
                test_failures: Vec::new(),
                dry_run: None,
            })));
        }
        self.versions
            .deactivate(id, version, actor, comment)
            .await?;
        state.src.paths.remove(id);
        self.reload_locked(&mut state).await?;
        Ok(Some(version))
    }

    async fn propose_file_content(&self, id: &str, content: String) {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
        let current = {
            let state = self.state.lock().await;
            state
                .entries
                .iter()
                .find(|e| e.id == id)
                .map(|e| (e.version, e.content.clone()))
        };
        if current.as_ref().is_some_and(|(_, c)| *c == content) {
            return;
        }
        let p = Proposal {
            mapping_id: id.to_owned(),
            content,
            expected: current.map(|c| c.0),
            author: "file".into(),
            comment: format!("file edit (sha256 {})", &hash[..12]),
            origin: Origin::File,
            allow_regressions: self.options.gate.allow_regressions,
        };
        let report = match self.propose(p).await {
            Ok((report, act)) => {
                tracing::info!(mapping = %id, version = act.to_version, "file edit activated");
                report
            }
            Err(AdminError::Rejected(report)) => {
                tracing::error!(mapping = %id, step = report.failed_step().unwrap_or("?"), reason = %report.summary(), "file edit refused by the gate; the active version stays");
                *report
            }
            Err(e) => {
                tracing::error!(mapping = %id, error = %e, "file edit not applied");
                return;
            }
        };
        let mut q = self.file_reports.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= FILE_REPORTS_KEPT {
            q.pop_front();
        }
        q.push_back(report);
    }

    async fn reload_routes(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        let text = std::fs::read_to_string(&state.src.routes_file)
            .map_err(|e| Error::io(format!("reading {}", state.src.routes_file.display()), e))?;
        let mut src = state.src.clone();
        src.routes_text = text;
        let (mappings, routes) = gate::build_set(&src, &state.entries, None, self.schemas.as_ref())
            .map_err(Error::Invalid)?;
        state.src = src;
        self.active.swap(ActiveSet {
            generation: state.generation,
            mappings,
            routes,
        });
        tracing::info!("routes reloaded");
        Ok(())
    }

    async fn gate_locked(
        &self,
        state: &State,
        mapping_id: &str,
        content: &str,
        allow_regressions: bool,
    ) -> Result<gate::GateOutcome, AdminError> {
        let mut options = self.options.gate.clone();
        options.allow_regressions = allow_regressions;
        let running = self.active.load();
        let active_version = state
            .entries
            .iter()
            .find(|e| e.id == mapping_id)
            .map(|e| e.version);
        Ok(gate::run(GateInput {
            mapping_id,
            content,
            src: &state.src,
            entries: &state.entries,
            active: &running,
            active_version,
            schemas: self.schemas.as_ref(),
            store: Some(&self.store),
            options: &options,
        })
        .await?)
    }

    async fn refresh_locked(&self, state: &mut State) -> Result<bool> {
        let generation = self.versions.generation().await?;
        if generation == state.generation {
            return Ok(false);
        }
        self.reload_locked(state).await?;
        Ok(true)
    }

    /// Rebuilds the active set from the store and swaps it in.
    async fn reload_locked(&self, state: &mut State) -> Result<()> {
        let generation = self.versions.generation().await?;
        let entries = active_entries(&self.versions).await?;
        let (mappings, routes) = gate::build_set(&state.src, &entries, None, self.schemas.as_ref())
            .map_err(Error::Invalid)?;
        self.active.swap(ActiveSet {
            generation,
            mappings,
            routes,
        });
        state.entries = entries;
        state.generation = generation;
        Ok(())
    }
}

async fn active_entries(versions: &VersionStore) -> Result<Vec<Entry>> {
    Ok(versions
        .active_contents()
        .await?
        .into_iter()
        .map(|v| Entry {
            id: v.meta.mapping_id,
            version: v.meta.version,
            content: v.content,
        })
        .collect())
}

fn default_id(root: &Path, path: &Path) -> String {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    rel.strip_suffix(".yaml").unwrap_or(&rel).to_owned()
}

fn read_mapping(path: &Path) -> Result<String, Diagnostics> {
    let d = |message: String| {
        Diagnostics(vec![crate::Diagnostic {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            context: String::new(),
            message,
        }])
    };
    let bytes = std::fs::read(path).map_err(|e| d(format!("cannot read mapping file: {e}")))?;
    if bytes.len() > crate::limits::MAX_MAPPING_FILE_BYTES {
        return Err(d(format!(
            "file is {} bytes, larger than the limit of {} bytes",
            bytes.len(),
            crate::limits::MAX_MAPPING_FILE_BYTES
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        d(format!(
            "not UTF-8 at byte {}; save the file as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Is `path` a mapping file under `root` (not routes.yaml, a tests file or a lookup)?
pub fn is_mapping_file(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or("");
    name.ends_with(".yaml")
        && !name.ends_with(".tests.yaml")
        && !name.starts_with('.')
        && rel != Path::new("routes.yaml")
        && first != "lookups"
}

/// Every mapping file under `root`, sorted.
pub fn scan_files(root: &Path) -> Result<Vec<PathBuf>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
        if depth > 8 {
            return Ok(());
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("reading directory {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path != root.join("lookups")
                    && !entry.file_name().to_string_lossy().starts_with('.')
                {
                    walk(root, &path, out, depth + 1)?;
                }
            } else if is_mapping_file(root, &path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out, 0)?;
    out.sort();
    Ok(out)
}
