//! The console as an attacker meets it (issue 13, "Sessions" and "Auditor reads
//! are audited everywhere"): against the running binary, over plain HTTP with
//! no cookie jar, so every cookie the hub sets is looked at.
//!
//! Each of these failed on the main of 2026-12-03:
//! * the console cookie held the raw API token (`lt_token=<token>`);
//! * signing out only cleared the cookie: the same value still signed in;
//! * a sign-in or sign-out posted from another site was accepted;
//! * `X-Forwarded-Host` from any peer was believed by the origin check;
//! * `Secure` was never set, even with a TLS proxy in front;
//! * console pages had no CSP, `X-Frame-Options` or `X-Content-Type-Options`;
//! * the console's search, message page and dead-letter page wrote no
//!   `audit.read` trail event.
//!
//! And one that holds the templates to their promise: partner data with
//! markup in it (a dossier code, a payload field) is shown as text on every
//! page that shows it, never as markup (the console's HTML was built from
//! strings with opt-in escaping until 2026-12-04).

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::path::Path;

use hub_support::*;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

/// A client that shows redirects and keeps no cookies: the test carries them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn start_hub(server_lines: &str) -> (HubProcess, Sink, tempfile::TempDir) {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("server:\n", &format!("server:\n{server_lines}"), 1),
    )
    .unwrap();
    let hub = HubProcess::spawn(&config, port, &[]).await;
    (hub, sink, dir)
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `lt_session=` cookie the answer sets, whole (`name=value; attributes`).
fn session_cookie(h: &HeaderMap) -> Option<String> {
    set_cookies(h)
        .into_iter()
        .find(|c| c.starts_with("lt_session=") && !c.starts_with("lt_session=;"))
}

