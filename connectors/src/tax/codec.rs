//! The GIP business document and its SOAP envelope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;

use super::TaxConfig;
use crate::{soap, wssec, xml};

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

/// The pieces of a business document handed over by the mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    /// Header fields the mapping filled (non-empty only).
    pub header: HashMap<String, String>,
    /// Inner XML of `<BODY>`.
    pub body: String,
    /// Inner XML of `<SECURITY>`.
    pub security: String,
}

/// Splits what the hub handed over into header fields, body and security.
pub fn parts(mapped: &str, config: &TaxConfig, message_type: &str) -> Result<Parts, String> {
    let doc = xml::strip_declaration(mapped);
    match xml::root_name(doc)?.as_str() {
        "Envelope" => {
            let inner = xml::text(doc, &config.part)?.ok_or_else(|| {
                format!(
                    "the SOAP envelope has no <{}> carrying the GIP document",
                    config.part
                )
            })?;
            parts(&inner, config, message_type)
        }
        "DATA" => {
            let header_xml = xml::inner(doc, "HEADER")?.unwrap_or_default();
            let mut header = HashMap::new();
            for f in HEADER_FIELDS {
                if let Some(v) = xml::text(header_xml, f)? {
                    if !v.trim().is_empty() {
                        header.insert(f.to_string(), v.trim().to_string());
                    }
                }
            }
            let body = xml::inner(doc, "BODY")?
                .ok_or("the <DATA> document has no <BODY>")?
                .to_string();
            let security = xml::inner(doc, "SECURITY")?.unwrap_or_default().to_string();
            Ok(Parts {
                header,
                body,
                security,
            })
        }
        "BODY" => Ok(Parts {
            body: xml::inner(doc, "BODY")?.unwrap_or_default().to_string(),
            ..Parts::default()
        }),
        "ROW" => {
            let row = xml::inner(doc, "ROW")?.unwrap_or_default();
            let mut body = format!("<ROW>{row}");
            if xml::text(row, "TYPE")?.is_none() {
                let t = config.types.get(message_type).ok_or_else(|| {
                    format!("no GIP TYPE for message type `{message_type}`: add it under connectors.tax.types, or put <TYPE> in the mapping")
                })?;
                body.push_str(&format!(
                    "<TYPE>{}</TYPE><NAME>{}</NAME>",
                    xml::escape(&t.code),
                    xml::escape(&t.name)
                ));
            }
            body.push_str("</ROW>");
            Ok(Parts {
                body,
                ..Parts::default()
            })
        }
        other => Err(format!(
            "expected a GIP <DATA>, <BODY> or <ROW> (or its SOAP envelope), found <{other}>"
        )),
    }
}

/// Unique MSG_IDs: sender code + `yyyyMMdd` + a 9-digit sequence.
pub struct MsgIds {
    next: AtomicU64,
}

impl Default for MsgIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MsgIds {
    /// Seeds the sequence from the local time of day (×10), so ids after a restart
    /// are above those of the previous run on the same day unless it averaged more
    /// than ten messages per millisecond.
    pub fn new() -> Self {
        let now = Utc::now().with_timezone(&Ho_Chi_Minh);
        let ms = u64::from(now.num_seconds_from_midnight()) * 1000
            + u64::from(now.nanosecond() / 1_000_000);
        MsgIds {
            next: AtomicU64::new(ms * 10),
        }
    }

    pub fn next(&self, sender: &str, now: DateTime<Utc>) -> String {
        let seq = self.next.fetch_add(1, Ordering::Relaxed) % 1_000_000_000;
        format!(
            "{sender}{}{seq:09}",
            now.with_timezone(&Ho_Chi_Minh).format("%Y%m%d")
        )
    }
}

/// The header, every field in order, mapped values kept, the rest filled by rule.
pub fn header(
    given: &HashMap<String, String>,
    config: &TaxConfig,
    message_type: &str,
    msg_id: impl FnOnce() -> String,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let today = now
        .with_timezone(&Ho_Chi_Minh)
        .format("%d-%m-%Y")
        .to_string();
    let mut msg_id = Some(msg_id);
    HEADER_FIELDS
        .iter()
        .map(|f| {
            let value = match given.get(*f) {
                Some(v) => v.clone(),
                None => match *f {
                    "VERSION" => "1".into(),
                    "SENDER_CODE" | "ORIGINAL_CODE" => config.sender_code.clone(),
                    "SENDER_NAME" | "ORIGINAL_NAME" => config.sender_name.clone(),
                    "RECEIVER_CODE" => config.receiver_code.clone(),
                    "RECEIVER_NAME" => config.receiver_name.clone(),
                    "TRAN_CODE" => config
                        .tran_codes
                        .get(message_type)
                        .cloned()
                        .unwrap_or_else(|| config.tran_code.clone()),
                    "MSG_ID" => msg_id.take().map(|f| f()).unwrap_or_default(),
                    "SEND_DATE" | "ORIGINAL_DATE" => today.clone(),
                    _ => String::new(),
                },
            };
            (*f, value)
        })
        .collect()
}

