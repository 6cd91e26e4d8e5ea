//! DVCQG wire format: adding the session to a mapped body, reading `error_code`.

use serde_json::{Map, Value};

/// The body to send: `{session, madonvi, ...mapped}`, and the same with the session
/// replaced by `***` for the trail. `Err` when the mapped body is not a JSON object
/// with a `service`.
pub fn with_session(
    body: &[u8],
    session: &str,
    default_madonvi: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mapped: Value =
        serde_json::from_slice(body).map_err(|e| format!("the mapped body is not JSON: {e}"))?;
    let Value::Object(mapped) = mapped else {
        return Err("the mapped body is not a JSON object".into());
    };
    if !mapped.get("service").is_some_and(Value::is_string) {
        return Err("the mapped body has no `service` (DongBoHoSoMC, CapNhatTienDoHoSoMC...); fix the mapping".into());
    }
    let build = |s: &str| {
        let mut out = Map::new();
        out.insert("session".into(), Value::String(s.into()));
        if !mapped.contains_key("madonvi") {
            if let Some(m) = default_madonvi {
                out.insert("madonvi".into(), Value::String(m.into()));
            }
        }
        for (k, v) in &mapped {
            if k != "session" {
                out.insert(k.clone(), v.clone());
            }
        }
        serde_json::to_vec(&Value::Object(out)).expect("a JSON value serialises")
    };
    Ok((build(session), build("***")))
}

/// `error_code` as text (`0` → `"0"`), `None` when absent.
pub fn error_code(reply: &Value) -> Option<String> {
    match reply.get("error_code")? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether an `error_code` means success.
pub fn is_success(code: &str) -> bool {
    matches!(code, "00" | "0")
}

/// The portal's message (`message` or `error_message`).
pub fn message(reply: &Value) -> String {
    reply
        .get("message")
        .or_else(|| reply.get("error_message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_goes_first_and_is_redacted() {
        let body =
            br#"{"service":"CapNhatTienDoHoSoMC","data":[{"MaHoSo":"000.00.32.H47-220915-0001"}]}"#;
        let (real, red) = with_session(body, "S3SS10N", Some("000.00.32.H47")).unwrap();
        let real = String::from_utf8(real).unwrap();
        assert!(
            real.starts_with(r#"{"session":"S3SS10N","madonvi":"000.00.32.H47","service""#),
            "{real}"
        );
        let red = String::from_utf8(red).unwrap();
        assert!(!red.contains("S3SS10N") && red.contains(r#""session":"***""#));
        assert!(with_session(b"[]", "s", None).is_err());
        assert!(with_session(br#"{"data":[]}"#, "s", None)
            .unwrap_err()
            .contains("service"));
    }

    #[test]
    fn codes() {
        assert_eq!(
            error_code(&serde_json::json!({"error_code": 0})).as_deref(),
            Some("0")
        );
        assert!(is_success("00") && is_success("0") && !is_success("01"));
    }
}
