//! Loading every mapping of a directory into a [`MappingSet`].
//!
//! Layout: `mappings/<source-system>/<name>.yaml`, with lookup tables under
//! `mappings/lookups/`, routes in `mappings/routes.yaml`, and optional test
//! files `<name>.tests.yaml` next to the mapping they test. Anything else
//! (README.md, FLOWS.md, `*.draft`) is ignored.
//!
//! Loading is all-or-nothing and reports every problem of every file at once;
//! the running hub keeps its previous set when a reload fails.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compile::{self, CompiledMapping, Context};
use super::Schemas;
use crate::{Diagnostic, Diagnostics};

/// Every compiled mapping, by id. Immutable once loaded.
#[derive(Debug, Default, Clone)]
pub struct MappingSet {
    mappings: BTreeMap<String, Arc<CompiledMapping>>,
}

fn diag(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: file.display().to_string(),
        line: 0,
        column: 0,
        context: String::new(),
        message,
    }
}

impl MappingSet {
    /// Load every mapping under `dir`, checking each against `schemas`.
    pub fn load(dir: &Path, schemas: &dyn Schemas) -> Result<MappingSet, Diagnostics> {
        let mut diags = Diagnostics::default();
        if !dir.is_dir() {
            diags.push(diag(
                dir,
                "mappings directory not found (give --mappings DIR, or run from the directory that holds mappings/)".into(),
            ));
            return Err(diags);
        }
        let mut files = Vec::new();
        collect(dir, dir, &mut files, &mut diags, 0);
        files.sort();
        let mut set = MappingSet::default();
        let mut where_defined: HashMap<String, String> = HashMap::new();
        let mut cache = HashMap::new();
        for path in files {
            let file = path.display().to_string();
            match load_file(dir, &path, schemas, &mut cache) {
                Ok(m) => {
                    if let Some(prev) = where_defined.get(&m.id) {
                        diags.push(diag(
                            &path,
                            format!(
                                "mapping id '{}' is already used by {prev}; ids must be unique",
                                m.id
                            ),
                        ));
                        continue;
                    }
                    where_defined.insert(m.id.clone(), file);
                    set.mappings.insert(m.id.clone(), Arc::new(m));
                }
                Err(d) => diags.extend(d),
            }
        }
        diags.into_result()?;
        Ok(set)
    }

    /// Load one mapping file that lives under `mappings_dir` (its id defaults to its path there).
    pub fn load_one(
        mappings_dir: &Path,
        path: &Path,
        schemas: &dyn Schemas,
    ) -> Result<CompiledMapping, Diagnostics> {
        load_file(mappings_dir, path, schemas, &mut HashMap::new())
    }

    /// Compile a mapping from text (admin API uploads, the fuzzer). `file_name` is used in
    /// messages and, without `.yaml`, as the id when the text has none; lookup files are
    /// resolved relative to `mappings_dir`.
    pub fn compile_str(
        file_name: &str,
        yaml_text: &str,
        mappings_dir: &Path,
        schemas: &dyn Schemas,
    ) -> Result<CompiledMapping, Diagnostics> {
        let ctx = Context {
            file: file_name,
            default_id: Some(
                file_name
                    .strip_suffix(".yaml")
                    .unwrap_or(file_name)
                    .to_owned(),
            ),
            root: mappings_dir.to_path_buf(),
            lookup_dirs: vec![mappings_dir.to_path_buf()],
            base_dir: mappings_dir.to_path_buf(),
            sibling_tests: None,
            schemas,
            lookup_cache: &mut HashMap::new(),
        };
        compile::compile(ctx, yaml_text)
    }

    pub fn get(&self, id: &str) -> Option<Arc<CompiledMapping>> {
        self.mappings.get(id).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledMapping>> {
        self.mappings.values()
    }

    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// A set made of already compiled mappings (tests, tools).
    pub fn from_mappings(mappings: impl IntoIterator<Item = CompiledMapping>) -> MappingSet {
        MappingSet {
            mappings: mappings
                .into_iter()
                .map(|m| (m.id.clone(), Arc::new(m)))
                .collect(),
        }
    }
}

/// Mapping files: `*.yaml` except `routes.yaml`, `*.tests.yaml` and the `lookups/` folder.
fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Diagnostics, depth: usize) {
    if depth > 8 {
        diags.push(diag(
            dir,
            "directories nested deeper than 8 levels under mappings/".into(),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(diag(dir, format!("cannot read directory: {e}")));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            // lookups/ holds tables, testdata/ the inputs of test cases: no mappings.
            if !(dir == root && (name == "lookups" || name == "testdata")) {
                collect(root, &path, out, diags, depth + 1);
            }
        } else if name.ends_with(".yaml")
            && !name.ends_with(".tests.yaml")
            && !(dir == root && name == "routes.yaml")
        {
            out.push(path);
        }
    }
}

fn load_file(
    root: &Path,
    path: &Path,
    schemas: &dyn Schemas,
    cache: &mut HashMap<PathBuf, Result<Arc<super::ops::LookupTable>, Diagnostics>>,
) -> Result<CompiledMapping, Diagnostics> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostics(vec![diag(path, format!("cannot read mapping file: {e}"))]))?;
    if bytes.len() > crate::limits::MAX_MAPPING_FILE_BYTES {
        return Err(Diagnostics(vec![diag(
            path,
            format!(
                "file is {} bytes, larger than the limit of {} bytes",
                bytes.len(),
                crate::limits::MAX_MAPPING_FILE_BYTES
            ),
        )]));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostics(vec![diag(
            path,
            format!(
                "not UTF-8 at byte {}; save the file as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )])
    })?;
    let default_id = path
        .strip_prefix(root)
        .ok()
        .map(|rel| rel.with_extension("").to_string_lossy().replace('\\', "/"));
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let sibling = path.with_extension("tests.yaml");
    let sibling_tests = if sibling.is_file() {
        match std::fs::read_to_string(&sibling) {
            Ok(t) => Some((sibling.display().to_string(), t)),
            Err(e) => {
                return Err(Diagnostics(vec![diag(
                    &sibling,
                    format!("cannot read tests file: {e}"),
                )]))
            }
        }
    } else {
        None
    };
    let lookup_dirs = vec![root.to_path_buf(), base_dir.clone()];
    let ctx = Context {
        root: root.to_path_buf(),
        file: &file,
        default_id,
        lookup_dirs,
        base_dir,
        sibling_tests,
        schemas,
        lookup_cache: cache,
    };
    compile::compile(ctx, &text)
}
