//! SOAP 1.1 envelopes: wrap a body element, unwrap one, read faults.
//!
//! LIS and the tax GIP gateway speak SOAP 1.1. What the hub cares about is one
//! element, the first child of `<Body>` (the operation or its response), plus the
//! header blocks (WS-Security) and, on failure, the `<Fault>`. So [`unwrap`] returns
//! exactly those as trees (by the convention in [`super::xml`]: element names keep
//! their prefixes, `xmlns` declarations are dropped), and [`wrap`] builds an envelope
//! around a body given as a tree or as ready-made XML bytes.
//!
//! Only SOAP 1.1 (`http://schemas.xmlsoap.org/soap/envelope/`) is accepted: a SOAP 1.2
//! envelope is refused with a message saying so, rather than half-understood (its
//! fault structure differs). The envelope's own elements are found by local name, so
//! any prefix (`soapenv:`, `soap:`, `S:`) works.
//!
//! A fault is not a decoding error: `unwrap` succeeds and fills
//! [`SoapMessage::fault`], so the connector can classify it (a `Server` fault may be
//! retryable, a `Client` fault is not).
//!
//! # Two ways in, one module
//!
//! The hub's inbound side wants trees ([`unwrap`], [`wrap`]). The connectors'
//! outbound side wants the opposite: the bytes the mapping produced must be the
//! bytes that go out, so [`envelope`] splices ready-made header and body XML, and
//! [`parse_reply`] hands back the raw inner XML of a reply's `<Body>` (or its
//! [`SoapFault`]) without re-serialising it. Both share the namespace, the fault
//! type and its classification ([`SoapFault::class`]), and the text helpers in
//! [`super::fragment`].

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::{fragment, text, xml, CodecError, DecodeOptions, EncodeOptions};

const FORMAT: &str = "soap";

/// The SOAP 1.1 envelope namespace.
pub const SOAP11_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12_NAMESPACE: &str = "http://www.w3.org/2003/05/soap-envelope";

/// An unwrapped SOAP message.
#[derive(Clone, Debug, PartialEq)]
pub struct SoapMessage {
    /// The content of `<Header>` (an object of header blocks), if there is a header.
    pub header: Option<Value>,
    /// The first child of `<Body>` as `{"<name>": <content>}`; `null` for an empty body.
    pub body: Value,
    /// The fault, when the first body child is `<Fault>`.
    pub fault: Option<SoapFault>,
}

/// A SOAP 1.1 fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoapFault {
    /// `faultcode` as sent, e.g. `soap:Server` or `soapenv:Client.Authentication`.
    pub code: String,
    /// `faultstring`, the human-readable reason.
    pub string: String,
    /// `detail`, if present (only [`unwrap`] decodes it; [`parse_reply`] leaves it out).
    pub detail: Option<Value>,
}

impl SoapFault {
    /// The fault code's class: its local part before any dot, `Client`, `Server`,
    /// `VersionMismatch` or `MustUnderstand` (`soapenv:Client.Authentication` →
    /// `Client`; SOAP 1.1 §4.4.1 makes dotted codes refinements of their class).
    pub fn class(&self) -> &str {
        fault_class(&self.code)
    }

    /// `Server` faults are the partner's problem and may pass; `Client` faults mean the
    /// message itself must change.
    pub fn is_server(&self) -> bool {
        self.class() == "Server"
    }
}

/// `soapenv:Client.Authentication` → `Client`.
pub fn fault_class(raw: &str) -> &str {
    let local = local_name(raw);
    local.split('.').next().unwrap_or(local)
}

/// A reply read by [`parse_reply`]: a fault, or the raw inner XML of `Body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Fault(SoapFault),
    Body(String),
}

/// `<soapenv:Envelope>` around `header` (raw XML, may be empty) and `body` (raw
/// XML), spliced as given: what the mapping produced is what goes out.
pub fn envelope(header: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP11_NAMESPACE}"><soapenv:Header>{header}</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

