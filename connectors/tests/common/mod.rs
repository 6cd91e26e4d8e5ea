//! Helpers shared by the connector integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use lienthong_core::transport::{Failure, FailureClass, Outbound};

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn outbound(
    destination: &str,
    message_type: &str,
    body: impl Into<Bytes>,
    key: &str,
) -> Outbound {
    Outbound {
        delivery_id: format!("d-{key}"),
        message_id: format!("m-{key}"),
        correlation_id: "000.00.32.H47-220915-0001".into(),
        destination: destination.into(),
        message_type: message_type.into(),
        body: body.into(),
        content_type: "application/json".into(),
        idempotency_key: key.into(),
        attempt: 1,
    }
}

pub fn assert_class(f: &Failure, class: FailureClass, reason: &str) {
    assert_eq!(f.class, class, "{f:?}");
    assert_eq!(f.reason, reason, "{f:?}");
}

/// Neither the failure's bytes nor its Debug output contain any of `secrets`.
pub fn assert_no_secret(what: &str, bytes: &[u8], debug: &str, secrets: &[&str]) {
    let text = String::from_utf8_lossy(bytes);
    for s in secrets {
        assert!(
            !text.contains(s),
            "{what}: request bytes contain a secret: {text}"
        );
        assert!(
            !debug.contains(s),
            "{what}: Debug output contains a secret: {debug}"
        );
    }
}
