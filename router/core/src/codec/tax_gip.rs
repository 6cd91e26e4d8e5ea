//! The tax authority's GIP gateway: a business document inside a SOAP envelope, as CDATA.
//!
//! The gateway does not put its business XML directly in the SOAP body. It sends a
//! SOAP 1.1 envelope whose body element (e.g. `<gip:xuLyTruyVanMsg>`) has one child
//! (e.g. `<in_msg>`) whose *text* is a second XML document:
//!
//! ```xml
//! <gip:xuLyTruyVanMsg><in_msg><![CDATA[<DATA><HEADER>…</HEADER><BODY>…</BODY><SECURITY/></DATA>]]></in_msg></gip:xuLyTruyVanMsg>
//! ```
//!
//! The hub's tree for a tax message is that inner document, `{"DATA": {"HEADER": …,
//! "BODY": …, "SECURITY": …}}`, decoded by the XML convention in [`super::xml`]. The
//! envelope is transport: [`decode`] accepts either the envelope (finding the first
//! body-element child whose text is an XML document) or a bare `<DATA>` document
//! (some replies and test files come that way), and [`encode`] always produces the
//! envelope, with the default operation `gip:xuLyTruyVanMsg` / `in_msg` ([`GipEnvelope`]
//! lets a connector choose another operation, and add WS-Security header blocks).
//!
//! Array paths are relative to the content of `<DATA>` (`BODY/ROW/SOTHUE/TONG_TIEN/ROW_SOTHUE`).
//! Error positions inside the embedded document are lines and columns *of that
//! document*, and the message says so.
//!
//! CDATA cannot contain `]]>`; when the inner text does, it is split across two CDATA
//! sections (`]]]]><![CDATA[>`), which every XML parser joins back.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::{fragment, soap, xml, CodecError, DecodeOptions, EncodeOptions};
use crate::limits;

const FORMAT: &str = "tax-gip";

/// The gateway's namespace for the `gip:` prefix.
pub const GIP_NAMESPACE: &str = "http://gip.request.com/";

/// The document element of the business document.
pub const DATA: &str = "DATA";

/// Which SOAP operation carries the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GipEnvelope<'a> {
    /// The body element, with its prefix (`gip:xuLyTruyVanMsg`).
    pub operation: &'a str,
    /// Its child whose text is the CDATA document (`in_msg`).
    pub part: &'a str,
}

impl Default for GipEnvelope<'_> {
    fn default() -> Self {
        GipEnvelope {
            operation: "gip:xuLyTruyVanMsg",
            part: "in_msg",
        }
    }
}

/// Decodes a GIP SOAP envelope or a bare `<DATA>` document into `{"DATA": …}`.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<Value, CodecError> {
    // Parse once, without array paths (they are relative to DATA, which may be nested
    // in the envelope), then decide by the document element.
    let mut doc = xml::decode_document(FORMAT, bytes, None)?;
    if soap::local_name(&doc.root) == "Envelope" {
        let msg = soap::from_document(doc, &DecodeOptions::default())
            .map_err(|e| e.within(FORMAT, "SOAP envelope"))?;
        from_message(msg, opts)
    } else {
        if let Some(paths) = opts.array_paths {
            xml::apply_array_paths(&mut doc.content, paths, "");
        }
        data_tree(doc)
    }
}

/// Decodes a bare `<DATA>` document.
pub fn decode_data(bytes: &[u8], opts: &DecodeOptions) -> Result<Value, CodecError> {
    let doc = xml::decode_document(FORMAT, bytes, opts.array_paths)?;
    data_tree(doc)
}

/// Unwraps the envelope and decodes the embedded `<DATA>` document.
pub fn unwrap(bytes: &[u8], opts: &DecodeOptions) -> Result<Value, CodecError> {
    let msg = soap::unwrap(bytes).map_err(|e| e.within(FORMAT, "SOAP envelope"))?;
    from_message(msg, opts)
}

