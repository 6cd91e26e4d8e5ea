//! One compiled message schema: validate a tree, and decode/encode its wire form.
//!
//! This is where a message type's schema and its codec meet, so that intake and
//! delivery never have to remember the XML conventions (root element, namespaces,
//! array paths) of each partner: they call [`MessageSchema::decode`] and
//! [`MessageSchema::encode`].

use indexmap::IndexMap;
use serde_json::Value;

use super::annotation::Annotation;
use super::arrays;
use super::ArrayPaths;
use crate::codec::{self, soap, CodecError, DecodeOptions, EncodeOptions, Format};
use crate::{Diagnostic, Error};

/// At most this many violations are listed for one message (the rest are counted).
pub const MAX_VIOLATIONS: usize = 100;

/// Longest violation text kept, in bytes. A validator's message quotes the
/// failing value (`"xxxx…" is longer than 100 characters`); for an 8 MiB string
/// that would be an 8 MiB reason, stored with the rejection and sent back.
pub const MAX_VIOLATION_BYTES: usize = 300;

/// `line` cut to [`MAX_VIOLATION_BYTES`] on a character boundary, saying so.
fn shorten(mut line: String) -> String {
    if line.len() <= MAX_VIOLATION_BYTES {
        return line;
    }
    let total = line.len();
    let mut cut = MAX_VIOLATION_BYTES;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line.truncate(cut);
    line.push_str(&format!("… ({total} bytes in all)"));
    line
}

/// A compiled message schema.
pub struct MessageSchema {
    /// `<system>/<message_type>`.
    pub id: String,
    pub system: String,
    pub message_type: String,
    pub format: Format,
    /// JSON pointer to the correlation id (dossier code, station code).
    pub correlation: Option<String>,
    /// JSON pointer to the partner's message id.
    pub message_id: Option<String>,
    /// JSON pointers of the natural key used for idempotency when the partner
    /// sends no message id (empty: none).
    pub dedupe_key: Vec<String>,
    /// XML formats: the document element (`DATA` for tax-gip).
    pub xml_root: Option<String>,
    /// XML formats: namespace declarations written on the document element.
    pub namespaces: IndexMap<String, String>,
    /// The schema document as written.
    pub raw: Value,
    /// Element paths that are arrays (XML formats).
    pub array_paths: ArrayPaths,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for MessageSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSchema")
            .field("id", &self.id)
            .field("format", &self.format)
            .field("correlation", &self.correlation)
            .field("message_id", &self.message_id)
            .field("dedupe_key", &self.dedupe_key)
            .field("xml_root", &self.xml_root)
            .field("array_paths", &self.array_paths)
            .finish_non_exhaustive()
    }
}

