//! Tax GIP gateway simulator.
//!
//! Checks the SOAP envelope and WS-Security (as LIS), unpacks the `<in_msg>` CDATA,
//! checks the GIP `HEADER` (VERSION, SENDER_CODE, RECEIVER_CODE, TRAN_CODE, MSG_ID,
//! SEND_DATE `dd-MM-yyyy`) and that `BODY/ROW` has a `TYPE`; a bad document gets a
//! reply with `ERROR_CODE` `01` (assumed code) and the reason in `ERROR_DESC`. A
//! repeated `MSG_ID` is counted as a duplicate and acknowledged without re-applying.
//! With the hub's schemas plugged in ([`SimCore::use_schemas`](super::SimCore::use_schemas)),
//! the business part of `<DATA>` (`HEADER` and `BODY`, not the transport's
//! `SECURITY` block) is validated too, and refused the same way.
//! A `TYPE 00109` ledger query is answered with a `TYPE 00110` reply built from the
//! notices registered with [`TaxSim::add_notice`]; [`TaxSim::payment_notice`] produces
//! the same `00110` document for the scenario tests to feed the hub.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use chrono_tz::Asia::Ho_Chi_Minh;

use super::{serve, Fault, SimCore, SimServer};
use connectors::error::ConnectorError;
use connectors::secret::Secret;
use connectors::wssec::Verifier;
use lienthong_core::codec::tax_gip::{data_document, HEADER_FIELDS};
use lienthong_core::codec::{fragment, soap};

pub const PATH: &str = "/gip/ws";

/// Simulator settings.
#[derive(Clone)]
pub struct TaxSimConfig {
    pub username: String,
    pub password: Secret,
    /// GIP TYPE → hub message type, to pick the validator (`SimCore::set_validator`).
    pub types: BTreeMap<String, String>,
}

impl TaxSimConfig {
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        TaxSimConfig {
            username: username.into(),
            password,
            types: BTreeMap::from([
                ("00101".to_string(), "transfer-form".to_string()),
                ("00109".to_string(), "ledger.query".to_string()),
                ("00113".to_string(), "payment-confirmation".to_string()),
            ]),
        }
    }
}

/// One payment notice (thông báo nộp tiền) of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxNotice {
    pub ma_hs: String,
    /// Citizen ID (SO).
    pub so: String,
    pub ma_so_thue: String,
    pub ten_nnt: String,
    pub so_quyet_dinh: String,
    pub ma_tmuc: String,
    pub ten_tmuc: String,
    /// VND, as decimal text.
    pub so_tien: String,
    /// `yyyy-MM-dd HH:mm:ss.S`
    pub han_nop: String,
}

struct State_ {
    types: BTreeMap<String, String>,
    core: Arc<SimCore>,
    verifier: Verifier,
    ledger: Mutex<Vec<TaxNotice>>,
    seq: AtomicU64,
    documents: Mutex<Vec<String>>,
}

/// A running tax simulator.
pub struct TaxSim {
    server: SimServer,
    state: Arc<State_>,
}