fn from_message(msg: soap::SoapMessage, opts: &DecodeOptions) -> Result<Value, CodecError> {
    if let Some(fault) = msg.fault {
        return Err(CodecError::general(
            FORMAT,
            format!(
                "the gateway answered with a SOAP fault: {}: {}",
                fault.code, fault.string
            ),
        ));
    }
    let Some((operation, content)) = msg.body.as_object().and_then(|m| m.iter().next()) else {
        return Err(CodecError::general(
            FORMAT,
            "the SOAP body is empty; expected the GIP operation element",
        ));
    };
    let inner = content.as_object().and_then(|children| {
        children.iter().find_map(|(name, v)| {
            let s = v.as_str()?;
            (!name.starts_with('@') && s.trim_start().starts_with('<')).then_some((name, s))
        })
    });
    let Some((part, inner)) = inner else {
        return Err(CodecError::general(
            FORMAT,
            format!("<{operation}> has no child carrying a <DATA> document (expected e.g. <in_msg><![CDATA[<DATA>…]]></in_msg>)"),
        ));
    };
    let context = format!(
        "in the DATA document inside <{operation}><{part}> (positions are within that document)"
    );
    let doc =
        xml::parse(FORMAT, inner, opts.array_paths).map_err(|e| e.within(FORMAT, &context))?;
    data_tree(doc)
}

/// Encodes `{"DATA": …}` (or the content of DATA with `xml_root: Some("DATA")`) into
/// the default GIP envelope.
pub fn encode(tree: &Value, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    wrap(tree, opts, &GipEnvelope::default(), None)
}

