//! The `x-lienthong` annotation: how the hub reads and writes a message type.
//!
//! It is parsed strictly (unknown keys are errors) because a typo such as
//! `"corelation"` would otherwise silently disable ordering and idempotency for a
//! whole message type.

use indexmap::IndexMap;
use serde_json::Value;

use crate::codec::{tax_gip, xml, Format};

/// The parsed `x-lienthong` annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub format: Format,
    /// JSON pointer to the correlation id (dossier code, station code).
    pub correlation: Option<String>,
    /// JSON pointer to the partner's message id.
    pub message_id: Option<String>,
    /// JSON pointers whose values together identify a message when the partner
    /// sends no message id (e.g. dossier code + status + filing time).
    pub dedupe_key: Vec<String>,
    /// XML formats: the document element.
    pub xml_root: Option<String>,
    /// XML formats: namespace declarations (`""` = default namespace).
    pub namespaces: IndexMap<String, String>,
}

/// A problem in the annotation: the JSON pointer of the offending key and the message.
pub(crate) type Problem = (String, String);

impl Annotation {
    /// Parses the annotation from a schema root, collecting every problem.
    pub(crate) fn parse(root: &Value) -> Result<Annotation, Vec<Problem>> {
        let mut problems: Vec<Problem> = Vec::new();
        let at = |p: &str| format!("/x-lienthong{p}");
        let Some(ann) = root.get("x-lienthong") else {
            return Err(vec![(
                String::new(),
                "missing \"x-lienthong\" annotation at the schema root; add at least {\"x-lienthong\": {\"format\": \"json\"}}"
                    .into(),
            )]);
        };
        let Some(ann) = ann.as_object() else {
            return Err(vec![(at(""), "\"x-lienthong\" must be an object".into())]);
        };
        for key in ann.keys() {
            if !matches!(
                key.as_str(),
                "format" | "correlation" | "message_id" | "dedupe_key" | "xml"
            ) {
                problems.push((
                    at(&format!("/{key}")),
                    format!("unknown key {key:?} (known: format, correlation, message_id, dedupe_key, xml)"),
                ));
            }
        }
        let format = match ann.get("format") {
            None => {
                problems.push((
                    at(""),
                    "missing \"format\" (json, xml, tax-gip or station-file)".into(),
                ));
                None
            }
            Some(v) => match v.as_str().and_then(Format::parse) {
                Some(f) => Some(f),
                None => {
                    problems.push((
                        at("/format"),
                        format!("format {v} is not one of json, xml, tax-gip, station-file"),
                    ));
                    None
                }
            },
        };
        let mut pointer = |key: &str| match ann.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => Some(p.clone()),
            Some(v) => {
                problems.push((
                    at(&format!("/{key}")),
                    format!("{key} must be a JSON pointer string starting with '/', e.g. \"/MaHoSo\" (found {v})"),
                ));
                None
            }
        };
        let correlation = pointer("correlation");
        let message_id = pointer("message_id");
        let mut dedupe_key = Vec::new();
        match ann.get("dedupe_key") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(p) if p.starts_with('/') => dedupe_key.push(p.to_string()),
                        _ => problems.push((
                            at(&format!("/dedupe_key/{i}")),
                            format!("each dedupe_key item must be a JSON pointer string starting with '/', e.g. \"/MaHoSo\" (found {item})"),
                        )),
                    }
                }
            }
            Some(v) => problems.push((
                at("/dedupe_key"),
                format!("dedupe_key must be a non-empty list of JSON pointers, e.g. [\"/MaHoSo\", \"/NgayTiepNhan\"] (found {v})"),
            )),
        }

        let mut xml_root = None;
        let mut namespaces = IndexMap::new();
        if let Some(xml_ann) = ann.get("xml") {
            match xml_ann.as_object() {
                None => problems.push((
                    at("/xml"),
                    "\"xml\" must be an object {\"root\": .., \"namespaces\": {..}}".into(),
                )),
                Some(x) => {
                    for key in x.keys() {
                        if !matches!(key.as_str(), "root" | "namespaces") {
                            problems.push((
                                at(&format!("/xml/{key}")),
                                format!("unknown key {key:?} (known: root, namespaces)"),
                            ));
                        }
                    }
                    match x.get("root") {
                        None => {}
                        Some(Value::String(r)) if xml::is_xml_name(r) => xml_root = Some(r.clone()),
                        Some(v) => problems.push((
                            at("/xml/root"),
                            format!("root must be an XML element name (found {v})"),
                        )),
                    }
                    match x.get("namespaces") {
                        None => {}
                        Some(Value::Object(ns)) => {
                            for (prefix, uri) in ns {
                                match uri.as_str() {
                                    Some(u) if prefix.is_empty() || xml::is_xml_name(prefix) => {
                                        namespaces.insert(prefix.clone(), u.to_string());
                                    }
                                    _ => problems.push((
                                        at(&format!("/xml/namespaces/{prefix}")),
                                        "a namespace must map a prefix (\"\" for the default) to a URI string".into(),
                                    )),
                                }
                            }
                        }
                        Some(_) => problems.push((
                            at("/xml/namespaces"),
                            "namespaces must be an object prefix -> URI".into(),
                        )),
                    }
                }
            }
        }
        match format {
            Some(Format::Xml)
                if xml_root.is_none()
                    && !problems.iter().any(|(p, _)| p.starts_with(&at("/xml"))) =>
            {
                let pointer = if ann.contains_key("xml") { "/xml" } else { "" };
                problems.push((
                    at(pointer),
                    "format xml needs \"xml\": {\"root\": \"<document element>\"}".into(),
                ));
            }
            Some(Format::TaxGip) if xml_root.as_deref().is_some_and(|r| r != tax_gip::DATA) => {
                problems.push((at("/xml/root"), "a tax-gip document's element is always DATA; remove xml.root or set it to DATA".into()));
            }
            Some(Format::Json | Format::StationFile) if ann.contains_key("xml") => {
                problems.push((
                    at("/xml"),
                    "\"xml\" only applies to the xml and tax-gip formats".into(),
                ));
            }
            _ => {}
        }
        if let Some(f) = format.filter(|_| problems.is_empty()) {
            let xml_root = match f {
                Format::TaxGip => Some(tax_gip::DATA.to_string()),
                _ => xml_root,
            };
            return Ok(Annotation {
                format: f,
                correlation,
                message_id,
                dedupe_key,
                xml_root,
                namespaces,
            });
        }
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_full_annotation() {
        let a = Annotation::parse(
            &json!({"x-lienthong": {"format": "xml", "correlation": "/MaHoSo",
            "xml": {"root": "DangKyHoSo", "namespaces": {"": "urn:lis"}}}}),
        )
        .unwrap();
        assert_eq!(a.format, Format::Xml);
        assert_eq!(a.correlation.as_deref(), Some("/MaHoSo"));
        assert_eq!(a.xml_root.as_deref(), Some("DangKyHoSo"));
        assert_eq!(a.namespaces.get(""), Some(&"urn:lis".to_string()));
        let t = Annotation::parse(&json!({"x-lienthong": {"format": "tax-gip"}})).unwrap();
        assert_eq!(t.xml_root.as_deref(), Some("DATA"));
        assert!(t.dedupe_key.is_empty());
    }

    #[test]
    fn dedupe_key_is_a_list_of_pointers() {
        let a = Annotation::parse(
            &json!({"x-lienthong": {"format": "json", "dedupe_key": ["/MaHoSo", "/NgayTiepNhan"]}}),
        )
        .unwrap();
        assert_eq!(a.dedupe_key, ["/MaHoSo", "/NgayTiepNhan"]);
        let problems = Annotation::parse(
            &json!({"x-lienthong": {"format": "json", "dedupe_key": ["/MaHoSo", "NgayTiepNhan"]}}),
        )
        .unwrap_err();
        assert_eq!(problems[0].0, "/x-lienthong/dedupe_key/1");
        let problems =
            Annotation::parse(&json!({"x-lienthong": {"format": "json", "dedupe_key": "/MaHoSo"}}))
                .unwrap_err();
        assert!(problems[0].1.contains("non-empty list"), "{problems:?}");
    }

    #[test]
    fn reports_every_problem() {
        let problems = Annotation::parse(
            &json!({"x-lienthong": {"format": "yaml", "corelation": "/x",
            "message_id": "MsgId"}}),
        )
        .unwrap_err();
        let pointers: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/x-lienthong/corelation",
                "/x-lienthong/format",
                "/x-lienthong/message_id"
            ]
        );
        let problems = Annotation::parse(&json!({"x-lienthong": {"format": "xml"}})).unwrap_err();
        assert!(problems[0].1.contains("needs \"xml\""));
        assert!(Annotation::parse(&json!({})).unwrap_err()[0]
            .1
            .contains("missing"));
        let problems =
            Annotation::parse(&json!({"x-lienthong": {"format": "json", "xml": {"root": "A"}}}))
                .unwrap_err();
        assert!(problems[0].1.contains("only applies"));
    }
}
