//! LGSP wire format: the request body is the mapped JSON as is; the reply is
//! `{status, errorCode, errorDesc, data}` where `status` and `errorCode` may come as
//! numbers or strings depending on the API behind the gateway.

use serde_json::Value;

/// A parsed LGSP reply.
#[derive(Debug, Clone, PartialEq)]
pub struct LgspReply {
    pub status: Option<String>,
    pub error_code: Option<String>,
    pub error_desc: String,
    pub data: Value,
}

fn as_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1".into() } else { "0".into() }),
        _ => None,
    }
}

/// Parses a reply body; `Err` when it is not the LGSP shape.
pub fn parse_reply(body: &[u8]) -> Result<LgspReply, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("reply is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("reply is not a JSON object")?;
    if !obj.contains_key("status") && !obj.contains_key("errorCode") {
        return Err("reply has neither `status` nor `errorCode`".into());
    }
    Ok(LgspReply {
        status: as_text(obj.get("status")),
        error_code: as_text(obj.get("errorCode")),
        error_desc: obj
            .get("errorDesc")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        data: obj.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// A reference worth recording in the trail: `data` when it is a scalar, or its `id`/`MaHoSo`.
pub fn reference(reply: &LgspReply) -> Option<String> {
    match &reply.data {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => as_text(o.get("id").or_else(|| o.get("MaHoSo"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_strings() {
        let r = parse_reply(br#"{"status":1,"errorCode":"0","errorDesc":"","data":null}"#).unwrap();
        assert_eq!(r.status.as_deref(), Some("1"));
        assert_eq!(r.error_code.as_deref(), Some("0"));
        let r = parse_reply(
            br#"{"status":"0","errorCode":101503,"errorDesc":"x","data":{"id":"A-1"}}"#,
        )
        .unwrap();
        assert_eq!(r.error_code.as_deref(), Some("101503"));
        assert_eq!(reference(&r).as_deref(), Some("A-1"));
        assert!(parse_reply(b"<html/>").is_err());
        assert!(parse_reply(br#"{"ok":true}"#).is_err());
    }
}