impl TaxSim {
    pub async fn start(config: TaxSimConfig) -> Result<Self, ConnectorError> {
        let core = SimCore::new("tax", &[]);
        let verifier = Verifier::new(
            config.username.clone(),
            config.password.clone(),
            Duration::from_secs(300),
        );
        let state = Arc::new(State_ {
            types: config.types.clone(),
            core: Arc::clone(&core),
            verifier,
            ledger: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            documents: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(PATH, post(handle))
            .with_state(Arc::clone(&state));
        Ok(TaxSim {
            server: serve(app, core).await?,
            state,
        })
    }
    pub fn url(&self) -> String {
        format!("{}{PATH}", self.server.url())
    }
    pub fn core(&self) -> &Arc<SimCore> {
        self.server.core()
    }
    /// Registers a payment notice in the simulated ledger.
    pub fn add_notice(&self, notice: TaxNotice) {
        self.state
            .ledger
            .lock()
            .expect("ledger poisoned")
            .push(notice);
    }
    /// The accepted GIP `<DATA>` documents, in order (duplicates excluded).
    pub fn documents(&self) -> Vec<String> {
        self.state
            .documents
            .lock()
            .expect("documents poisoned")
            .clone()
    }
    /// A `TYPE 00110` payment-notice document for `ma_hs` (sent by GIP to `receiver`),
    /// or `None` when the ledger has nothing for it.
    pub fn payment_notice(
        &self,
        ma_hs: &str,
        receiver_code: &str,
        receiver_name: &str,
    ) -> Option<String> {
        let notices: Vec<TaxNotice> = self
            .state
            .ledger
            .lock()
            .expect("ledger poisoned")
            .iter()
            .filter(|n| n.ma_hs == ma_hs)
            .cloned()
            .collect();
        if notices.is_empty() {
            return None;
        }
        Some(notice_document(
            &self.state,
            &notices,
            receiver_code,
            receiver_name,
            "",
        ))
    }
    pub async fn shutdown(self) {
        self.server.shutdown().await
    }
}

fn gip_header(
    state: &State_,
    receiver_code: &str,
    receiver_name: &str,
    refid: &str,
    error: (&str, &str),
) -> Vec<(&'static str, String)> {
    let today = Utc::now().with_timezone(&Ho_Chi_Minh);
    let date = today.format("%d-%m-%Y").to_string();
    let msg_id = format!(
        "GIP{}{:07}",
        today.format("%Y%m%d"),
        state.seq.fetch_add(1, Ordering::Relaxed) + 1
    );
    HEADER_FIELDS
        .iter()
        .map(|f| {
            let v = match *f {
                "VERSION" => "1".to_string(),
                "SENDER_CODE" | "ORIGINAL_CODE" => "GIP".into(),
                "SENDER_NAME" | "ORIGINAL_NAME" => "Hệ Thống GIP".into(),
                "RECEIVER_CODE" => receiver_code.into(),
                "RECEIVER_NAME" => receiver_name.into(),
                "TRAN_CODE" => "05011".into(),
                "MSG_ID" => msg_id.clone(),
                "MSG_REFID" => refid.into(),
                "SEND_DATE" | "ORIGINAL_DATE" => date.clone(),
                "ERROR_CODE" => error.0.into(),
                "ERROR_DESC" => error.1.into(),
                _ => String::new(),
            };
            (*f, v)
        })
        .collect()
}

fn notice_document(
    state: &State_,
    notices: &[TaxNotice],
    receiver_code: &str,
    receiver_name: &str,
    refid: &str,
) -> String {
    let e = fragment::escape;
    let first = &notices[0];
    let total: u128 = notices
        .iter()
        .filter_map(|n| n.so_tien.parse::<u128>().ok())
        .sum();
    let mut rows = String::new();
    for n in notices {
        rows.push_str(&format!(
            "<ROW_SOTHUE><MA_HS>{}</MA_HS><MA_SO_THUE>{}</MA_SO_THUE><TEN_NNT>{}</TEN_NNT><SO>{}</SO><SO_QUYET_DINH>{}</SO_QUYET_DINH><NGAY_QUYET_DINH>{}</NGAY_QUYET_DINH><MA_CHUONG>757</MA_CHUONG><MA_TMUC>{}</MA_TMUC><TEN_TMUC>{}</TEN_TMUC><LOAI_TK_NSNN>7111</LOAI_TK_NSNN><SO_CON_PHAI_NOP>{}</SO_CON_PHAI_NOP><HAN_NOP>{}</HAN_NOP></ROW_SOTHUE>",
            e(&n.ma_hs), e(&n.ma_so_thue), e(&n.ten_nnt), e(&n.so), e(&n.so_quyet_dinh),
            Utc::now().with_timezone(&Ho_Chi_Minh).format("%Y-%m-%d %H:%M:%S.0"),
            e(&n.ma_tmuc), e(&n.ten_tmuc), e(&n.so_tien), e(&n.han_nop)
        ));
    }
    let body = format!(
        "<ROW><TYPE>00110</TYPE><NAME>Trả lời truy vấn sổ thuế nhà đất</NAME><SOTHUE><TRANGTHAI>01</TRANGTHAI><MOTA_TRANGTHAI>Tồn tại mã hồ sơ và số CMND/CCCD và có còn nợ thuế đất</MOTA_TRANGTHAI><TONG_TIEN><MA_SO_THUE>{}</MA_SO_THUE><TT_NNT>{total}</TT_NNT>{rows}</TONG_TIEN></SOTHUE></ROW>",
        e(&first.ma_so_thue)
    );
    data_document(
        &gip_header(state, receiver_code, receiver_name, refid, ("", "")),
        &body,
        "",
    )
}

/// The business document a validator judges: `<DATA>` with its `HEADER` and `BODY`
/// only. `SECURITY` (the XMLDSig block, empty while signing is not implemented) is
/// produced and checked by the GIP transport on both sides, like the SOAP envelope
/// and WS-Security header around it; the hub's `tax/*` schemas describe the
/// business message and are closed, so they are given that part.
fn business_document(data: &str) -> String {
    let part = |name: &str| {
        fragment::inner(data, name)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    format!(
        "<DATA><HEADER>{}</HEADER><BODY>{}</BODY></DATA>",
        part("HEADER"),
        part("BODY")
    )
}

fn soap_reply(data: &str) -> Response {
    let body = format!(
        r#"<gip:xuLyTruyVanMsgResponse xmlns:gip="http://gip.request.com/"><return>{}</return></gip:xuLyTruyVanMsgResponse>"#,
        fragment::cdata(data)
    );
    (
        [("content-type", "text/xml; charset=utf-8")],
        soap::envelope("", &body),
    )
        .into_response()
}

fn fault(code: &str, message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "text/xml; charset=utf-8")],
        soap::fault_envelope(code, message),
    )
        .into_response()
}

