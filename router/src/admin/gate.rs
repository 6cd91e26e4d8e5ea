//! The gate every mapping change goes through before it can become active.
//!
//! A mapping change is code that runs on every dossier of the province, written
//! by someone who is not a programmer, deployed without a release. The gate is
//! what makes that safe. Whatever the change came from (API, console, a file
//! edit), it runs the same four steps, stops at the first that fails, and
//! reports what an administrator needs to fix it:
//!
//! 1. `compile`: YAML and mapping structure (hostile input is bounded by the
//!    YAML layer: size, depth, alias budget). Errors carry `file:line:column`.
//! 2. `schema`: the schema-aware check (source paths exist in the source schema,
//!    targets in the target schema, types fit) and the routes that use the
//!    mapping still load with it.
//! 3. `tests`: the mapping's own test cases (inline or `<name>.tests.yaml`).
//! 4. `dry_run`: the candidate and the active version both map the last N real
//!    inbound messages of the source type stored by the hub; the report counts
//!    messages that now fail and messages whose output changes, with examples
//!    and diffs. Messages that mapped before and fail now block activation
//!    unless the administrator explicitly accepts them (`allow_regressions`).
//!
//! Only when all four pass may [`super::service`] activate the change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::active::ActiveSet;
use crate::mapping::compile::{self, Context};
use crate::mapping::{testing, CompiledMapping, MappingSet, NoSchemas, Schemas};
use crate::routes::Routes;
use crate::store::Store;
use crate::{Diagnostic, Diagnostics, Error, Result};

/// Knobs of the gate.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// How many of the most recent stored messages of the source type the dry run maps.
    pub dry_run_sample: usize,
    /// Examples kept per category in the dry-run report.
    pub max_examples: usize,
    /// Activate even if some stored messages that mapped before now fail.
    pub allow_regressions: bool,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            dry_run_sample: 200,
            max_examples: 3,
            allow_regressions: false,
        }
    }
}

/// Where mapping files, lookups and routes live. Changes only when routes.yaml is reloaded.
#[derive(Debug, Clone)]
pub struct Sources {
    pub mappings_dir: PathBuf,
    pub routes_file: PathBuf,
    pub routes_text: String,
    /// The file each known mapping id was loaded from (ids may differ from paths).
    pub paths: HashMap<String, PathBuf>,
}

impl Sources {
    /// Reads the routes file; no mapping paths known yet.
    pub fn read(mappings_dir: &Path, routes_file: &Path) -> crate::Result<Sources> {
        let routes_text = std::fs::read_to_string(routes_file).map_err(|e| {
            crate::Error::io(
                format!(
                    "reading routes file {} (give --mappings DIR)",
                    routes_file.display()
                ),
                e,
            )
        })?;
        Ok(Sources {
            mappings_dir: mappings_dir.to_path_buf(),
            routes_file: routes_file.to_path_buf(),
            routes_text,
            paths: HashMap::new(),
        })
    }

    /// The file a mapping lives in: where it was loaded from, else `<dir>/<id>.yaml`.
    pub fn path_for(&self, id: &str) -> PathBuf {
        self.paths
            .get(id)
            .cloned()
            .unwrap_or_else(|| self.mappings_dir.join(format!("{id}.yaml")))
    }
}

/// One active (or candidate) mapping text to compile into a set.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub version: i64,
    pub content: String,
}

/// Compiles `content` as the mapping `id` (the file's `id:` must agree). Lookups
/// and test input files resolve exactly as for the file under `mappings/`.
pub fn compile_mapping(
    src: &Sources,
    id: &str,
    content: &str,
    schemas: &dyn Schemas,
    cache: &mut HashMap<
        PathBuf,
        Result<std::sync::Arc<crate::mapping::ops::LookupTable>, Diagnostics>,
    >,
) -> Result<CompiledMapping, Diagnostics> {
    let path = src.path_for(id);
    // Messages name the file relative to the mappings folder, never the server's path.
    let file = lienthong_core::mapping::paths::shown(&src.mappings_dir, &path);
    if content.len() > crate::limits::MAX_MAPPING_FILE_BYTES {
        return Err(one(
            &file,
            format!(
                "the mapping is {} bytes, larger than the limit of {} bytes; split it or remove unused rules",
                content.len(),
                crate::limits::MAX_MAPPING_FILE_BYTES
            ),
        ));
    }
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| src.mappings_dir.clone());
    let sibling = path.with_extension("tests.yaml");
    let sibling_tests = std::fs::read_to_string(&sibling).ok().map(|t| {
        (
            lienthong_core::mapping::paths::shown(&src.mappings_dir, &sibling),
            t,
        )
    });
    let lookup_dirs = vec![src.mappings_dir.clone(), base_dir.clone()];
    let ctx = Context {
        root: src.mappings_dir.clone(),
        file: &file,
        default_id: Some(id.to_owned()),
        lookup_dirs,
        base_dir,
        sibling_tests,
        schemas,
        lookup_cache: cache,
    };
    let m = compile::compile(ctx, content)?;
    if m.id != id {
        return Err(one(
            &file,
            format!("the file says `id: {}` but it is being saved as mapping '{id}'; make them the same", m.id),
        ));
    }
    Ok(m)
}