async fn sign_in(http: &reqwest::Client, base: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = http
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={AUDIT_TOKEN}&lang=en"));
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

/// The `name=value` part of a Set-Cookie, to send back.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

async fn console_status(http: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    http.get(format!("{base}/console"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_a_random_id_that_sign_out_ends() {
    let (hub, _sink, dir) = start_hub("").await;
    let http = client();

    let r = sign_in(&http, &hub.base, &[]).await;
    assert_eq!(
        r.status().as_u16(),
        303,
        "sign-in redirects to the dashboard"
    );
    let c = session_cookie(r.headers()).expect("a session cookie");
    assert!(!c.contains(AUDIT_TOKEN), "the token is in the cookie: {c}");
    let id = pair(&c)["lt_session=".len()..].to_string();
    assert_eq!(id.len(), 64, "{c}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(c.contains(attr), "{attr} missing: {c}");
    }
    assert!(!c.contains("Secure"), "no TLS proxy configured: {c}");

    // Signed in, and every console page carries the security headers.
    let page = http
        .get(format!("{}/console", hub.base))
        .header("cookie", pair(&c))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let login = http
        .get(format!("{}/console/login", hub.base))
        .send()
        .await
        .unwrap();
    assert!(login.headers().contains_key("content-security-policy"));

    // The old cookie, holding the token itself, signs nobody in.
    assert_eq!(
        console_status(&http, &hub.base, &format!("lt_token={AUDIT_TOKEN}")).await,
        303
    );
    // A made-up session id neither.
    assert_eq!(
        console_status(&http, &hub.base, &format!("lt_session={}", "a".repeat(64))).await,
        303
    );

    // Sign-out from another site is refused and the session lives on.
    let r = http
        .post(format!("{}/console/logout", hub.base))
        .header("cookie", pair(&c))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(console_status(&http, &hub.base, &pair(&c)).await, 200);

    // Sign-out ends the session in the hub, not only in the browser.
    let r = http
        .post(format!("{}/console/logout", hub.base))
        .header("cookie", pair(&c))
        .header("origin", &hub.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        set_cookies(r.headers())
            .iter()
            .any(|s| s.starts_with("lt_session=;") && s.contains("Max-Age=0")),
        "{:?}",
        set_cookies(r.headers())
    );
    assert_eq!(
        console_status(&http, &hub.base, &pair(&c)).await,
        303,
        "the same cookie still signs in after sign-out"
    );

    // Both are in the trail, with who did it.
    let trail = export_trail(dir.path(), &hub).await;
    assert!(trail.contains("console.sign_in"), "{trail}");
    assert!(trail.contains("console.sign_out"), "{trail}");
    assert!(trail.contains("auditor:test-auditor"), "{trail}");
    assert!(!trail.contains(&id), "the session id is in the trail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_from_another_site_is_refused_and_forwarded_host_needs_a_trusted_proxy() {
    let (hub, _sink, _dir) = start_hub("").await;
    let http = client();
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        // 127.0.0.1 is not a listed proxy: its X-Forwarded-Host is not believed.
        vec![
            ("origin", "http://evil.example"),
            ("x-forwarded-host", "evil.example"),
        ],
    ] {
        let r = sign_in(&http, &hub.base, &headers).await;
        assert_eq!(r.status().as_u16(), 403, "{headers:?}");
        assert!(session_cookie(r.headers()).is_none(), "{headers:?}");
    }
    // From the hub's own page it works.
    let r = sign_in(&http, &hub.base, &[("origin", &hub.base)]).await;
    assert_eq!(r.status().as_u16(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_tls_proxy_cookies_are_secure() {
    let (hub, _sink, _dir) = start_hub("  trusted_proxies: [127.0.0.1]\n").await;
    let http = client();
    // The proxy says the browser spoke HTTPS to hub.example, and forwards its Origin.
    let r = sign_in(
        &http,
        &hub.base,
        &[
            ("x-forwarded-host", "hub.example"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://hub.example"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let c = session_cookie(r.headers()).unwrap();
    assert!(c.contains("; Secure"), "{c}");
    drop(hub);

    let (hub, _sink, _dir) = start_hub("  behind_tls_proxy: true\n").await;
    let r = sign_in(&http, &hub.base, &[]).await;
    let c = session_cookie(r.headers()).unwrap();
    assert!(c.contains("; Secure"), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_reads_of_message_content_are_in_the_trail() {
    let (hub, sink, dir) = start_hub("").await;
    let http = client();
    let (id, c) = delivered_and_signed_in(
        &hub,
        &sink,
        json!({ "code": "D-CONSOLE-READ-1", "seq": 1, "msg_id": "m-console-read-1" }),
    )
    .await;
    for path in [
        "/console/messages?q=D-CONSOLE-READ-1".to_string(),
        format!("/console/messages/{id}"),
        "/console/dead".to_string(),
    ] {
        let r = http
            .get(format!("{}{path}", hub.base))
            .header("cookie", &c)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let trail = export_trail(dir.path(), &hub).await;
    // Each exported trail row carries its event as canonical JSON.
    let reads: Vec<serde_json::Value> = trail
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|row| {
            row["canonical"]
                .as_str()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        })
        .filter(|ev| matches!(ev["kind"].as_str(), Some("audit.read" | "audit.search")))
        .collect();
    for (route, kind, message) in [
        ("/console/messages", "audit.search", None),
        ("/console/messages/{id}", "audit.read", Some(id.as_str())),
        ("/console/dead", "audit.read", None),
    ] {
        assert!(
            reads.iter().any(|ev| ev["detail"]["route"] == route
                && ev["kind"] == kind
                && ev["actor"] == "auditor:test-auditor"
                && ev["message_id"].as_str() == message),
            "no {kind} trail event for {route}: {reads:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_markup_is_shown_as_text() {
    let (hub, sink, _dir) = start_hub("").await;
    let http = client();
    let hostile = r#"D-<img src=x onerror="alert(1)">"#;
    let note = "</pre><script>alert(document.cookie)</script>";
    let (id, c) = delivered_and_signed_in(
        &hub,
        &sink,
        json!({ "code": hostile, "seq": 1, "msg_id": "m-markup-1", "note": note }),
    )
    .await;
    let search = format!(
        "/console/messages?{}",
        reqwest::Url::parse_with_params("http://hub/", [("q", hostile)])
            .unwrap()
            .query()
            .unwrap()
    );
    for path in [
        search.as_str(),
        &format!("/console/messages/{id}"),
        "/console/messages",
    ] {
        let r = http
            .get(format!("{}{path}", hub.base))
            .header("cookie", &c)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("D-&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"),
            "{path} does not show the dossier code as text:\n{page}"
        );
        for raw in ["<img src=x", "<script>alert", "onerror=\"alert"] {
            assert!(
                !page.contains(raw),
                "{path} carries partner markup `{raw}`:\n{page}"
            );
        }
    }
}

/// Issue 14, defect 8: the replay form ticked every destination, those that
/// already had the message included, and nothing said that it had been
/// replayed before: one dead letter was replayed, and delivered, twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_form_ticks_only_what_the_partner_has_not_got() {
    let (hub, sink, _dir) = start_hub("").await;
    let http = client();
    let (id, c) = delivered_and_signed_in(
        &hub,
        &sink,
        json!({ "code": "D-REPLAY-FORM", "seq": 1, "msg_id": "m-replay-form" }),
    )
    .await;
    let post = |path: String, body: &'static str| {
        http.post(format!("{}{path}", hub.base))
            .header("cookie", &c)
            .header("origin", &hub.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let dry_run = format!("/console/messages/{id}/dry-run?lang=en");
    let page = post(dry_run.clone(), "")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sink_box = page
        .split("id=\"target-sink\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_else(|| panic!("no target-sink checkbox:\n{page}"));
    assert!(
        !sink_box.contains("checked"),
        "the sink already has it: not ticked by default ({sink_box})"
    );
    assert!(page.contains("already delivered"), "{page}");
    assert!(!page.contains("already-replayed"), "not replayed yet");

    // Replayed once (ticked on purpose): the next dry run warns.
    let r = post(
        format!("/console/messages/{id}/replay"),
        "target=sink&mode=as-sent&reason=partner+asked+for+it+again",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let page = post(dry_run, "").await.unwrap().text().await.unwrap();
    let warning = page
        .split("id=\"already-replayed\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no replay warning:\n{page}"));
    assert!(warning.contains("sink (1 time(s))"), "{warning}");
}

/// Sends `body` as the portal's `dossier.event`, waits until the sink has it,
/// and signs in to the console: the message id and the session cookie to send.
async fn delivered_and_signed_in(
    hub: &HubProcess,
    sink: &Sink,
    body: serde_json::Value,
) -> (String, String) {
    let (status, accepted) = post_json(
        &client(),
        &hub.base,
        "/inbound/portal/dossier.event",
        &body,
        &[],
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    wait_until("delivered", std::time::Duration::from_secs(20), || {
        !sink.delivered().is_empty()
    })
    .await;
    let id = accepted["id"].as_str().unwrap().to_string();
    (id, console_session(&hub.base).await)
}

/// The trail rows in the store, as `lienthong audit export` writes them.
async fn export_trail(dir: &Path, hub: &HubProcess) -> String {
    let _ = hub;
    let out = dir.join(format!("export-{}", uuid_like()));
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["audit", "export", "--config"])
        .arg(dir.join("lienthong.yaml"))
        .args(["--from", "2000-01-01", "--to", "2100-01-01", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "audit export: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut text = String::new();
    for e in walk(&out) {
        if let Ok(t) = std::fs::read_to_string(&e) {
            text.push_str(&t);
            text.push('\n');
        }
    }
    text
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    } else {
        out.push(p.to_path_buf());
    }
    out
}
