//! # The declarative mapping engine
//!
//! Partners change their formats more often than we can release code, and the
//! people who notice are administrators at the Department, not Rust
//! programmers. So translation between partner formats lives in YAML files
//! under `mappings/` (see `mappings/README.md` for the reference), and this
//! module turns each file into a [`CompiledMapping`] once, when it is loaded:
//!
//! ```text
//!  file ──yaml──▶ located tree ──compile──▶ rules (pre-split paths, compiled ops,
//!                                             compiled jq, resolved lookups)
//!                                   │
//!                                   └──schema check──▶ diagnostics (all at once)
//! ```
//!
//! Applying a compiled mapping walks its rules over the input tree; nothing is
//! parsed per message. A compiled mapping is immutable and shared through an
//! `Arc`, so a reload builds a new [`MappingSet`] and swaps it in, while messages
//! already accepted keep the mapping (and version) they were mapped with.
//!
//! Files in this module, one concern each:
//! * [`yaml`]: the located YAML tree and hostile-input limits.
//! * [`path`]: source/target paths.
//! * [`ops`], [`date`]: pipe ops; [`jq`]: the jq escape hatch.
//! * [`model`]: what a compiled mapping is ([`CompiledMapping`], its rules).
//! * [`compile`]: YAML tree → [`CompiledMapping`], with positioned diagnostics.
//! * [`schema_check`]: the checks against the source and target JSON Schemas.
//! * [`engine`]: applying a mapping to a message.
//! * [`set`]: loading a directory of mappings ([`MappingSet`]).
//! * [`testing`]: the mapping test runner behind `lienthong test`.

pub mod compile;
pub mod date;
pub mod engine;
pub mod jq;
pub mod model;
pub mod ops;
pub mod path;
pub mod paths;
pub mod schema_check;
pub mod set;
pub mod testing;
pub mod yaml;

use serde_json::Value;

pub use model::{CompiledMapping, Endpoint, TestCase, XmlSpec};
pub use set::MappingSet;
pub use testing::{run_tests, CaseOutcome, CaseResult, TestReport};

/// What the mapping engine needs from the schema registry: the raw JSON Schema
/// of a message type (for the load-time checks) and validation (for mapping
/// tests). Implemented by `crate::schema::SchemaRegistry`; tests and tools
/// without schemas use [`NoSchemas`].
pub trait Schemas {
    /// The raw schema document for a schema id such as `lis/dossier.register`.
    fn raw(&self, id: &str) -> Option<&Value>;
    /// Validate a tree against a schema; `Err(Error::Schema)` lists the violations.
    fn validate(&self, id: &str, tree: &Value) -> crate::Result<()>;
    /// Decode wire bytes of a message type into its tree (test `input_file`s that are not JSON).
    fn decode(&self, id: &str, bytes: &[u8], file_name: Option<&str>) -> crate::Result<Value>;
    /// False when there is no registry at all (checks against schemas are skipped).
    fn enabled(&self) -> bool {
        true
    }
}

impl Schemas for crate::schema::SchemaRegistry {
    fn raw(&self, id: &str) -> Option<&Value> {
        self.iter().find(|s| s.id == id).map(|s| &s.raw)
    }
    fn validate(&self, id: &str, tree: &Value) -> crate::Result<()> {
        match self.get(id) {
            Some(s) => s.validate(tree),
            None => Err(crate::Error::NotFound(format!("schema '{id}'"))),
        }
    }
    fn decode(&self, id: &str, bytes: &[u8], file_name: Option<&str>) -> crate::Result<Value> {
        match self.get(id) {
            Some(s) => s.decode_with(bytes, file_name),
            None => Err(crate::Error::NotFound(format!("schema '{id}'"))),
        }
    }
}

/// No schemas at all: load-time checks against schemas are skipped.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSchemas;

impl Schemas for NoSchemas {
    fn raw(&self, _id: &str) -> Option<&Value> {
        None
    }
    fn validate(&self, _id: &str, _tree: &Value) -> crate::Result<()> {
        Ok(())
    }
    fn decode(&self, _id: &str, bytes: &[u8], _file_name: Option<&str>) -> crate::Result<Value> {
        Ok(crate::codec::decode(
            crate::codec::Format::Json,
            bytes,
            &Default::default(),
        )?)
    }
    fn enabled(&self) -> bool {
        false
    }
}
