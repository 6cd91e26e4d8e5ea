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

/// One batch body: `{messageId, source, sentAt, observations}`, where
/// `messageId` is derived from `key` ([`batch_key`]): the same observations
/// always go out under the same `messageId`, however often they are retried.
pub fn batch_body(source: &str, key: &str, observations: Vec<Value>) -> Vec<u8> {
    let sent_at = Utc::now()
        .with_timezone(&Ho_Chi_Minh)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let body = json!({
        "messageId": message_id(key),
        "source": source,
        "sentAt": sent_at,
        "observations": observations,
    });
    serde_json::to_vec(&body).expect("JSON serialises")
}

/// The batch's idempotency key, from its content alone: SHA-256 over the
/// SHA-256 of each observation (its JSON as mapped), sorted and deduplicated.
/// A retried batch, re-assembled from the same messages in another order (or
/// with a message delivered twice), has the same key; the delivery ids and
/// attempt numbers do not enter it (issue 14: each attempt had a new random
/// `messageId`, and the key changed with the order).
pub fn batch_key(observations: &[Value]) -> String {
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
    hex::encode(h.finalize())
}

/// A UUID-shaped `messageId` from a batch key (RFC 9562 version 8, "custom":
/// the first 16 bytes of the key), so an IOC that expects a UUID gets one.
fn message_id(key: &str) -> String {
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(key.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    uuid::Builder::from_custom_bytes(b).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge() {
        let a = observations(br#"{"messageId":"x","observations":[{"stationCode":"A"}]}"#).unwrap();
        assert_eq!(a.len(), 1);
        assert!(observations(br#"{"alerts":[]}"#).is_err());
        let key = batch_key(&a);
        let body: Value = serde_json::from_slice(&batch_body("HUB", &key, a)).unwrap();
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
        let k = batch_key(&[a.clone(), b.clone()]);
        assert_eq!(k, batch_key(&[b.clone(), a.clone()]));
        assert_eq!(k, batch_key(&[a.clone(), b.clone(), a.clone()]));
        assert_ne!(k, batch_key(&[a.clone(), c]));
        assert_ne!(k, batch_key(std::slice::from_ref(&a)));
        let id = |obs: Vec<Value>| {
            let key = batch_key(&obs);
            let body: Value = serde_json::from_slice(&batch_body("HUB", &key, obs)).unwrap();
            body["messageId"].as_str().unwrap().to_string()
        };
        let first = id(vec![a.clone(), b.clone()]);
        assert_eq!(first, id(vec![b, a]));
        assert_eq!(uuid::Uuid::parse_str(&first).unwrap().get_version_num(), 8);
    }
}