impl MessageSchema {
    /// Compiles a schema document. `file` and `text` (the file's content, when there is
    /// one) are only used to position the diagnostics.
    pub fn compile(
        system: &str,
        message_type: &str,
        raw: Value,
        file: &str,
        text: Option<&str>,
    ) -> Result<MessageSchema, Vec<Diagnostic>> {
        let diag = |pointer: &str, context: &str, message: String| {
            let (line, column) = text.map_or((0, 0), |t| super::locate::line_col(t, pointer));
            Diagnostic {
                file: file.to_string(),
                line,
                column,
                context: context.to_string(),
                message,
            }
        };
        let mut problems = Vec::new();
        if !raw.is_object() {
            return Err(vec![diag("", "", "a schema must be a JSON object".into())]);
        }
        if let Some(s) = raw.get("$schema") {
            let ok = s.as_str().is_some_and(|s| {
                s.trim_end_matches('#') == "https://json-schema.org/draft/2020-12/schema"
            });
            if !ok {
                problems.push(diag(
                    "/$schema",
                    "$schema",
                    format!("{s} is not draft 2020-12; use \"https://json-schema.org/draft/2020-12/schema\""),
                ));
            }
        }
        let annotation = match Annotation::parse(&raw) {
            Ok(a) => Some(a),
            Err(list) => {
                for (pointer, message) in list {
                    problems.push(diag(&pointer, "x-lienthong", message));
                }
                None
            }
        };
        let validator = match jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&raw)
        {
            Ok(v) => Some(v),
            Err(e) => {
                let pointer = e.instance_path().as_str().to_string();
                let context = if pointer.is_empty() {
                    String::new()
                } else {
                    pointer.clone()
                };
                problems.push(diag(
                    &pointer,
                    &context,
                    format!("invalid JSON Schema: {e}"),
                ));
                None
            }
        };
        let (Some(annotation), Some(validator), true) =
            (annotation, validator, problems.is_empty())
        else {
            return Err(problems);
        };
        let array_paths = arrays::derive(&raw);
        Ok(MessageSchema {
            id: format!("{system}/{message_type}"),
            system: system.to_string(),
            message_type: message_type.to_string(),
            format: annotation.format,
            correlation: annotation.correlation,
            message_id: annotation.message_id,
            dedupe_key: annotation.dedupe_key,
            xml_root: annotation.xml_root,
            namespaces: annotation.namespaces,
            raw,
            array_paths,
            validator,
        })
    }

    /// Validates a tree; the error lists every failing instance path with its message
    /// (`/data/0/MaHoSo: is required`), up to [`MAX_VIOLATIONS`].
    pub fn validate(&self, tree: &Value) -> Result<(), Error> {
        // The boolean check is several times cheaper than collecting errors, and
        // almost every message is valid.
        if self.validator.is_valid(tree) {
            return Ok(());
        }
        let mut violations = Vec::new();
        let mut total = 0usize;
        for error in self.validator.iter_errors(tree) {
            total += 1;
            if violations.len() >= MAX_VIOLATIONS {
                continue;
            }
            let path = error.instance_path().as_str().to_string();
            let line = match error.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_string);
                    format!("{path}/{}: is required", codec::xml::pointer_escape(&name))
                }
                _ => format!("{}: {error}", if path.is_empty() { "/" } else { &path }),
            };
            violations.push(shorten(line));
        }
        if total > violations.len() {
            violations.push(format!("... and {} more", total - violations.len()));
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Schema {
                schema: self.id.clone(),
                violations,
            })
        }
    }

    /// Decodes the wire form into the tree the schema describes.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, Error> {
        self.decode_with(bytes, None)
    }

    /// Decodes, passing the file name (station files carry data in it).
    pub fn decode_with(&self, bytes: &[u8], file_name: Option<&str>) -> Result<Value, Error> {
        let opts = DecodeOptions {
            array_paths: Some(&self.array_paths),
            file_name,
        };
        let tree = codec::decode(self.format, bytes, &opts)?;
        match self.format {
            Format::Xml | Format::TaxGip => Ok(self.strip_root(tree)?),
            Format::Json | Format::StationFile => Ok(tree),
        }
    }

    /// Encodes a tree (as the schema describes it) into what a delivery carries.
    ///
    /// For every format but one that is the wire form. A tax GIP message is
    /// the bare `<DATA>` document: its SOAP envelope, the WS-Security header
    /// and the header fields the gateway wants filled are the tax connector's
    /// to add, once, when it sends. (Wrapping here would have the connector
    /// unwrap the envelope only to wrap the document again; it still accepts an
    /// envelope, as deliveries stored before this change carry one.)
    pub fn encode(&self, tree: &Value) -> Result<Vec<u8>, Error> {
        let namespaces = (!self.namespaces.is_empty()).then_some(&self.namespaces);
        let opts = EncodeOptions {
            xml_root: self.xml_root.as_deref(),
            namespaces,
        };
        match self.format {
            Format::TaxGip => Ok(codec::tax_gip::encode_data(tree, &opts)?),
            _ => Ok(codec::encode(self.format, tree, &opts)?),
        }
    }

    /// The correlation id: the value at the `correlation` pointer, scalars rendered as
    /// text (`125` → `"125"`); `None` when absent, empty, or not a scalar.
    pub fn correlation_id(&self, tree: &Value) -> Option<String> {
        scalar_at(tree, self.correlation.as_deref()?)
    }

    /// The partner's message id, by the same rules as [`Self::correlation_id`].
    pub fn message_id_of(&self, tree: &Value) -> Option<String> {
        scalar_at(tree, self.message_id.as_deref()?)
    }

    /// The natural idempotency key: `<message_type>:` and the values at every
    /// `dedupe_key` pointer joined with `|` (scalars as text). `None` when the
    /// schema declares none or any part is missing, so an incomplete key never
    /// makes two different messages look the same.
    pub fn dedupe_key_of(&self, tree: &Value) -> Option<String> {
        if self.dedupe_key.is_empty() {
            return None;
        }
        let parts: Option<Vec<String>> =
            self.dedupe_key.iter().map(|p| scalar_at(tree, p)).collect();
        Some(format!("{}:{}", self.message_type, parts?.join("|")))
    }

    /// `{"<root>": content}` → content, checking the root's local name.
    fn strip_root(&self, tree: Value) -> Result<Value, CodecError> {
        let format = self.format.as_str();
        let Value::Object(map) = tree else {
            return Err(CodecError::general(
                format,
                "decoder returned no document element",
            ));
        };
        let Some((root, content)) = map.into_iter().next() else {
            return Err(CodecError::general(
                format,
                "decoder returned no document element",
            ));
        };
        if let Some(expected) = &self.xml_root {
            if soap::local_name(&root) != soap::local_name(expected) {
                return Err(CodecError::at(
                    format,
                    format!("/{root}"),
                    format!(
                        "expected the document element <{expected}> for message type {}, found <{root}>",
                        self.id
                    ),
                ));
            }
        }
        Ok(content)
    }
}

