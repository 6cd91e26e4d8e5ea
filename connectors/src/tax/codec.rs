//! The tax connector's side of the GIP document: what the mapping handed over
//! (split into header, body and security), the header's defaults from the
//! configuration, and the MSG_ID sequence. The document and its envelope
//! themselves are written once, in `lienthong_core::codec::tax_gip`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;

pub use lienthong_core::codec::tax_gip::{data_document, reply_header, ReplyHeader, HEADER_FIELDS};
use lienthong_core::codec::{fragment, tax_gip};

use super::TaxConfig;
use crate::wssec;

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
    let doc = fragment::strip_declaration(mapped);
    match fragment::root_name(doc)?.as_str() {
        "Envelope" => {
            let inner = fragment::text(doc, &config.part)?.ok_or_else(|| {
                format!(
                    "the SOAP envelope has no <{}> carrying the GIP document",
                    config.part
                )
            })?;
            parts(&inner, config, message_type)
        }
        "DATA" => {
            let header_xml = fragment::inner(doc, "HEADER")?.unwrap_or_default();
            let mut header = HashMap::new();
            for f in HEADER_FIELDS {
                if let Some(v) = fragment::text(header_xml, f)? {
                    if !v.trim().is_empty() {
                        header.insert(f.to_string(), v.trim().to_string());
                    }
                }
            }
            let body = fragment::inner(doc, "BODY")?
                .ok_or("the <DATA> document has no <BODY>")?
                .to_string();
            let security = fragment::inner(doc, "SECURITY")?
                .unwrap_or_default()
                .to_string();
            Ok(Parts {
                header,
                body,
                security,
            })
        }
        "BODY" => Ok(Parts {
            body: fragment::inner(doc, "BODY")?
                .unwrap_or_default()
                .to_string(),
            ..Parts::default()
        }),
        "ROW" => {
            let row = fragment::inner(doc, "ROW")?.unwrap_or_default();
            let mut body = format!("<ROW>{row}");
            if fragment::text(row, "TYPE")?.is_none() {
                let t = config.types.get(message_type).ok_or_else(|| {
                    format!("no GIP TYPE for message type `{message_type}`: add it under connectors.tax.types, or put <TYPE> in the mapping")
                })?;
                body.push_str(&format!(
                    "<TYPE>{}</TYPE><NAME>{}</NAME>",
                    fragment::escape(&t.code),
                    fragment::escape(&t.name)
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

/// The SOAP envelope carrying the document as CDATA, and its redacted copy.
pub fn envelope(data: &str, security_header: &str, config: &TaxConfig) -> (String, String) {
    let env = tax_gip::envelope_text(
        data,
        security_header,
        &config.operation,
        &config.part,
        &config.namespace,
    );
    let redacted = wssec::redact(&env);
    (env, redacted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lienthong_core::codec::tax_gip::{data_document, reply_header};

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
        let back = fragment::text(&env, "in_msg").unwrap().unwrap();
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
            fragment::cdata(data)
        );
        let h = reply_header(&cd).unwrap();
        assert_eq!((h.error_code.as_str(), h.msg_id.as_str()), ("05", "GIP1"));
        let lit = format!("<r:resp xmlns:r=\"g\"><return>{data}</return></r:resp>");
        assert_eq!(reply_header(&lit).unwrap().error_desc, "Sai");
        assert!(reply_header("<r:resp/>").is_err());
    }
}