fn one(file: &str, message: String) -> Diagnostics {
    Diagnostics(vec![Diagnostic {
        file: file.to_owned(),
        line: 0,
        column: 0,
        context: String::new(),
        message,
    }])
}

/// Compiles every entry (plus an already compiled candidate, which replaces the
/// entry of the same id) and loads the routes on top. Each mapping's `version`
/// becomes its store version.
pub fn build_set(
    src: &Sources,
    entries: &[Entry],
    candidate: Option<CompiledMapping>,
    schemas: &dyn Schemas,
) -> Result<(MappingSet, Routes), Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut cache = HashMap::new();
    let mut compiled = Vec::with_capacity(entries.len() + 1);
    let skip = candidate.as_ref().map(|c| c.id.clone());
    for e in entries {
        if skip.as_deref() == Some(e.id.as_str()) {
            continue;
        }
        match compile_mapping(src, &e.id, &e.content, schemas, &mut cache) {
            Ok(mut m) => {
                m.version = u32::try_from(e.version).unwrap_or(u32::MAX);
                compiled.push(m);
            }
            Err(d) => diags.extend(d),
        }
    }
    compiled.extend(candidate);
    diags.into_result()?;
    let set = MappingSet::from_mappings(compiled);
    let file = src.routes_file.display().to_string();
    let routes = Routes::parse(&file, &src.routes_text, &set, schemas)?;
    Ok((set, routes))
}

/// How one gate step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Passed,
    Failed,
    /// An earlier step failed.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `compile`, `schema`, `tests` or `dry_run`.
    pub name: &'static str,
    pub status: StepStatus,
    /// One line for people.
    pub message: String,
    /// Positioned problems (compile, schema).
    pub diagnostics: Vec<Diagnostic>,
}

/// A failed mapping test case.
#[derive(Debug, Clone, Serialize)]
pub struct TestFailure {
    pub case: String,
    pub origin: String,
    pub detail: String,
}

/// The dry run over stored traffic.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DryRun {
    /// Messages of the source type read from the store (at most the sample size).
    pub sampled: usize,
    /// Of those, messages the routes would not send through this mapping.
    pub not_routed: usize,
    pub unchanged: usize,
    /// Both versions map it, outputs differ.
    pub changed: usize,
    /// The active version maps it, the candidate fails: a regression.
    pub now_failing: usize,
    pub still_failing: usize,
    /// The active version failed, the candidate maps it.
    pub fixed: usize,
    /// No active version yet: the candidate maps it / fails.
    pub new_ok: usize,
    pub new_failing: usize,
    pub examples: Vec<DryRunExample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRunExample {
    pub message_id: String,
    /// `changed`, `now_failing`, `still_failing`, `fixed`, `new_failing`.
    pub kind: &'static str,
    /// The candidate's error, when it failed.
    pub error: Option<String>,
    /// Unified diff active → candidate (pretty JSON), when both produced output.
    pub diff: Option<String>,
}

/// Everything the gate found.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub mapping_id: String,
    pub content_hash: String,
    /// The active version the candidate was compared with.
    pub active_version: Option<i64>,
    pub passed: bool,
    pub steps: Vec<Step>,
    pub test_cases: usize,
    pub test_failures: Vec<TestFailure>,
    pub dry_run: Option<DryRun>,
}

impl GateReport {
    /// The first failed step's name.
    pub fn failed_step(&self) -> Option<&'static str> {
        self.steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| s.name)
    }

    /// One line: the failed step's message and its first diagnostics.
    pub fn summary(&self) -> String {
        match self.steps.iter().find(|s| s.status == StepStatus::Failed) {
            None => "all steps passed".to_owned(),
            Some(s) => {
                let mut out = s.message.clone();
                for d in s.diagnostics.iter().take(5) {
                    out.push_str("; ");
                    out.push_str(&d.to_string());
                }
                for t in self.test_failures.iter().take(3) {
                    out.push_str(&format!("; {} ({})", t.case, t.origin));
                }
                out
            }
        }
    }
}

