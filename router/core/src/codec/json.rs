//! JSON ⇄ tree.
//!
//! The tree *is* JSON, so this codec is mostly about refusing hostile input politely:
//! size and UTF-8 are checked first, then a cheap pre-scan rejects nesting deeper than
//! [`limits::MAX_DEPTH`] before `serde_json` recurses (its own limit is 128 and its
//! error would not say which limit), and parse errors carry `serde_json`'s line and
//! column. A UTF-8 byte-order mark is tolerated (some .NET partners send one).
//!
//! Numbers keep their exact decimal text (`arbitrary_precision`), so `1500000000` VND
//! or `7.210` never pass through a float.
//!
//! **Duplicate keys are refused**, naming the key and its position. `serde_json`
//! would keep the last one silently, while the stored raw body holds both: the
//! hub would act on one value and an auditor reading the raw body might see the
//! other. A second pass over the text ([`NoDuplicateKeys`], which builds nothing)
//! finds them.
//!
//! Encoding is compact UTF-8 JSON, with the same depth limit.

use serde_json::Value;

use super::{text, CodecError};
use crate::limits;

const FORMAT: &str = "json";

/// Decodes a JSON document.
pub fn decode(bytes: &[u8]) -> Result<Value, CodecError> {
    text::check_size(FORMAT, bytes, limits::MAX_BODY_BYTES)?;
    let text = text::utf8(FORMAT, bytes)?;
    check_shape(text)?;
    let tree = serde_json::from_str(text).map_err(|e| parse_error(&e))?;
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserialize::deserialize(&mut de)
        .map(|NoDuplicateKeys| ())
        .map_err(|e| parse_error(&e))?;
    Ok(tree)
}

fn parse_error(e: &serde_json::Error) -> CodecError {
    {
        let position = if e.line() == 0 {
            "-".to_string()
        } else {
            format!("line {}, column {}", e.line(), e.column())
        };
        // serde_json appends " at line L column C" to its message; the position field has it.
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        CodecError::at(FORMAT, position, format!("malformed JSON: {message}"))
    }
}

/// Walks a JSON document and fails on the first object with a repeated key.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{key}`: each key may appear once in an object"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
}

/// Encodes a tree as compact JSON.
pub fn encode(tree: &Value) -> Result<Vec<u8>, CodecError> {
    if let Some(path) = too_deep(tree, 1, &mut String::new()) {
        return Err(CodecError::at(
            FORMAT,
            path,
            format!(
                "tree is nested deeper than {} levels (router::limits::MAX_DEPTH)",
                limits::MAX_DEPTH
            ),
        ));
    }
    serde_json::to_vec(tree).map_err(|e| CodecError::general(FORMAT, format!("cannot encode: {e}")))
}

