//! Loading `schemas/<system>/<message_type>.schema.json` into a registry.
//!
//! Loading never stops at the first bad file: it reads and compiles every schema and
//! returns all [`Diagnostics`] together (`file:line:column: what, and what to do`),
//! because an administrator editing several schemas wants the whole list. The
//! registry is immutable once built; a reload builds a new one and swaps it, so a
//! message in flight keeps the schema it was accepted with.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::MessageSchema;
use crate::{limits, Diagnostic, Diagnostics};

const SUFFIX: &str = ".schema.json";

/// Every message schema, by id.
#[derive(Debug, Default)]
pub struct SchemaRegistry {
    schemas: BTreeMap<String, Arc<MessageSchema>>,
}

impl SchemaRegistry {
    /// Loads and compiles every `<system>/<message_type>.schema.json` under `dir`.
    /// Other files (README.md, ...) are ignored.
    pub fn load(dir: &Path) -> Result<SchemaRegistry, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut registry = SchemaRegistry::default();
        let here = |path: &Path, message: String| Diagnostic {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            context: String::new(),
            message,
        };
        let systems = match sorted_entries(dir) {
            Ok(entries) => entries,
            Err(e) => {
                diags.push(here(
                    dir,
                    format!("cannot read the schema directory: {e}; create it or point the configuration at the right one"),
                ));
                return Err(diags);
            }
        };
        for system_path in systems {
            let name = file_name(&system_path);
            if !system_path.is_dir() {
                if name.ends_with(SUFFIX) {
                    diags.push(here(
                        &system_path,
                        format!(
                            "schemas must be in a system folder: move it to {}/<system>/{name}",
                            dir.display()
                        ),
                    ));
                }
                continue;
            }
            if name.starts_with('.') {
                continue;
            }
            let files = match sorted_entries(&system_path) {
                Ok(files) => files,
                Err(e) => {
                    diags.push(here(&system_path, format!("cannot read directory: {e}")));
                    continue;
                }
            };
            for file in files {
                let fname = file_name(&file);
                if file.is_dir() {
                    if !fname.starts_with('.') {
                        diags.push(here(
                            &file,
                            format!("nested folders are not read: schemas live in {}/<system>/<message_type>{SUFFIX}", dir.display()),
                        ));
                    }
                    continue;
                }
                let Some(message_type) = fname.strip_suffix(SUFFIX) else {
                    continue;
                };
                if message_type.is_empty() {
                    diags.push(here(
                        &file,
                        "the message type (the file name before .schema.json) is empty".into(),
                    ));
                    continue;
                }
                match load_file(&file, &name, message_type) {
                    Ok(schema) => {
                        registry.schemas.insert(schema.id.clone(), Arc::new(schema));
                    }
                    Err(list) => list.into_iter().for_each(|d| diags.push(d)),
                }
            }
        }
        diags.into_result().map(|()| registry)
    }

    /// Builds a registry from schemas compiled elsewhere (tests, embedded defaults).
    pub fn from_schemas(schemas: impl IntoIterator<Item = MessageSchema>) -> SchemaRegistry {
        SchemaRegistry {
            schemas: schemas
                .into_iter()
                .map(|s| (s.id.clone(), Arc::new(s)))
                .collect(),
        }
    }

    /// The schema with id `<system>/<message_type>`.
    pub fn get(&self, id: &str) -> Option<Arc<MessageSchema>> {
        self.schemas.get(id).cloned()
    }

    /// The schema of a message type.
    pub fn find(&self, system: &str, message_type: &str) -> Option<Arc<MessageSchema>> {
        self.get(&format!("{system}/{message_type}"))
    }

    /// All schemas, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<MessageSchema>> {
        self.schemas.values()
    }

    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

fn load_file(
    path: &Path,
    system: &str,
    message_type: &str,
) -> Result<MessageSchema, Vec<Diagnostic>> {
    let file = path.display().to_string();
    let diag = |line: usize, column: usize, message: String| Diagnostic {
        file: file.clone(),
        line,
        column,
        context: String::new(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| vec![diag(0, 0, format!("cannot read: {e}"))])?;
    if bytes.len() > limits::MAX_MAPPING_FILE_BYTES {
        return Err(vec![diag(
            0,
            0,
            format!(
                "file is {} bytes, over the {} byte limit for administrator files",
                bytes.len(),
                limits::MAX_MAPPING_FILE_BYTES
            ),
        )]);
    }
    let text = crate::codec::text::utf8("json", &bytes)
        .map_err(|e| vec![diag(0, 0, format!("{}: {}", e.position, e.message))])?;
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .rfind(" at line ")
            .map_or(message.clone(), |i| message[..i].to_string());
        vec![diag(
            e.line(),
            e.column(),
            format!("not valid JSON: {message}"),
        )]
    })?;
    MessageSchema::compile(system, message_type, raw, &file, Some(text))
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