/// What the gate needs to look at.
pub struct GateInput<'a> {
    pub mapping_id: &'a str,
    pub content: &'a str,
    pub src: &'a Sources,
    /// The active entries (contents by id) the candidate would join.
    pub entries: &'a [Entry],
    /// The running set (the dry run compares with it).
    pub active: &'a ActiveSet,
    pub active_version: Option<i64>,
    pub schemas: &'a (dyn Schemas + Sync),
    /// The store, for the dry run; `None` skips it (no traffic to compare with).
    pub store: Option<&'a Store>,
    pub options: &'a GateOptions,
}

/// A report, and the compiled candidate when every step passed.
pub struct GateOutcome {
    pub report: GateReport,
    pub candidate: Option<CompiledMapping>,
}

/// Runs steps (a) to (d). Never changes anything.
pub async fn run(input: GateInput<'_>) -> Result<GateOutcome> {
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        input.content.as_bytes(),
    ));
    let mut report = GateReport {
        mapping_id: input.mapping_id.to_owned(),
        content_hash: hash,
        active_version: input.active_version,
        passed: false,
        steps: Vec::new(),
        test_cases: 0,
        test_failures: Vec::new(),
        dry_run: None,
    };
    let names = ["compile", "schema", "tests", "dry_run"];
    let fail = |report: &mut GateReport,
                name: &'static str,
                message: String,
                diagnostics: Vec<Diagnostic>| {
        report.steps.push(Step {
            name,
            status: StepStatus::Failed,
            message,
            diagnostics,
        });
        let done = report.steps.len();
        for n in &names[done..] {
            report.steps.push(Step {
                name: n,
                status: StepStatus::Skipped,
                message: "skipped: an earlier step failed".into(),
                diagnostics: vec![],
            });
        }
    };
    let pass = |report: &mut GateReport, name: &'static str, message: String| {
        report.steps.push(Step {
            name,
            status: StepStatus::Passed,
            message,
            diagnostics: vec![],
        });
    };

    // (a) structure only.
    let mut cache = HashMap::new();
    if let Err(d) = compile_mapping(
        input.src,
        input.mapping_id,
        input.content,
        &NoSchemas,
        &mut cache,
    ) {
        fail(
            &mut report,
            "compile",
            format!("{} problem(s) in the mapping", d.len()),
            d.0,
        );
        return Ok(GateOutcome {
            report,
            candidate: None,
        });
    }
    pass(&mut report, "compile", "the mapping compiles".into());

    // (b) against the schemas, then with the routes that use it.
    let candidate = match compile_mapping(
        input.src,
        input.mapping_id,
        input.content,
        input.schemas,
        &mut cache,
    ) {
        Ok(m) => m,
        Err(d) => {
            fail(
                &mut report,
                "schema",
                format!("{} problem(s) against the schemas", d.len()),
                d.0,
            );
            return Ok(GateOutcome {
                report,
                candidate: None,
            });
        }
    };
    let next_version = input.active_version.map_or(1, |v| v + 1);
    let trial_candidate = {
        // Recompiled so the trial set owns its copy; the candidate itself is returned.
        let mut c = compile_mapping(
            input.src,
            input.mapping_id,
            input.content,
            input.schemas,
            &mut cache,
        )
        .map_err(Error::Invalid)?;
        c.version = u32::try_from(next_version).unwrap_or(u32::MAX);
        c
    };
    let (trial_set, trial_routes) = match build_set(
        input.src,
        input.entries,
        Some(trial_candidate),
        input.schemas,
    ) {
        Ok(x) => x,
        Err(d) => {
            fail(
                &mut report,
                "schema",
                format!(
                    "{} problem(s) when loading the routes and mappings with this change",
                    d.len()
                ),
                d.0,
            );
            return Ok(GateOutcome {
                report,
                candidate: None,
            });
        }
    };
    drop(trial_set);
    pass(
        &mut report,
        "schema",
        "source and target paths fit the schemas; routes load".into(),
    );

    // (c) the mapping's own tests.
    let results = testing::run_mapping(&candidate, input.schemas);
    report.test_cases = results.len();
    for r in &results {
        if r.outcome != testing::CaseOutcome::Passed {
            let detail = r.to_string();
            report.test_failures.push(TestFailure {
                case: r.case.clone(),
                origin: r.origin.clone(),
                detail,
            });
        }
    }
    if !report.test_failures.is_empty() {
        let n = report.test_failures.len();
        fail(
            &mut report,
            "tests",
            format!("{n} of {} test case(s) failed", results.len()),
            vec![],
        );
        return Ok(GateOutcome {
            report,
            candidate: None,
        });
    }
    pass(
        &mut report,
        "tests",
        if results.is_empty() {
            "no test cases (add some under `tests:`)".into()
        } else {
            format!("{} test case(s) passed", results.len())
        },
    );

    // (d) dry run on stored traffic.
    let Some(store) = input.store else {
        pass(&mut report, "dry_run", "no store: dry run skipped".into());
        report.passed = true;
        return Ok(GateOutcome {
            report,
            candidate: Some(candidate),
        });
    };
    let active_mapping = input.active.mappings.get(input.mapping_id);
    let dr = dry_run(
        store,
        &candidate,
        active_mapping.as_deref(),
        &trial_routes,
        input.schemas,
        input.options,
    )
    .await?;
    let regressions = dr.now_failing;
    let line = format!(
        "{} stored message(s): {} unchanged, {} changed, {} now failing, {} fixed, {} still failing, {} new ok, {} new failing, {} not routed here",
        dr.sampled, dr.unchanged, dr.changed, dr.now_failing, dr.fixed, dr.still_failing, dr.new_ok, dr.new_failing, dr.not_routed
    );
    report.dry_run = Some(dr);
    if regressions > 0 && !input.options.allow_regressions {
        fail(
            &mut report,
            "dry_run",
            format!("{line}; {regressions} message(s) that map today would fail: fix the mapping, or accept them explicitly (allow_regressions)"),
            vec![],
        );
        return Ok(GateOutcome {
            report,
            candidate: None,
        });
    }
    pass(&mut report, "dry_run", line);
    report.passed = true;
    Ok(GateOutcome {
        report,
        candidate: Some(candidate),
    })
}

