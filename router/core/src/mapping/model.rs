//! What a mapping *is*, once compiled: the types the compiler builds, the
//! engine runs, the schema checks inspect and the test runner reads.
//!
//! They live apart from the compiler so that each of those four depends on
//! this file and none on another: the compiler ([`super::compile`]) fills
//! these types from YAML, the engine ([`super::engine`]) applies them, the
//! schema checks ([`super::schema_check`]) read them against the schemas.

use std::path::PathBuf;

use serde_json::Value;

use super::jq::Jq;
use super::ops::Op;
use super::path::{Path, Target};

/// One side of a mapping: which message type it reads or writes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Endpoint {
    pub system: String,
    pub message_type: String,
    /// Wire format: `json`, `xml`, `tax-gip`, `station-file` (see `codec::Format`).
    pub format: String,
    /// Schema id (`<system>/<message_type>` unless given).
    pub schema: String,
    /// XML root element and namespaces (target side, XML formats).
    pub xml: Option<XmlSpec>,
}

/// XML root and namespaces of an XML target (prefix `""` is the default namespace).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct XmlSpec {
    pub root: String,
    pub namespaces: indexmap::IndexMap<String, String>,
}

/// One mapping test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// `file:line` of the case, for the report.
    pub origin: String,
    pub input: TestInput,
    pub expect: Expect,
}

#[derive(Debug, Clone)]
pub enum TestInput {
    /// An inline tree, or a `.json`/`.yaml` input file already parsed.
    Tree(Value),
    /// Raw bytes of an input file to decode with the source format's codec.
    Bytes { path: PathBuf, bytes: Vec<u8> },
}

#[derive(Debug, Clone)]
pub enum Expect {
    Output(Value),
    ErrorContaining(String),
}

/// A mapping ready to run. Immutable; shared through `Arc`.
#[derive(Debug)]
pub struct CompiledMapping {
    pub id: String,
    pub version: u32,
    pub description: String,
    pub source: Endpoint,
    pub target: Endpoint,
    /// SHA-256 (hex) of the mapping file's bytes: identifies exactly what mapped a message.
    pub content_hash: String,
    /// The file it was loaded from (as given to the loader).
    pub file: String,
    pub tests: Vec<TestCase>,
    pub(crate) rules: Vec<Rule>,
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    /// `rules[3] (target: NgayNhan)`, used in every message about the rule.
    pub label: String,
    pub target: Target,
    pub value: Src,
    pub pipe: Vec<Op>,
    pub default: Option<Value>,
    pub required: bool,
    pub when: Option<Jq>,
    /// Position of the value key (`source:`, `const:`, `for_each:`...) and of `target:`.
    pub value_pos: (usize, usize),
    pub target_pos: (usize, usize),
}

/// Where a rule's value comes from.
#[derive(Debug)]
pub(crate) enum Src {
    /// Only a `default`.
    Nothing,
    Path(Path),
    Const(Value),
    Template(Vec<Part>),
    Concat {
        paths: Vec<Path>,
        separator: String,
    },
    Expr(Jq),
    ForEach {
        path: Path,
        rules: Vec<Rule>,
    },
}

#[derive(Debug)]
pub(crate) enum Part {
    Lit(String),
    Field(Path),
}