/// Rejects nesting deeper than [`limits::MAX_DEPTH`] and more values than
/// [`limits::MAX_NODES`], without recursion and before a tree is built. Values
/// are counted from the text: each container and each `,` outside strings
/// starts one (an object's entry counts once), so the count is exact for
/// arrays and objects alike, give or take one.
fn check_shape(text: &str) -> Result<(), CodecError> {
    let mut depth = 0usize;
    let mut nodes = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limits::MAX_DEPTH {
                    return Err(CodecError::at(
                        FORMAT,
                        text::position(text, i),
                        format!(
                            "nesting deeper than {} levels (router::limits::MAX_DEPTH)",
                            limits::MAX_DEPTH
                        ),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if matches!(b, b',' | b'[' | b'{') {
            nodes += 1;
            if nodes > limits::MAX_NODES {
                return Err(CodecError::at(
                    FORMAT,
                    text::position(text, i),
                    format!(
                        "more than {} values in one document (router::limits::MAX_NODES): \
                         split it into several messages",
                        limits::MAX_NODES
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// JSON-pointer path of the first value nested deeper than the limit, if any.
/// Recursion is bounded: it stops one level past the limit.
pub(crate) fn too_deep(tree: &Value, depth: usize, path: &mut String) -> Option<String> {
    let children: Box<dyn Iterator<Item = (String, &Value)>> = match tree {
        Value::Array(items) => Box::new(items.iter().enumerate().map(|(i, v)| (i.to_string(), v))),
        Value::Object(map) => Box::new(
            map.iter()
                .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v)),
        ),
        _ => return None,
    };
    if depth > limits::MAX_DEPTH {
        return Some(if path.is_empty() {
            "/".into()
        } else {
            path.clone()
        });
    }
    for (key, child) in children {
        let len = path.len();
        path.push('/');
        path.push_str(&key);
        if let Some(found) = too_deep(child, depth + 1, path) {
            return Some(found);
        }
        path.truncate(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_numbers_and_identifiers_exact() {
        let tree =
            decode(br#"{"SoTien": 1500000000.10, "CCCD": "049090000123", "pH": 7.210}"#).unwrap();
        assert_eq!(tree["CCCD"], "049090000123");
        let out = String::from_utf8(encode(&tree).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"SoTien":1500000000.10,"CCCD":"049090000123","pH":7.210}"#
        );
    }

    #[test]
    fn a_document_of_millions_of_values_is_refused_before_a_tree_is_built() {
        let many = format!("[{}1]", "1,".repeat(limits::MAX_NODES));
        let err = decode(many.as_bytes()).unwrap_err();
        assert!(err.message.contains("MAX_NODES"), "{}", err.message);
        let fine = format!("[{}1]", "1,".repeat(limits::MAX_NODES - 10));
        assert!(decode(fine.as_bytes()).is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused_with_the_key_and_position() {
        let err = decode(b"{\"code\": \"A\",\n \"fee\": {\"x\": 1, \"x\": 2}}").unwrap_err();
        assert!(err.message.contains("duplicate key `x`"), "{}", err.message);
        assert_eq!(err.position, "line 2, column 20");
        // An escape is the same key.
        assert!(decode(br#"{"a": 1, "\u0061": 2}"#).is_err());
        // The same key in sibling objects or in an array is fine.
        assert!(decode(br#"[{"a": 1}, {"a": 2, "b": {"a": 3}}]"#).is_ok());
    }

    #[test]
    fn malformed_json_has_line_and_column() {
        let err = decode(b"{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!(err.format, "json");
        assert_eq!(err.position, "line 3, column 7");
        assert!(
            err.message.starts_with("malformed JSON: expected `:`"),
            "{err}"
        );
    }

    #[test]
    fn too_deep_is_rejected_with_position() {
        let deep = "[".repeat(limits::MAX_DEPTH + 1) + &"]".repeat(limits::MAX_DEPTH + 1);
        let err = decode(deep.as_bytes()).unwrap_err();
        assert_eq!(
            err.position,
            format!("line 1, column {}", limits::MAX_DEPTH + 1)
        );
        assert!(err.message.contains("MAX_DEPTH"));
        let ok = "[".repeat(limits::MAX_DEPTH) + &"]".repeat(limits::MAX_DEPTH);
        decode(ok.as_bytes()).unwrap();
        // Brackets inside strings do not count.
        let s = format!("[\"{}\"]", "[".repeat(200));
        decode(s.as_bytes()).unwrap();
    }

    #[test]
    fn encode_rejects_too_deep_trees() {
        let mut v = Value::Null;
        for _ in 0..=limits::MAX_DEPTH {
            v = Value::Array(vec![v]);
        }
        let err = encode(&v).unwrap_err();
        assert!(err.message.contains("deeper"), "{err}");
    }

    #[test]
    fn not_utf8_and_too_large() {
        let err = decode(b"{\"a\": \"\xFF\"}").unwrap_err();
        assert_eq!(err.position, "byte 7 (line 1, column 8)");
        let big = vec![b' '; limits::MAX_BODY_BYTES + 1];
        assert!(decode(&big).unwrap_err().message.contains("limit"));
    }

    #[test]
    fn bom_and_nfd_text_survive() {
        let nfd = "Nguye\u{302}\u{303}n";
        let input = format!("\u{feff}{{\"ten\":\"{nfd}\"}}");
        let tree = decode(input.as_bytes()).unwrap();
        assert_eq!(tree["ten"].as_str().unwrap().as_bytes(), nfd.as_bytes());
    }
}