/// Map, then check the output against the target schema, as intake does.
pub fn map_checked(
    m: &CompiledMapping,
    schemas: &dyn Schemas,
    tree: &Value,
) -> std::result::Result<Value, String> {
    let out = m.apply(tree).map_err(|e| e.to_string())?;
    schemas
        .validate(&m.target.schema, &out)
        .map_err(|e| format!("output: {e}"))?;
    Ok(out)
}

async fn dry_run(
    store: &Store,
    candidate: &CompiledMapping,
    active: Option<&CompiledMapping>,
    routes: &Routes,
    schemas: &(dyn Schemas + Sync),
    options: &GateOptions,
) -> Result<DryRun> {
    let rows = store
        .recent_parsed(
            &candidate.source.system,
            &candidate.source.message_type,
            i64::try_from(options.dry_run_sample).unwrap_or(i64::MAX),
        )
        .await?;
    let routed_somewhere = routes.mapping_ids().contains(&candidate.id);
    let mut dr = DryRun {
        sampled: rows.len(),
        ..DryRun::default()
    };
    let mut per_kind: HashMap<&'static str, usize> = HashMap::new();
    for (id, parsed) in rows {
        let Ok(tree) = serde_json::from_str::<Value>(&parsed) else {
            dr.not_routed += 1;
            continue;
        };
        if routed_somewhere
            && !routes
                .resolve(
                    &candidate.source.system,
                    &candidate.source.message_type,
                    &tree,
                )
                .iter()
                .any(|t| t.mapping.id == candidate.id)
        {
            dr.not_routed += 1;
            continue;
        }
        let new = map_checked(candidate, schemas, &tree);
        let old = active.map(|a| map_checked(a, schemas, &tree));
        let (kind, error, diff): (&'static str, Option<String>, Option<String>) = match (old, new) {
            (Some(Ok(a)), Ok(b)) if a == b => {
                dr.unchanged += 1;
                continue;
            }
            (Some(Ok(a)), Ok(b)) => {
                dr.changed += 1;
                let label_a = format!("active v{}", active.map_or(0, |m| m.version));
                (
                    "changed",
                    None,
                    Some(tree_diff(&a, &b, &label_a, "candidate")),
                )
            }
            (Some(Ok(_)), Err(e)) => {
                dr.now_failing += 1;
                ("now_failing", Some(e), None)
            }
            (Some(Err(_)), Err(e)) => {
                dr.still_failing += 1;
                ("still_failing", Some(e), None)
            }
            (Some(Err(_)), Ok(_)) => {
                dr.fixed += 1;
                ("fixed", None, None)
            }
            (None, Ok(_)) => {
                dr.new_ok += 1;
                continue;
            }
            (None, Err(e)) => {
                dr.new_failing += 1;
                ("new_failing", Some(e), None)
            }
        };
        let n = per_kind.entry(kind).or_default();
        if *n < options.max_examples {
            *n += 1;
            dr.examples.push(DryRunExample {
                message_id: id,
                kind,
                error,
                diff,
            });
        }
    }
    Ok(dr)
}

/// Unified diff of two trees as pretty JSON.
pub fn tree_diff(a: &Value, b: &Value, label_a: &str, label_b: &str) -> String {
    let pa = serde_json::to_string_pretty(a).unwrap_or_default() + "\n";
    let pb = serde_json::to_string_pretty(b).unwrap_or_default() + "\n";
    similar::TextDiff::from_lines(&pa, &pb)
        .unified_diff()
        .context_radius(3)
        .header(label_a, label_b)
        .to_string()
}
