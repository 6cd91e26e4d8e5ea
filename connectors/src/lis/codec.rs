//! LIS wire format: the mapped XML inside a SOAP 1.1 envelope.

use lienthong_core::codec::{fragment, soap};

use crate::wssec;

/// The envelope to send and its redacted copy for the trail.
pub fn envelope(body: &[u8], security_header: &str) -> Result<(String, String), String> {
    let text =
        std::str::from_utf8(body).map_err(|e| format!("the mapped body is not UTF-8: {e}"))?;
    let inner = fragment::strip_declaration(text);
    fragment::root_name(inner).map_err(|e| format!("the mapped body is not XML: {e}"))?;
    fragment::check_well_formed(inner)
        .map_err(|e| format!("the mapped body is not well-formed XML: {e}"))?;
    let env = soap::envelope(security_header, inner);
    let redacted = wssec::redact(&env);
    Ok((env, redacted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_verbatim() {
        let body = "<?xml version=\"1.0\"?>\n<DangKyHoSo xmlns=\"http://lis\"><MaHoSo>1</MaHoSo><Ten>Nguyễn</Ten></DangKyHoSo>";
        let (env, red) = envelope(
            body.as_bytes(),
            "<wsse:Security><wsse:Password>d1g</wsse:Password></wsse:Security>",
        )
        .unwrap();
        assert!(env.contains("<soapenv:Body><DangKyHoSo xmlns=\"http://lis\"><MaHoSo>1</MaHoSo><Ten>Nguyễn</Ten></DangKyHoSo></soapenv:Body>"));
        assert!(!red.contains("d1g"));
        assert!(envelope(b"{\"json\":1}", "").is_err());
        assert!(envelope(b"<a><b></a>", "").is_err());
    }
}
