//! Which LGSP replies are worth retrying.
//!
//! The WSO2 gateway itself reports throttling (`900800` message throttled out,
//! `900802`-`900806` resource/application/subscription/custom throttling) and
//! back-end trouble (`101503` connection failed, `101504` connection timed out,
//! `101505` connection closed, `101507`/`101508` back-end timeouts): those are
//! transient. Codes from the API behind the gateway are business decisions
//! ("dossier unknown", "invalid status"): permanent, unless the operator lists them
//! in `transient_error_codes`.

use lienthong_core::transport::FailureClass;

use super::codec::LgspReply;

/// WSO2 API Manager gateway codes that mean "try later".
pub const GATEWAY_TRANSIENT: &[&str] = &[
    "900800", "900802", "900803", "900804", "900805", "900806", "101503", "101504", "101505",
    "101507", "101508",
];

/// `None` when the reply is a success, else the class, a reason and a detail.
pub fn classify(
    reply: &LgspReply,
    extra_transient: &[String],
) -> Option<(FailureClass, String, String)> {
    let code = reply.error_code.as_deref().unwrap_or("");
    let ok_status = reply.status.as_deref() == Some("1");
    let ok_code = matches!(code, "0" | "00");
    if ok_code || (ok_status && code.is_empty()) {
        return None;
    }
    let transient = GATEWAY_TRANSIENT.contains(&code) || extra_transient.iter().any(|c| c == code);
    let class = if transient {
        FailureClass::Transient
    } else {
        FailureClass::Permanent
    };
    let what = if transient {
        "transient: worth retrying"
    } else {
        "the province portal rejected the message; fix the data or the mapping and replay"
    };
    Some((
        class,
        format!("lgsp-error:{}", if code.is_empty() { "none" } else { code }),
        format!(
            "LGSP status {:?}, errorCode {code:?}: {} ({what})",
            reply.status, reply.error_desc
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn r(status: &str, code: &str) -> LgspReply {
        LgspReply {
            status: Some(status.into()),
            error_code: if code.is_empty() {
                None
            } else {
                Some(code.into())
            },
            error_desc: "mô tả".into(),
            data: Value::Null,
        }
    }

    #[test]
    fn codes() {
        assert!(classify(&r("1", "0"), &[]).is_none());
        assert!(classify(&r("1", ""), &[]).is_none());
        assert_eq!(
            classify(&r("0", "900800"), &[]).unwrap().0,
            FailureClass::Transient
        );
        assert_eq!(
            classify(&r("0", "HOSO_KHONG_TON_TAI"), &[]).unwrap().0,
            FailureClass::Permanent
        );
        assert_eq!(
            classify(&r("0", "E42"), &["E42".into()]).unwrap().0,
            FailureClass::Transient
        );
        assert_eq!(classify(&r("0", ""), &[]).unwrap().1, "lgsp-error:none");
    }
}
