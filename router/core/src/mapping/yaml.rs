//! A located YAML tree: every node remembers its line and column.
//!
//! Why not deserialize mapping files straight into `#[derive(Deserialize)]`
//! structs? Because serde stops at the first error, and an administrator who
//! fixes a mapping file one error per run loses an afternoon. We parse the file
//! once into this small tree (with `serde_saphyr::Spanned` supplying positions),
//! then the compiler walks it, collects *every* problem with its
//! `file:line:column`, and only then gives up.
//!
//! Hostile input is bounded here: the file size is checked against
//! [`crate::limits::MAX_MAPPING_FILE_BYTES`] before parsing, and serde-saphyr's
//! budget rejects alias bombs (billion laughs), too many nodes and nesting deeper
//! than [`crate::limits::MAX_DEPTH`].

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::{limits, Diagnostic};

/// A YAML node with its position (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub column: usize,
    pub kind: Kind,
}

/// What a node holds. Scalars keep their YAML-inferred type; mapping keys keep
/// their own node so errors about a key point at the key.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// A number, as exact text (YAML integers and floats).
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text when it is a string, number or boolean (mapping keys, codes).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::String(s) => Some(s.clone()),
            Kind::Number(n) => Some(n.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Value of key `name` in a mapping node.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The node as a JSON value (for `const`, `default`, lookup values, test inputs).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::String(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        number_from_text(&v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        number_from_text(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        match serde_json::Number::from_f64(v) {
            Some(n) => Ok(Kind::Number(n)),
            None => Err(E::custom("NaN and infinity are not allowed here")),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

fn number_from_text<E: de::Error>(text: &str) -> Result<Kind, E> {
    text.parse::<serde_json::Number>()
        .map(Kind::Number)
        .map_err(|e| E::custom(format!("bad number {text}: {e}")))
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(d)?;
        Ok(Node {
            line: spanned.referenced.line() as usize,
            column: spanned.referenced.column() as usize,
            kind: spanned.value,
        })
    }
}

/// Parse YAML text into a located tree. `file` is only used in the diagnostic.
///
/// Codes such as `01` stay strings (leading zeros are never numbers here), and
/// only `true`/`false` are booleans, so `no`/`on` stay text.
pub fn parse(file: &str, text: &str) -> Result<Node, Diagnostic> {
    if text.len() > limits::MAX_MAPPING_FILE_BYTES {
        return Err(Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            context: String::new(),
            message: format!(
                "file is {} bytes, larger than the limit of {} bytes; split it into several files",
                text.len(),
                limits::MAX_MAPPING_FILE_BYTES
            ),
        });
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = limits::MAX_DEPTH;
    budget.max_nodes = 100_000;
    budget.max_aliases = 1_000;
    let options = serde_saphyr::options! {
        budget: Some(budget),
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    };
    match serde_saphyr::from_str_with_options::<Node>(text, options) {
        Ok(node) => Ok(node),
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((0, 0));
            let full = e.to_string();
            // The rendered error carries a snippet; the first line is the message.
            let message = full
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .trim()
                .to_owned();
            Err(Diagnostic {
                file: file.to_owned(),
                line,
                column,
                context: String::new(),
                message: format!("invalid YAML: {message}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_recorded_for_values_and_keys() {
        let n = parse("x.yaml", "a: 1\nb:\n  - c: \"x\"\n    d: 007\n").unwrap();
        let (k, v) = &n.as_map().unwrap()[1];
        assert_eq!((k.line, k.column), (2, 1));
        let Kind::Seq(items) = &v.kind else {
            panic!("{v:?}")
        };
        let c = items[0].get("c").unwrap();
        assert_eq!((c.line, c.column), (3, 8));
        assert_eq!(items[0].get("d").unwrap().kind, Kind::String("007".into()));
        assert_eq!(n.get("a").unwrap().kind, Kind::Number(1.into()));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("x.yaml", "a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.line > 0, "{e}");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
    }

    #[test]
    fn alias_bombs_and_huge_files_are_rejected() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            bomb.push_str(&format!(
                "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = c;
        }
        assert!(parse("bomb.yaml", &bomb).is_err());
        let huge = "a: b\n".repeat(limits::MAX_MAPPING_FILE_BYTES / 5 + 10);
        let e = parse("huge.yaml", &huge).unwrap_err();
        assert!(e.message.contains("larger than the limit"), "{e}");
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(parse("deep.yaml", &deep).is_err());
    }
}