fn scalar_at(tree: &Value, pointer: &str) -> Option<String> {
    match tree.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(raw: Value) -> MessageSchema {
        MessageSchema::compile("sys", "msg", raw, "test.schema.json", None).unwrap()
    }

    #[test]
    fn dedupe_key_joins_every_part_or_is_none() {
        let s = schema(
            json!({"x-lienthong": {"format": "json", "correlation": "/MaHoSo",
            "dedupe_key": ["/MaHoSo", "/TrangThaiHoSo", "/NgayTiepNhan"]}}),
        );
        let t = json!({"MaHoSo": "000.00.32.H47-220915-0001", "TrangThaiHoSo": "2", "NgayTiepNhan": "20220915083000"});
        assert_eq!(
            s.dedupe_key_of(&t).as_deref(),
            Some("msg:000.00.32.H47-220915-0001|2|20220915083000")
        );
        let partial = json!({"MaHoSo": "000.00.32.H47-220915-0001", "TrangThaiHoSo": "2"});
        assert_eq!(s.dedupe_key_of(&partial), None);
        let none = schema(json!({"x-lienthong": {"format": "json"}}));
        assert_eq!(none.dedupe_key_of(&t), None);
    }

    #[test]
    fn validate_lists_every_violation() {
        let s = schema(json!({
            "x-lienthong": {"format": "json", "correlation": "/data/0/MaHoSo"},
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "array", "items": {
                "type": "object", "required": ["MaHoSo", "TrangThai"],
                "properties": {"TrangThai": {"type": "string", "pattern": "^[0-9]+$"}}}}}
        }));
        let Err(Error::Schema { schema, violations }) =
            s.validate(&json!({"data": [{"TrangThai": "x"}, {"MaHoSo": "1"}]}))
        else {
            panic!("expected a schema error")
        };
        assert_eq!(schema, "sys/msg");
        assert_eq!(violations.len(), 3, "{violations:?}");
        assert!(
            violations.contains(&"/data/0/MaHoSo: is required".to_string()),
            "{violations:?}"
        );
        assert!(
            violations.contains(&"/data/1/TrangThai: is required".to_string()),
            "{violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("/data/0/TrangThai: ")),
            "{violations:?}"
        );
        s.validate(&json!({"data": [{"MaHoSo": "1", "TrangThai": "2"}]}))
            .unwrap();
        assert_eq!(
            s.correlation_id(&json!({"data": [{"MaHoSo": "H47-1"}]}))
                .as_deref(),
            Some("H47-1")
        );
        assert_eq!(
            s.correlation_id(&json!({"data": [{"MaHoSo": 125}]}))
                .as_deref(),
            Some("125")
        );
        assert_eq!(s.correlation_id(&json!({"data": [{"MaHoSo": ""}]})), None);
        assert_eq!(s.correlation_id(&json!({"data": []})), None);
    }

    #[test]
    fn a_violation_does_not_quote_a_huge_value_whole() {
        let s = schema(json!({"x-lienthong": {"format": "json"}, "type": "object",
            "properties": {"note": {"type": "string", "maxLength": 10}}}));
        let note = "ệ".repeat(1_000_000);
        let Err(Error::Schema { violations, .. }) = s.validate(&json!({ "note": note })) else {
            panic!()
        };
        assert!(
            violations[0].len() < MAX_VIOLATION_BYTES + 40,
            "{}",
            violations[0].len()
        );
        assert!(
            violations[0].contains("bytes in all"),
            "{}",
            &violations[0][..60]
        );
    }

    #[test]
    fn violations_are_capped() {
        let s = schema(
            json!({"x-lienthong": {"format": "json"}, "type": "array", "items": {"type": "string"}}),
        );
        let many: Vec<Value> = (0..500).map(|i| json!(i)).collect();
        let Err(Error::Schema { violations, .. }) = s.validate(&Value::Array(many)) else {
            panic!()
        };
        assert_eq!(violations.len(), MAX_VIOLATIONS + 1);
        assert_eq!(violations.last().unwrap(), "... and 400 more");
    }

    #[test]
    fn xml_decode_strips_and_checks_root_and_encode_restores_it() {
        let s = schema(json!({
            "x-lienthong": {"format": "xml", "correlation": "/MaHoSo",
                            "xml": {"root": "HoSo", "namespaces": {"": "urn:hoso"}}},
            "type": "object",
            "properties": {"MaHoSo": {"type": "string"}, "Tep": {"type": "array", "items": {"type": "string"}}}
        }));
        let tree = s
            .decode(b"<ns:HoSo xmlns:ns=\"urn:hoso\"><MaHoSo>0049</MaHoSo><Tep>a</Tep></ns:HoSo>")
            .unwrap();
        assert_eq!(tree, json!({"MaHoSo": "0049", "Tep": ["a"]}));
        s.validate(&tree).unwrap();
        let bytes = s.encode(&tree).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HoSo xmlns=\"urn:hoso\"><MaHoSo>0049</MaHoSo><Tep>a</Tep></HoSo>"
        );
        assert_eq!(s.decode(&bytes).unwrap(), tree);
        let Err(Error::Codec(e)) = s.decode(b"<Other/>") else {
            panic!()
        };
        assert!(
            e.message.contains("expected the document element <HoSo>"),
            "{e}"
        );
    }

    #[test]
    fn tax_gip_encodes_the_bare_data_document_the_connector_wraps() {
        let s = schema(json!({
            "x-lienthong": {"format": "tax-gip", "correlation": "/BODY/ROW/MA_HS"},
            "type": "object"
        }));
        let tree = json!({"HEADER": {"TRAN_CODE": "05010"}, "BODY": {"ROW": {"MA_HS": "H47-1"}}});
        let bytes = s.encode(&tree).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            "<DATA><HEADER><TRAN_CODE>05010</TRAN_CODE></HEADER><BODY><ROW><MA_HS>H47-1</MA_HS></ROW></BODY></DATA>"
        );
        // No envelope, so nothing for the connector to unwrap, and it reads back.
        assert!(
            !text.contains("Envelope") && !text.contains("CDATA"),
            "{text}"
        );
        assert_eq!(s.decode(&bytes).unwrap(), tree);
    }

    #[test]
    fn compile_errors() {
        let e = MessageSchema::compile(
            "s",
            "m",
            json!({"x-lienthong": {"format": "json"}, "type": "strin"}),
            "f",
            None,
        )
        .unwrap_err();
        assert!(e[0].message.contains("invalid JSON Schema"), "{e:?}");
        let e = MessageSchema::compile(
            "s",
            "m",
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "x-lienthong": {"format": "json"}}),
            "f",
            None,
        )
        .unwrap_err();
        assert!(e[0].message.contains("not draft 2020-12"), "{e:?}");
    }
}