/// A SOAP 1.1 fault envelope with `soapenv:{code}` and `message`.
pub fn fault_envelope(code: &str, message: &str) -> String {
    envelope(
        "",
        &format!(
            "<soapenv:Fault><faultcode>soapenv:{}</faultcode><faultstring>{}</faultstring></soapenv:Fault>",
            fragment::escape(code),
            fragment::escape(message)
        ),
    )
}

/// Reads a SOAP 1.1 reply as text: its fault, or the raw inner XML of its `Body`.
pub fn parse_reply(text: &str) -> Result<Reply, String> {
    let root = fragment::root_name(text)?;
    if root != "Envelope" {
        return Err(format!("expected a SOAP Envelope, found <{root}>"));
    }
    let body = fragment::inner(text, "Body")?.ok_or("the SOAP Envelope has no Body")?;
    if fragment::inner(body, "Fault")?.is_some() {
        let code = fragment::text(body, "faultcode")?
            .unwrap_or_default()
            .trim()
            .to_string();
        let string = fragment::text(body, "faultstring")?
            .unwrap_or_default()
            .trim()
            .to_string();
        return Ok(Reply::Fault(SoapFault {
            code,
            string,
            detail: None,
        }));
    }
    Ok(Reply::Body(body.to_string()))
}

/// The body to put in an envelope.
#[derive(Clone, Copy, Debug)]
pub enum SoapBody<'a> {
    /// A tree `{"<operation>": <content>}` encoded by the XML convention.
    Tree(&'a Value),
    /// A ready-made XML element (an XML declaration and BOM, if present, are removed).
    Xml(&'a [u8]),
}

/// Unwraps a SOAP 1.1 envelope.
pub fn unwrap(bytes: &[u8]) -> Result<SoapMessage, CodecError> {
    unwrap_with(bytes, &DecodeOptions::default())
}

/// Unwraps a SOAP 1.1 envelope; `opts.array_paths` are relative to the content of
/// the first body child (the operation element).
pub fn unwrap_with(bytes: &[u8], opts: &DecodeOptions) -> Result<SoapMessage, CodecError> {
    let doc = xml::decode_document(FORMAT, bytes, None)?;
    from_document(doc, opts)
}

/// Unwraps an already parsed envelope (decoded without array paths).
pub(crate) fn from_document(
    doc: xml::Document,
    opts: &DecodeOptions,
) -> Result<SoapMessage, CodecError> {
    if local_name(&doc.root) != "Envelope" {
        return Err(CodecError::at(
            FORMAT,
            format!("/{}", doc.root),
            format!(
                "expected a SOAP <Envelope> as the document element, found <{}>",
                doc.root
            ),
        ));
    }
    let prefix = doc.root.rsplit_once(':').map_or("", |(p, _)| p);
    match doc.namespaces.get(prefix).map(String::as_str) {
        Some(SOAP11_NAMESPACE) => {}
        Some(SOAP12_NAMESPACE) => {
            return Err(CodecError::at(
                FORMAT,
                format!("/{}", doc.root),
                "this is a SOAP 1.2 envelope; the partner must use SOAP 1.1 (namespace http://schemas.xmlsoap.org/soap/envelope/)",
            ))
        }
        other => {
            return Err(CodecError::at(
                FORMAT,
                format!("/{}", doc.root),
                format!(
                    "<{}> is not in the SOAP 1.1 namespace {SOAP11_NAMESPACE} (declared: {})",
                    doc.root,
                    other.unwrap_or("none")
                ),
            ))
        }
    }
    let empty = Map::new();
    let children = doc.content.as_object().unwrap_or(&empty);
    let header = find(children, "Header").cloned();
    let body_at = format!("/{}", doc.root);
    let Some(body) = find(children, "Body") else {
        return Err(CodecError::at(
            FORMAT,
            body_at,
            "the envelope has no <Body>",
        ));
    };
    let body = match body {
        Value::Object(map) => match map
            .iter()
            .find(|(k, _)| !k.starts_with('@') && !k.starts_with('#'))
        {
            Some((name, value)) => {
                let mut value = match value {
                    Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
                    v => v.clone(),
                };
                if let Some(paths) = opts.array_paths {
                    xml::apply_array_paths(&mut value, paths, "");
                }
                let mut one = Map::new();
                one.insert(name.clone(), value);
                Value::Object(one)
            }
            None => Value::Null,
        },
        Value::String(s) if s.trim().is_empty() => Value::Null,
        Value::String(_) => {
            return Err(CodecError::at(
                FORMAT,
                body_at,
                "<Body> contains text instead of an element",
            ));
        }
        _ => Value::Null,
    };
    let fault = fault_of(&body);
    Ok(SoapMessage {
        header,
        body,
        fault,
    })
}

/// Wraps a body (and optional header blocks) into a SOAP 1.1 envelope.
///
/// `header` is an object of header blocks (`{"wsse:Security": {...}}`); `namespaces`
/// are declared on the envelope next to `soapenv` (key `""` = default namespace).
pub fn wrap(
    body: SoapBody,
    header: Option<&Value>,
    namespaces: Option<&IndexMap<String, String>>,
) -> Result<Vec<u8>, CodecError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<soapenv:Envelope xmlns:soapenv=\"");
    out.push_str(SOAP11_NAMESPACE);
    out.push('"');
    for (prefix, uri) in namespaces.into_iter().flatten() {
        if prefix == "soapenv" {
            continue;
        }
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(&format!(" xmlns:{prefix}=\""));
        }
        out.push_str(&escape_attr(uri));
        out.push('"');
    }
    out.push('>');
    if let Some(header) = header {
        let opts = EncodeOptions {
            xml_root: Some("soapenv:Header"),
            namespaces: None,
        };
        xml::write_document(FORMAT, &mut out, header, &opts)?;
    }
    out.push_str("<soapenv:Body>");
    match body {
        SoapBody::Tree(tree) => {
            xml::write_document(FORMAT, &mut out, tree, &EncodeOptions::default())?
        }
        SoapBody::Xml(bytes) => {
            let element = text::utf8(FORMAT, bytes)?;
            // Refuse to splice anything that is not one well-formed element.
            xml::parse(FORMAT, element, None).map_err(|e| e.within(FORMAT, "body XML"))?;
            out.push_str(fragment::strip_declaration(element));
        }
    }
    out.push_str("</soapenv:Body></soapenv:Envelope>");
    Ok(out.into_bytes())
}