/// `<DATA><HEADER>…</HEADER><BODY>…</BODY><SECURITY>…</SECURITY></DATA>`.
pub fn data_document(header: &[(&str, String)], body: &str, security: &str) -> String {
    let mut s = String::from("<DATA><HEADER>");
    for (k, v) in header {
        if v.is_empty() {
            s.push_str(&format!("<{k}/>"));
        } else {
            s.push_str(&format!("<{k}>{}</{k}>", xml::escape(v)));
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

/// The SOAP envelope carrying the document as CDATA, and its redacted copy.
pub fn envelope(data: &str, security_header: &str, config: &TaxConfig) -> (String, String) {
    let body = format!(
        r#"<gip:{op} xmlns:gip="{ns}"><{part}>{cdata}</{part}></gip:{op}>"#,
        op = config.operation,
        ns = xml::escape(&config.namespace),
        part = config.part,
        cdata = xml::cdata(data),
    );
    let env = soap::envelope(security_header, &body);
    let redacted = wssec::redact(&env);
    (env, redacted)
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
    let data = match xml::inner(soap_body, "DATA")? {
        Some(inner) => format!("<DATA>{inner}</DATA>"),
        None => {
            let all = xml::text(&format!("<x>{soap_body}</x>"), "x")?.unwrap_or_default();
            let all = xml::strip_declaration(all.trim()).to_string();
            if xml::root_name(&all).ok().as_deref() != Some("DATA") {
                return Err("the reply carries no GIP <DATA> document".into());
            }
            all
        }
    };
    let header = xml::inner(&data, "HEADER")?.ok_or("the reply <DATA> has no <HEADER>")?;
    let field = |n: &str| -> Result<String, String> {
        Ok(xml::text(header, n)?.unwrap_or_default().trim().to_string())
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

    fn cfg() -> TaxConfig {
        TaxConfig::new("http://x", "u", "STNMT_QNAM", "Sở TN&MT Quảng Nam")
    }

    const SAMPLE: &str = include_str!("../../tests/data/tax.query-land-tax-ledger.request.xml");

    #[test]
    fn sample_envelope_keeps_the_mapped_header() {
        let p = parts(SAMPLE, &cfg(), "ledger.query").unwrap();
        assert_eq!(p.header["MSG_ID"], "PARTNER20220920000001");
        assert_eq!(p.header["TRAN_CODE"], "05011");
        assert!(p.body.contains("<TYPE>00109</TYPE>"));
        assert!(!p.header.contains_key("ERROR_CODE"));
    }

    #[test]
    fn row_gets_type_and_header_gets_rules() {
        let c = cfg();
        let p = parts(
            "<ROW><TRUYVAN><MA_HS>H47-1</MA_HS></TRUYVAN></ROW>",
            &c,
            "ledger.query",
        )
        .unwrap();
        assert_eq!(p.body, "<ROW><TRUYVAN><MA_HS>H47-1</MA_HS></TRUYVAN><TYPE>00109</TYPE><NAME>Truy vấn sổ thuế nhà đất</NAME></ROW>");
        assert!(parts("<ROW><X/></ROW>", &c, "unknown.type")
            .unwrap_err()
            .contains("connectors.tax.types"));
        let now = DateTime::parse_from_rfc3339("2022-09-19T20:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let h = header(
            &p.header,
            &c,
            "ledger.query",
            || MsgIds::new().next("STNMT_QNAM", now),
            now,
        );
        let get = |k: &str| h.iter().find(|(f, _)| *f == k).unwrap().1.clone();
        assert_eq!(
            get("SEND_DATE"),
            "20-09-2022",
            "Asia/Ho_Chi_Minh date, not UTC"
        );
        assert!(
            get("MSG_ID").starts_with("STNMT_QNAM20220920")
                && get("MSG_ID").len() == "STNMT_QNAM20220920".len() + 9
        );
        assert_eq!(get("RECEIVER_CODE"), "GIP");
        let doc = data_document(&h, &p.body, "");
        assert!(doc.starts_with("<DATA><HEADER><VERSION>1</VERSION><SENDER_CODE>STNMT_QNAM</SENDER_CODE><SENDER_NAME>Sở TN&amp;MT Quảng Nam</SENDER_NAME>"));
        assert!(doc.ends_with("</BODY><SECURITY/></DATA>"));
        let (env, _) = envelope(&doc, "", &c);
        let back = xml::text(&env, "in_msg").unwrap().unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn msg_ids_are_unique() {
        let ids = MsgIds::new();
        let now = Utc::now();
        let a = ids.next("S", now);
        let b = ids.next("S", now);
        assert_ne!(a, b);
    }

    #[test]
    fn reply_in_cdata_or_literal() {
        let data = "<DATA><HEADER><MSG_ID>GIP1</MSG_ID><ERROR_CODE>05</ERROR_CODE><ERROR_DESC>Sai</ERROR_DESC></HEADER><BODY/></DATA>";
        let cd = format!(
            "<r:resp xmlns:r=\"g\"><return>{}</return></r:resp>",
            xml::cdata(data)
        );
        let h = reply_header(&cd).unwrap();
        assert_eq!((h.error_code.as_str(), h.msg_id.as_str()), ("05", "GIP1"));
        let lit = format!("<r:resp xmlns:r=\"g\"><return>{data}</return></r:resp>");
        assert_eq!(reply_header(&lit).unwrap().error_desc, "Sai");
        assert!(reply_header("<r:resp/>").is_err());
    }
}
