//! What a hub message on the broker carries: a pointer to an outbox row.
//!
//! The body and state of a delivery stay in the store (the source of truth, the
//! same row the trail and the API read). The broker message only says *which*
//! delivery to try, so a message can be duplicated, parked and re-published any
//! number of times without ever carrying a stale copy of the payload: whoever
//! consumes it claims the row in the store, and the row decides.

use serde::{Deserialize, Serialize};

/// The JSON body of every message on the hub's queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// `v: 1`; a message with another version is dead-lettered, not guessed at.
    pub v: u32,
    pub delivery_id: String,
    pub seq: i64,
    pub destination: String,
    pub correlation_id: String,
}

pub const VERSION: u32 = 1;

impl Envelope {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Parses a consumed body, checking it belongs to the queue it came from.
    /// The error is the dead-letter reason.
    pub fn parse(body: &[u8], queue_destination: &str) -> Result<Envelope, String> {
        let e: Envelope = serde_json::from_slice(body).map_err(|err| {
            format!(
                "malformed hub message ({} bytes): {err}; expected JSON {{\"v\":1,\"delivery_id\",\"seq\",\"destination\",\"correlation_id\"}}",
                body.len()
            )
        })?;
        if e.v != VERSION {
            return Err(format!(
                "unsupported hub message version {} (this hub reads version {VERSION})",
                e.v
            ));
        }
        if e.destination != queue_destination {
            return Err(format!(
                "message for destination `{}` found on the queue of `{queue_destination}`",
                e.destination
            ));
        }
        if e.delivery_id.is_empty() {
            return Err("hub message with an empty delivery_id".into());
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let e = Envelope {
            v: 1,
            delivery_id: "d1".into(),
            seq: 7,
            destination: "lis".into(),
            correlation_id: "X".into(),
        };
        assert_eq!(Envelope::parse(&e.to_bytes(), "lis").unwrap(), e);
        assert!(Envelope::parse(&e.to_bytes(), "tax")
            .unwrap_err()
            .contains("queue of `tax`"));
        assert!(Envelope::parse(b"hello", "lis")
            .unwrap_err()
            .contains("malformed hub message (5 bytes)"));
        let v2 = br#"{"v":2,"delivery_id":"d","seq":1,"destination":"lis","correlation_id":"X"}"#;
        assert!(Envelope::parse(v2, "lis")
            .unwrap_err()
            .contains("version 2"));
    }
}