/// Encodes the tree into a GIP envelope with the given operation and header blocks.
/// `opts.namespaces` are declared on the envelope; `gip` is added when the operation
/// uses that prefix and it is not declared.
pub fn wrap(
    tree: &Value,
    opts: &EncodeOptions,
    envelope: &GipEnvelope,
    header: Option<&Value>,
) -> Result<Vec<u8>, CodecError> {
    let inner = encode_data_string(tree, opts)?;
    for name in [envelope.operation, envelope.part] {
        if !xml::is_xml_name(name) {
            return Err(CodecError::general(
                FORMAT,
                format!("{name:?} is not a valid XML element name"),
            ));
        }
    }
    let mut body = String::with_capacity(inner.len() + 128);
    body.push_str(&format!("<{}><{}>", envelope.operation, envelope.part));
    push_cdata(&mut body, &inner);
    body.push_str(&format!("</{}></{}>", envelope.part, envelope.operation));

    let mut namespaces: IndexMap<String, String> = opts.namespaces.cloned().unwrap_or_default();
    if envelope.operation.starts_with("gip:") && !namespaces.contains_key("gip") {
        namespaces.insert("gip".into(), GIP_NAMESPACE.into());
    }
    let bytes = soap::wrap(
        soap::SoapBody::Xml(body.as_bytes()),
        header,
        Some(&namespaces),
    )
    .map_err(|e| e.within(FORMAT, "SOAP envelope"))?;
    if bytes.len() > limits::MAX_BODY_BYTES {
        return Err(CodecError::general(
            FORMAT,
            format!(
                "encoded envelope is {} bytes, over router::limits::MAX_BODY_BYTES",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Encodes a bare `<DATA>` document (no envelope, no XML declaration).
pub fn encode_data(tree: &Value, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    encode_data_string(tree, opts).map(String::into_bytes)
}

fn encode_data_string(tree: &Value, opts: &EncodeOptions) -> Result<String, CodecError> {
    match opts.xml_root {
        None | Some(DATA) => {}
        Some(other) => {
            return Err(CodecError::general(
                FORMAT,
                format!("a tax GIP document's element is <DATA>, not <{other}>; set x-lienthong.xml.root to DATA or leave it out"),
            ))
        }
    }
    if opts.xml_root.is_none()
        && tree
            .as_object()
            .is_none_or(|m| m.len() != 1 || !m.contains_key(DATA))
    {
        return Err(CodecError::general(
            FORMAT,
            "the tree must be {\"DATA\": {...}} (one key, DATA)",
        ));
    }
    let mut out = String::new();
    let inner_opts = EncodeOptions {
        xml_root: opts.xml_root,
        namespaces: None,
    };
    xml::write_document(FORMAT, &mut out, tree, &inner_opts)?;
    Ok(out)
}

fn data_tree(doc: xml::Document) -> Result<Value, CodecError> {
    if doc.root != DATA {
        return Err(CodecError::at(
            FORMAT,
            format!("/{}", doc.root),
            format!("expected the GIP business document <DATA> (or a SOAP envelope carrying it), found <{}>", doc.root),
        ));
    }
    let mut map = Map::new();
    map.insert(DATA.to_string(), doc.content);
    Ok(Value::Object(map))
}

/// Appends `text` as CDATA, splitting at every `]]>`.
fn push_cdata(out: &mut String, text: &str) {
    out.push_str(&fragment::cdata(text));
}

// ---------------------------------------------------------------------------
// The document as text, for the tax connector: the mapping's bytes go out as
// they are, inside a header the connector completes.

/// The GIP header fields, in the gateway's order.
pub const HEADER_FIELDS: [&str; 18] = [
    "VERSION",
    "SENDER_CODE",
    "SENDER_NAME",
    "RECEIVER_CODE",
    "RECEIVER_NAME",
    "TRAN_CODE",
    "MSG_ID",
    "MSG_REFID",
    "ID_LINK",
    "SEND_DATE",
    "ORIGINAL_CODE",
    "ORIGINAL_NAME",
    "ORIGINAL_DATE",
    "ERROR_CODE",
    "ERROR_DESC",
    "SPARE1",
    "SPARE2",
    "SPARE3",
];

/// `<DATA><HEADER>…</HEADER><BODY>…</BODY><SECURITY>…</SECURITY></DATA>`.
pub fn data_document(header: &[(&str, String)], body: &str, security: &str) -> String {
    let mut s = String::from("<DATA><HEADER>");
    for (k, v) in header {
        if v.is_empty() {
            s.push_str(&format!("<{k}/>"));
        } else {
            s.push_str(&format!("<{k}>{}</{k}>", fragment::escape(v)));
        }
    }
    s.push_str("</HEADER><BODY>");
    s.push_str(body);
    s.push_str("</BODY>");
    if security.is_empty() {
        s.push_str("<SECURITY/>");
    } else {
        s.push_str(&format!("<SECURITY>{security}</SECURITY>"));
    }
    s.push_str("</DATA>");
    s
}

/// The GIP SOAP envelope around a ready-made `<DATA>` document (as text):
/// `<gip:{operation} xmlns:gip="{namespace}"><{part}>CDATA</{part}></gip:{operation}>`
/// in a SOAP 1.1 envelope whose header is `security_header` (raw XML, may be empty).
pub fn envelope_text(
    data: &str,
    security_header: &str,
    operation: &str,
    part: &str,
    namespace: &str,
) -> String {
    let mut body = String::with_capacity(data.len() + 128);
    body.push_str(&format!(
        r#"<gip:{operation} xmlns:gip="{}"><{part}>"#,
        fragment::escape(namespace)
    ));
    push_cdata(&mut body, data);
    body.push_str(&format!("</{part}></gip:{operation}>"));
    soap::envelope(security_header, &body)
}

/// What the reply's `<DATA><HEADER>` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyHeader {
    pub error_code: String,
    pub error_desc: String,
    pub msg_id: String,
    /// The whole reply `<DATA>` document.
    pub data: String,
}

/// Finds the reply `<DATA>` in a SOAP body: as CDATA/escaped text of the response
/// element, or as literal XML.
pub fn reply_header(soap_body: &str) -> Result<ReplyHeader, String> {
    let data = match fragment::inner(soap_body, "DATA")? {
        Some(inner) => format!("<DATA>{inner}</DATA>"),
        None => {
            let all = fragment::text(&format!("<x>{soap_body}</x>"), "x")?.unwrap_or_default();
            let all = fragment::strip_declaration(all.trim()).to_string();
            if fragment::root_name(&all).ok().as_deref() != Some("DATA") {
                return Err("the reply carries no GIP <DATA> document".into());
            }
            all
        }
    };
    let header = fragment::inner(&data, "HEADER")?.ok_or("the reply <DATA> has no <HEADER>")?;
    let field = |n: &str| -> Result<String, String> {
        Ok(fragment::text(header, n)?
            .unwrap_or_default()
            .trim()
            .to_string())
    };
    Ok(ReplyHeader {
        error_code: field("ERROR_CODE")?,
        error_desc: field("ERROR_DESC")?,
        msg_id: field("MSG_ID")?,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ArrayPaths;
    use serde_json::json;

    fn data() -> Value {
        json!({"DATA": {
            "HEADER": {"VERSION": "1", "TRAN_CODE": "05011", "MSG_ID": "HUB0001", "ERROR_CODE": ""},
            "BODY": {"ROW": {"TRUYVAN": {"MA_HS": "000.00.32.H19-210708-0032", "SO": "049090000123"},
                             "TYPE": "00109", "NAME": "Truy vấn sổ thuế nhà đất"}},
            "SECURITY": ""
        }})
    }

    #[test]
    fn envelope_round_trip() {
        let bytes = encode(&data(), &EncodeOptions::default()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("xmlns:gip=\"http://gip.request.com/\""),
            "{text}"
        );
        assert!(
            text.contains("<gip:xuLyTruyVanMsg><in_msg><![CDATA[<DATA><HEADER>"),
            "{text}"
        );
        assert_eq!(decode(&bytes, &DecodeOptions::default()).unwrap(), data());
    }

    #[test]
    fn bare_data_and_array_paths() {
        let bytes = encode_data(&data(), &EncodeOptions::default()).unwrap();
        assert!(bytes.starts_with(b"<DATA>"));
        let paths: ArrayPaths = ["BODY/ROW"].into_iter().collect();
        let tree = decode(
            &bytes,
            &DecodeOptions {
                array_paths: Some(&paths),
                file_name: None,
            },
        )
        .unwrap();
        assert!(tree["DATA"]["BODY"]["ROW"].is_array());
        let env = encode(&data(), &EncodeOptions::default()).unwrap();
        let tree = decode(
            &env,
            &DecodeOptions {
                array_paths: Some(&paths),
                file_name: None,
            },
        )
        .unwrap();
        assert!(tree["DATA"]["BODY"]["ROW"].is_array());
    }

    #[test]
    fn cdata_terminator_inside_is_split() {
        let mut out = String::new();
        push_cdata(&mut out, "a]]>b");
        assert_eq!(out, "<![CDATA[a]]]]><![CDATA[>b]]>");
        // And the XML parser joins it back.
        let doc = xml::parse("xml", &format!("<x>{out}</x>"), None).unwrap();
        assert_eq!(doc.content, "a]]>b");
        // Through the whole codec: text with "]]>" survives.
        let tree = json!({"DATA": {"BODY": "x]]>y"}});
        let bytes = encode(&tree, &EncodeOptions::default()).unwrap();
        assert_eq!(decode(&bytes, &DecodeOptions::default()).unwrap(), tree);
    }

    #[test]
    fn errors_inside_the_cdata_say_so() {
        let env = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><gip:x><in_msg><![CDATA[<DATA>
<BODY></BOD></DATA>]]></in_msg></gip:x></s:Body></s:Envelope>"#;
        let e = decode(env, &DecodeOptions::default()).unwrap_err();
        assert_eq!(e.format, "tax-gip");
        assert!(e.message.contains("inside <gip:x><in_msg>"), "{e}");
        assert!(e.position.starts_with("line 2,"), "{e}");
        let e = decode(b"<NOTDATA/>", &DecodeOptions::default()).unwrap_err();
        assert!(
            e.message.contains("expected the GIP business document"),
            "{e}"
        );
        let e = encode(&json!({"X": 1}), &EncodeOptions::default()).unwrap_err();
        assert!(e.message.contains("DATA"), "{e}");
    }
}