/// Makes the tree of a fault body into a [`SoapFault`], if it is one.
fn fault_of(body: &Value) -> Option<SoapFault> {
    let (name, content) = body.as_object()?.iter().next()?;
    if local_name(name) != "Fault" {
        return None;
    }
    let empty = Map::new();
    let fields = content.as_object().unwrap_or(&empty);
    let text_of = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => m
            .get("#text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    Some(SoapFault {
        code: text_of(find(fields, "faultcode")),
        string: text_of(find(fields, "faultstring")),
        detail: find(fields, "detail").cloned(),
    })
}

/// The child with this local name (any prefix).
fn find<'a>(map: &'a Map<String, Value>, local: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| !k.starts_with('@') && local_name(k) == local)
        .map(|(_, v)| v)
}

/// `soapenv:Body` → `Body`.
pub(crate) fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ArrayPaths;
    use serde_json::json;

    #[test]
    fn wrap_then_unwrap() {
        let body = json!({"lis:DangKyHoSo": {"MaHoSo": "000.00.32.H19-210708-0032", "Ten": "Nguyễn Văn A"}});
        let header = json!({"wsse:Security": {"wsse:UsernameToken": {"wsse:Username": "hub"}}});
        let mut ns = IndexMap::new();
        ns.insert(
            "lis".to_string(),
            "http://lis.quangnam.gov.vn/hoso".to_string(),
        );
        ns.insert("wsse".to_string(), "urn:wsse".to_string());
        let bytes = wrap(SoapBody::Tree(&body), Some(&header), Some(&ns)).unwrap();
        let msg = unwrap(&bytes).unwrap();
        assert_eq!(msg.body, body);
        assert_eq!(msg.header, Some(header));
        assert_eq!(msg.fault, None);
    }

    #[test]
    fn wrap_xml_bytes_and_array_paths() {
        let bytes = wrap(
            SoapBody::Xml(b"<?xml version=\"1.0\"?>\n<op><Row>1</Row></op>"),
            None,
            None,
        )
        .unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("<soapenv:Body><op><Row>1</Row></op></soapenv:Body>"),
            "{text}"
        );
        let paths: ArrayPaths = ["Row"].into_iter().collect();
        let msg = unwrap_with(
            &bytes,
            &DecodeOptions {
                array_paths: Some(&paths),
                file_name: None,
            },
        )
        .unwrap();
        assert_eq!(msg.body, json!({"op": {"Row": ["1"]}}));
        assert_eq!(msg.header, None);
        let err = wrap(SoapBody::Xml(b"<op>"), None, None).unwrap_err();
        assert!(err.message.starts_with("body XML"), "{err}");
    }

    #[test]
    fn fault_is_parsed() {
        let xml = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
            <S:Fault><faultcode>S:Server</faultcode><faultstring>Hệ thống bận</faultstring>
            <detail><code>E42</code></detail></S:Fault></S:Body></S:Envelope>"#;
        let msg = unwrap(xml.as_bytes()).unwrap();
        let fault = msg.fault.unwrap();
        assert_eq!(fault.code, "S:Server");
        assert!(fault.is_server());
        assert_eq!(fault.string, "Hệ thống bận");
        assert_eq!(fault.detail, Some(json!({"code": "E42"})));
    }

    #[test]
    fn rejects_non_soap11() {
        let e = unwrap(b"<HoSo/>").unwrap_err();
        assert!(e.message.contains("expected a SOAP <Envelope>"), "{e}");
        let e = unwrap(br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#)
            .unwrap_err();
        assert!(e.message.contains("SOAP 1.2"), "{e}");
        let e = unwrap(
            br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"></e:Envelope>"#,
        )
        .unwrap_err();
        assert!(e.message.contains("no <Body>"), "{e}");
        let e = unwrap(b"<e:Envelope><e:Body>").unwrap_err();
        assert_eq!(e.format, "soap");
        let msg = unwrap(br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>"#)
            .unwrap();
        assert_eq!(msg.body, Value::Null);
    }

    #[test]
    fn raw_faults_and_bodies() {
        let f = fault_envelope("Client.Authentication", "sai mật khẩu");
        match parse_reply(&f).unwrap() {
            Reply::Fault(fault) => {
                assert_eq!(fault.class(), "Client");
                assert_eq!(fault.code, "soapenv:Client.Authentication");
                assert_eq!(fault.string, "sai mật khẩu");
            }
            other => panic!("{other:?}"),
        }
        let ok = envelope("", "<r:Ok xmlns:r=\"x\"><Ma>1</Ma></r:Ok>");
        assert_eq!(
            parse_reply(&ok).unwrap(),
            Reply::Body("<r:Ok xmlns:r=\"x\"><Ma>1</Ma></r:Ok>".into())
        );
        assert!(parse_reply("<html/>").is_err());
        // The tree side and the text side agree on the fault.
        let tree = unwrap(f.as_bytes()).unwrap().fault.unwrap();
        assert_eq!(
            (tree.code.as_str(), tree.class()),
            ("soapenv:Client.Authentication", "Client")
        );
        assert!(!tree.is_server());
    }
}
