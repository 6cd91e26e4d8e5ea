//! SOAP 1.1 envelopes and faults, shared by the LIS and tax connectors and their
//! simulators.
//!
//! The router's codec owner is writing `router::codec::soap` for *inbound* SOAP; on
//! the outbound side the connector needs only two things, kept here: wrap a body
//! (already XML) and a WS-Security header into an `Envelope`, and read a reply's
//! `Body` or `Fault`. A SOAP 1.1 fault code is `Client` (the sender's fault: do not
//! retry) or `Server` (the receiver's fault: retry later), possibly prefixed
//! (`soapenv:Server`) and dotted (`Client.Authentication`).

use crate::xml;

pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// `<soapenv:Envelope>` with `header` (raw XML, may be empty) and `body` (raw XML).
pub fn envelope(header: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Header>{header}</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

/// A SOAP fault, as found in a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The fault code's local part before any dot: `Client`, `Server`, `VersionMismatch`, `MustUnderstand`.
    pub code: String,
    /// The full fault code as sent (e.g. `soapenv:Client.Authentication`).
    pub raw_code: String,
    pub message: String,
}

/// A reply read: either a fault or the raw inner XML of `Body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Fault(Fault),
    Body(String),
}

/// Parses a SOAP 1.1 reply.
pub fn parse_reply(text: &str) -> Result<Reply, String> {
    let root = xml::root_name(text)?;
    if root != "Envelope" {
        return Err(format!("expected a SOAP Envelope, found <{root}>"));
    }
    let body = xml::inner(text, "Body")?.ok_or("the SOAP Envelope has no Body")?;
    if xml::inner(body, "Fault")?.is_some() {
        let raw_code = xml::text(body, "faultcode")?
            .unwrap_or_default()
            .trim()
            .to_string();
        let message = xml::text(body, "faultstring")?
            .unwrap_or_default()
            .trim()
            .to_string();
        let code = fault_class(&raw_code).to_string();
        return Ok(Reply::Fault(Fault {
            code,
            raw_code,
            message,
        }));
    }
    Ok(Reply::Body(body.to_string()))
}

/// `soapenv:Client.Authentication` → `Client`.
pub fn fault_class(raw: &str) -> &str {
    let local = raw.rsplit(':').next().unwrap_or(raw);
    local.split('.').next().unwrap_or(local)
}

/// A SOAP 1.1 fault envelope (simulators).
pub fn fault_envelope(code: &str, message: &str) -> String {
    envelope(
        "",
        &format!(
            "<soapenv:Fault><faultcode>soapenv:{}</faultcode><faultstring>{}</faultstring></soapenv:Fault>",
            xml::escape(code),
            xml::escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_bodies() {
        let f = fault_envelope("Client.Authentication", "sai mật khẩu");
        match parse_reply(&f).unwrap() {
            Reply::Fault(fault) => {
                assert_eq!(fault.code, "Client");
                assert_eq!(fault.raw_code, "soapenv:Client.Authentication");
                assert_eq!(fault.message, "sai mật khẩu");
            }
            other => panic!("{other:?}"),
        }
        let ok = envelope("", "<r:Ok xmlns:r=\"x\"><Ma>1</Ma></r:Ok>");
        assert_eq!(
            parse_reply(&ok).unwrap(),
            Reply::Body("<r:Ok xmlns:r=\"x\"><Ma>1</Ma></r:Ok>".into())
        );
        assert!(parse_reply("<html/>").is_err());
    }
}
