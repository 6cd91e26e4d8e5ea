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

/// A batch's partner-facing ids, both from its content alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchIds {
    /// `Idempotency-Key`: 64 hex digits.
    pub key: String,
    /// `messageId`: a UUID (RFC 9562 version 8, "custom": the first 16 bytes
    /// of the same digest), so an IOC that expects a UUID gets one.
    pub message_id: String,
}

/// The batch's ids: SHA-256 over the SHA-256 of each observation (its JSON as
/// mapped), sorted and deduplicated. A retried batch, re-assembled from the
/// same messages in another order (or with a message delivered twice), has
/// the same ids; the delivery ids and attempt numbers do not enter them
/// (issue 14: each attempt had a new random `messageId`, and the key changed
/// with the order).
pub fn batch_ids(observations: &[Value]) -> BatchIds {
    let mut digests: Vec<[u8; 32]> = observations
        .iter()
        .map(|o| Sha256::digest(o.to_string().as_bytes()).into())
        .collect();
    digests.sort_unstable();
    digests.dedup();
    let mut h = Sha256::new();
    for d in &digests {
        h.update(d);
    }
    let digest: [u8; 32] = h.finalize().into();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    BatchIds {
        key: hex::encode(digest),
        message_id: uuid::Builder::from_custom_bytes(first)
            .into_uuid()
            .to_string(),
    }
}

/// One batch body: `{messageId, source, sentAt, observations}`.
pub fn batch_body(source: &str, message_id: &str, observations: Vec<Value>) -> Vec<u8> {
    let sent_at = Utc::now()
        .with_timezone(&Ho_Chi_Minh)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let body = json!({
        "messageId": message_id,
        "source": source,
        "sentAt": sent_at,
        "observations": observations,
    });
    serde_json::to_vec(&body).expect("JSON serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge() {
        let a = observations(br#"{"messageId":"x","observations":[{"stationCode":"A"}]}"#).unwrap();
        assert_eq!(a.len(), 1);
        assert!(observations(br#"{"alerts":[]}"#).is_err());
        let ids = batch_ids(&a);
        let body: Value = serde_json::from_slice(&batch_body("HUB", &ids.message_id, a)).unwrap();
        assert_eq!(body["observations"][0]["stationCode"], "A");
        assert!(body["sentAt"].as_str().unwrap().ends_with("+07:00"));
    }

    /// Same observations, any order or repetition: same key and `messageId`;
    /// other observations: another.
    #[test]
    fn batch_ids_come_from_the_content() {
        let a = json!({"stationCode": "QNA_NT_01", "measuredAt": "2026-11-28T08:00:00+07:00", "parameters": [{"code": "PH", "value": "7.1"}]});
        let b = json!({"stationCode": "QNA_KK_02", "measuredAt": "2026-11-28T08:05:00+07:00", "parameters": [{"code": "PM10", "value": "41"}]});
        let c = json!({"stationCode": "QNA_KK_02", "measuredAt": "2026-11-28T08:05:00+07:00", "parameters": [{"code": "PM10", "value": "42"}]});
        let k = batch_ids(&[a.clone(), b.clone()]).key;
        assert_eq!(k, batch_ids(&[b.clone(), a.clone()]).key);
        assert_eq!(k, batch_ids(&[a.clone(), b.clone(), a.clone()]).key);
        assert_ne!(k, batch_ids(&[a.clone(), c]).key);
        assert_ne!(k, batch_ids(std::slice::from_ref(&a)).key);
        let id = |obs: Vec<Value>| {
            let ids = batch_ids(&obs);
            let body: Value =
                serde_json::from_slice(&batch_body("HUB", &ids.message_id, obs)).unwrap();
            body["messageId"].as_str().unwrap().to_string()
        };
        let first = id(vec![a.clone(), b.clone()]);
        assert_eq!(first, id(vec![b, a]));
        assert_eq!(uuid::Uuid::parse_str(&first).unwrap().get_version_num(), 8);
    }
}