/// Header and body checks; returns (MSG_ID, SENDER_CODE, TYPE) or the problems.
fn check_document(data: &str) -> Result<(String, String, String), Vec<String>> {
    let mut errs = Vec::new();
    if fragment::root_name(data).ok().as_deref() != Some("DATA") {
        return Err(vec!["in_msg does not hold a <DATA> document".into()]);
    }
    let header = fragment::inner(data, "HEADER")
        .ok()
        .flatten()
        .unwrap_or_default();
    let field = |n: &str| {
        fragment::text(header, n)
            .ok()
            .flatten()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    for f in [
        "VERSION",
        "SENDER_CODE",
        "RECEIVER_CODE",
        "TRAN_CODE",
        "MSG_ID",
        "SEND_DATE",
    ] {
        if field(f).is_empty() {
            errs.push(format!("HEADER/{f}: required"));
        }
    }
    let send_date = field("SEND_DATE");
    if !send_date.is_empty() && chrono::NaiveDate::parse_from_str(&send_date, "%d-%m-%Y").is_err() {
        errs.push(format!("HEADER/SEND_DATE: {send_date:?} is not dd-MM-yyyy"));
    }
    let body = fragment::inner(data, "BODY")
        .ok()
        .flatten()
        .unwrap_or_default();
    let ty = fragment::text(body, "TYPE")
        .ok()
        .flatten()
        .unwrap_or_default()
        .trim()
        .to_string();
    if ty.is_empty() {
        errs.push("BODY/ROW/TYPE: required".into());
    }
    if errs.is_empty() {
        Ok((field("MSG_ID"), field("SENDER_CODE"), ty))
    } else {
        Err(errs)
    }
}

async fn handle(State(s): State<Arc<State_>>, headers: HeaderMap, body: Bytes) -> Response {
    let core = &s.core;
    let text = String::from_utf8_lossy(&body).into_owned();
    let data = fragment::text(&text, "in_msg")
        .ok()
        .flatten()
        .unwrap_or_default();
    let ty = fragment::inner(&data, "BODY")
        .ok()
        .flatten()
        .and_then(|b| fragment::text(b, "TYPE").ok().flatten())
        .unwrap_or_default();
    let message_type = s
        .types
        .get(ty.trim())
        .cloned()
        .unwrap_or_else(|| ty.trim().to_string());
    let record = |outcome: String, dup: bool| {
        core.record(PATH, &message_type, &headers, &body, dup, outcome)
    };
    let injected = match core.apply_fault().await {
        Ok(f) => f,
        Err(resp) => {
            record(format!("fault: HTTP {}", resp.status().as_u16()), false);
            return resp;
        }
    };
    if !matches!(soap::parse_reply(&text), Ok(soap::Reply::Body(_))) {
        record("rejected: not a SOAP envelope".into(), false);
        return fault("Client", "Request is not a SOAP 1.1 envelope");
    }
    if let Err(e) = s.verifier.verify(&text, Utc::now()) {
        record(format!("rejected: WS-Security: {e}"), false);
        return fault(
            "Client.Authentication",
            &format!("The security token could not be authenticated: {e}"),
        );
    }
    if data.is_empty() {
        record("rejected: no in_msg".into(), false);
        return fault("Client", "xuLyTruyVanMsg/in_msg is missing or empty");
    }
    let (msg_id, sender, ty) = match check_document(&data) {
        Ok(t) => t,
        Err(errs) => {
            record(format!("rejected: {}", errs.join("; ")), false);
            let sender = fragment::text(&data, "SENDER_CODE")
                .ok()
                .flatten()
                .unwrap_or_default();
            return soap_reply(&data_document(
                &gip_header(&s, &sender, "", "", ("01", &errs.join("; "))),
                "",
                "",
            ));
        }
    };
    match injected {
        Some(Fault::SoapFault { code, message }) => {
            record(format!("fault: SOAP {code}"), false);
            return fault(
                &code,
                if message.is_empty() {
                    "simulated fault"
                } else {
                    &message
                },
            );
        }
        Some(Fault::BusinessError { code, message }) => {
            record(format!("fault: ERROR_CODE {code}"), false);
            return soap_reply(&data_document(
                &gip_header(&s, &sender, "", &msg_id, (&code, &message)),
                "",
                "",
            ));
        }
        _ => {}
    }
    if let Some(Err(errs)) = core.validate(&message_type, business_document(&data).as_bytes()) {
        record(format!("rejected: {}", errs.join("; ")), false);
        return soap_reply(&data_document(
            &gip_header(&s, &sender, "", &msg_id, ("01", &errs.join("; "))),
            "",
            "",
        ));
    }
    let duplicate = core.seen_before(Some(&format!("MSG_ID:{msg_id}")));
    if !duplicate {
        s.documents
            .lock()
            .expect("documents poisoned")
            .push(data.clone());
    }
    record("accepted".into(), duplicate);
    if ty == "00109" {
        let ma_hs = fragment::text(&data, "MA_HS")
            .ok()
            .flatten()
            .unwrap_or_default();
        let notices: Vec<TaxNotice> = s
            .ledger
            .lock()
            .expect("ledger poisoned")
            .iter()
            .filter(|n| n.ma_hs == ma_hs.trim())
            .cloned()
            .collect();
        if notices.is_empty() {
            let body = "<ROW><TYPE>00110</TYPE><NAME>Trả lời truy vấn sổ thuế nhà đất</NAME><SOTHUE><TRANGTHAI>02</TRANGTHAI><MOTA_TRANGTHAI>Không tồn tại mã hồ sơ</MOTA_TRANGTHAI></SOTHUE></ROW>";
            return soap_reply(&data_document(
                &gip_header(&s, &sender, "", &msg_id, ("", "")),
                body,
                "",
            ));
        }
        return soap_reply(&notice_document(&s, &notices, &sender, "", &msg_id));
    }
    soap_reply(&data_document(
        &gip_header(&s, &sender, "", &msg_id, ("", "")),
        "",
        "",
    ))
}
