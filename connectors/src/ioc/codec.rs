//! IOC wire format: merging observation messages into one batch body.

use chrono::Utc;
use chrono_tz::Asia::Ho_Chi_Minh;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `observations` of one mapped message, or why it has none.
pub fn observations(body: &[u8]) -> Result<Vec<Value>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the mapped body is not JSON: {e}"))?;
    match v {
        Value::Object(mut o) => match o.remove("observations") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err("the mapped body has no `observations` array; fix the mapping".into()),
        },
        _ => Err("the mapped body is not a JSON object".into()),
    }
}

/// One batch body: `{messageId, source, sentAt, observations}`.
pub fn batch_body(source: &str, observations: Vec<Value>) -> Vec<u8> {
    let sent_at = Utc::now()
        .with_timezone(&Ho_Chi_Minh)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let body = json!({
        "messageId": uuid::Uuid::new_v4().to_string(),
        "source": source,
        "sentAt": sent_at,
        "observations": observations,
    });
    serde_json::to_vec(&body).expect("JSON serialises")
}

/// The batch's idempotency key: SHA-256 over its messages' keys, in order.
pub fn batch_key<'a>(keys: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge() {
        let a = observations(br#"{"messageId":"x","observations":[{"stationCode":"A"}]}"#).unwrap();
        assert_eq!(a.len(), 1);
        assert!(observations(br#"{"alerts":[]}"#).is_err());
        let body: Value = serde_json::from_slice(&batch_body("HUB", a)).unwrap();
        assert_eq!(body["observations"][0]["stationCode"], "A");
        assert!(body["sentAt"].as_str().unwrap().ends_with("+07:00"));
        assert_ne!(batch_key(["a", "b"]), batch_key(["ab"]));
    }
}
