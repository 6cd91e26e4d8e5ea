//! Partners that misbehave on the wire (issue 14, "Partners that hang or
//! dribble"): one that accepts the connection and never answers, one that
//! answers one byte a second, one that resets the connection in the middle of
//! its reply, and one whose TLS handshake fails. Raw sockets stand in for
//! them, so nothing of our own HTTP stack is on the partner's side.
//!
//! Each must come back within the configured timeout (plus scheduling slack)
//! as a *transient* failure whose reason tells an operator which it was, so
//! the delivery layer retries it later and the worker is free for the next
//! delivery: a partner cannot hold a worker longer than its `timeout`.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::init;
use connectors::wire;
use lienthong_core::transport::{Failure, FailureClass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(800);
/// The most a failing call may take: the timeout and generous slack for a loaded CI machine.
const BOUND: Duration = Duration::from_secs(4);

/// A partner on loopback that runs `behave` on every connection.
async fn partner<F, Fut>(behave: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(behave(s));
        }
    });
    addr.to_string()
}

/// Reads the request head (enough for the client to consider it sent).
async fn read_head(s: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
}

async fn call(url: &str) -> (Result<wire::Response, Failure>, Duration) {
    init();
    let client = wire::build_client("test", TIMEOUT).unwrap();
    let body = Bytes::from_static(br#"{"MaHoSo":"000.00.32.H47-261204-0001"}"#);
    let started = Instant::now();
    let r = wire::execute(client.post(url).body(body.clone()), &body).await;
    (r, started.elapsed())
}

fn transient(r: Result<wire::Response, Failure>, took: Duration, reasons: &[&str]) -> Failure {
    let f = r.expect_err("a misbehaving partner is a failure");
    assert_eq!(f.class, FailureClass::Transient, "{f:?}");
    assert!(
        reasons.contains(&f.reason.as_str()),
        "reason {:?} not in {reasons:?}: {f:?}",
        f.reason
    );
    assert!(took < BOUND, "held the caller for {took:?}");
    assert!(!f.request.is_empty(), "the request is kept for the trail");
    f
}

#[tokio::test]
async fn a_partner_that_never_answers_times_out() {
    let addr = partner(|mut s| async move {
        read_head(&mut s).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(s);
    })
    .await;
    let (r, took) = call(&format!("http://{addr}/api")).await;
    transient(r, took, &["timeout"]);
    assert!(took >= TIMEOUT, "gave up before the timeout: {took:?}");
}

#[tokio::test]
async fn a_partner_that_dribbles_one_byte_a_second_times_out() {
    let addr = partner(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n",
            )
            .await;
        for b in b"{\"error_code\":\"00\",\"message\":\"Thanh cong\"................}".iter() {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let (r, took) = call(&format!("http://{addr}/api")).await;
    // The status line came at once; the body never finished within the timeout.
    transient(r, took, &["timeout", "body"]);
}

#[tokio::test]
async fn a_partner_that_resets_mid_reply_is_transient() {
    let addr = partner(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"error_code\":")
            .await;
        // RST instead of FIN: zero linger, then close.
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    let (r, took) = call(&format!("http://{addr}/api")).await;
    transient(r, took, &["body", "io"]);
}

#[tokio::test]
async fn a_failed_tls_handshake_is_transient_and_says_so() {
    // Not a TLS server: it answers the ClientHello with plain text and closes.
    let addr = partner(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot tls")
            .await;
    })
    .await;
    let (r, took) = call(&format!("https://{addr}/api")).await;
    let f = transient(r, took, &["connect", "io"]);
    let detail = f.detail.to_lowercase();
    assert!(
        detail.contains("tls")
            || detail.contains("handshake")
            || detail.contains("certificate")
            || detail.contains("corrupt"),
        "the detail names the TLS failure: {}",
        f.detail
    );
}
