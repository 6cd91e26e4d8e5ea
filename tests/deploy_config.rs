//! The deployment files stay consistent with the config reference.
//!
//! `deploy/compose.yaml` and `deploy/k8s/` embed a hub configuration and pass
//! the database and broker URLs as `LIENTHONG_*` variables. Neither is run here
//! (no container engine in CI), so this test does what their first start would:
//! it reads the embedded config and the variables and puts them through the
//! hub's own validation (`Config::load_with_env`, the same as `lienthong check`).
//! A renamed or misspelt key, a bad value, or a replica count that disagrees
//! with `queue.rabbitmq.replicas` fails here instead of in production.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use router::config::{Config, QueueBackend};
use router::queue::rabbitmq::RabbitOptions;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// `${NAME:-default}` → `default`, as compose does when NAME is unset.
fn compose_default(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closed ${...}") + i;
        let inner = &rest[i + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, d)| d));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn load(config_text: &str, env: Vec<(String, String)>, what: &str) -> Config {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, config_text.as_bytes()).unwrap();
    Config::load_with_env(Some(f.path()), env)
        .unwrap_or_else(|d| panic!("the hub config in {what} does not validate:\n{d}"))
}

fn replicas(c: &Config) -> u64 {
    match &c.queue {
        QueueBackend::RabbitMq(section) => {
            // The section is validated by the RabbitMQ backend at start-up; do it here too.
            RabbitOptions::from_config(section, Vec::new())
                .unwrap_or_else(|e| panic!("queue.rabbitmq does not validate: {e}"))
                .replicas as u64
        }
        QueueBackend::Embedded => panic!("a scale-out deployment must use the RabbitMQ queue"),
    }
}

#[test]
fn compose_file_config_validates_and_matches_its_replicas() {
    let compose = yaml(&root().join("deploy/compose.yaml"));
    let content = compose["configs"]["lienthong"]["content"]
        .as_str()
        .expect("configs.lienthong.content");
    let env: Vec<(String, String)> = compose["x-hub"]["environment"]
        .as_object()
        .expect("x-hub.environment")
        .iter()
        .filter(|(k, _)| k.starts_with("LIENTHONG_"))
        .map(|(k, v)| {
            (
                k.clone(),
                compose_default(v.as_str().expect("string value")),
            )
        })
        .collect();
    let c = load(content, env, "deploy/compose.yaml");
    assert!(c.store_url.starts_with("postgres://"), "{}", c.store_url);
    let hubs = compose["services"]
        .as_object()
        .expect("services")
        .keys()
        .filter(|k| k.starts_with("hub-"))
        .count() as u64;
    assert_eq!(
        replicas(&c),
        hubs,
        "queue.rabbitmq.replicas must equal the number of hub services, or each takes the wrong share of the rates"
    );
}

#[test]
fn kubernetes_configmap_and_secret_validate_and_match_the_deployment() {
    let k8s = root().join("deploy/k8s");
    let cm = yaml(&k8s.join("configmap.yaml"));
    let secret = yaml(&k8s.join("secret.yaml"));
    let deployment = yaml(&k8s.join("deployment.yaml"));
    let env: Vec<(String, String)> = secret["stringData"]
        .as_object()
        .expect("stringData")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
        .collect();
    let c = load(
        cm["data"]["lienthong.yaml"]
            .as_str()
            .expect("data.lienthong.yaml"),
        env,
        "deploy/k8s/configmap.yaml + secret.yaml",
    );
    assert!(c.store_url.starts_with("postgres://"), "{}", c.store_url);
    assert_eq!(
        replicas(&c),
        deployment["spec"]["replicas"]
            .as_u64()
            .expect("spec.replicas"),
        "queue.rabbitmq.replicas in the ConfigMap must equal the Deployment's replicas"
    );
}

/// The vhost of an AMQP URL: its path, percent-decoded (`/%2f` is `/`); an
/// empty path is the default vhost `/`.
fn amqp_vhost(url: &str) -> String {
    let rest = url
        .strip_prefix("amqp://")
        .or_else(|| url.strip_prefix("amqps://"))
        .unwrap_or_else(|| panic!("{url} is not an AMQP URL"));
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return "/".into();
    }
    path.replace("%2f", "/").replace("%2F", "/")
}

/// Before: `deploy/rabbitmq/definitions.json` declared everything in vhost
/// `/` while compose and Kubernetes connect to vhost `lienthong`, so importing
/// the definitions pre-provisioned a vhost the hubs never use.
#[test]
fn rabbitmq_definitions_compose_and_kubernetes_use_one_vhost() {
    let defs: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/rabbitmq/definitions.json")).unwrap(),
    )
    .unwrap();
    let vhosts: Vec<&str> = defs["vhosts"]
        .as_array()
        .expect("vhosts")
        .iter()
        .map(|v| v["name"].as_str().expect("vhosts[].name"))
        .collect();
    assert_eq!(vhosts.len(), 1, "one vhost in the definitions: {vhosts:?}");
    let vhost = vhosts[0];
    for section in ["exchanges", "queues", "bindings"] {
        for item in defs[section].as_array().expect(section) {
            assert_eq!(
                item["vhost"].as_str(),
                Some(vhost),
                "{section} entry in another vhost than the declared one: {item}"
            );
        }
    }
    let compose = yaml(&root().join("deploy/compose.yaml"));
    let url = compose_default(
        compose["x-hub"]["environment"]["LIENTHONG_QUEUE__RABBITMQ__URL"]
            .as_str()
            .expect("x-hub.environment.LIENTHONG_QUEUE__RABBITMQ__URL"),
    );
    assert_eq!(amqp_vhost(&url), vhost, "compose's hubs connect to {url}");
    assert_eq!(
        compose["services"]["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_VHOST"].as_str(),
        Some(vhost),
        "compose's broker creates another vhost"
    );
    let secret = yaml(&root().join("deploy/k8s/secret.yaml"));
    let url = secret["stringData"]["LIENTHONG_QUEUE__RABBITMQ__URL"]
        .as_str()
        .expect("stringData.LIENTHONG_QUEUE__RABBITMQ__URL");
    assert_eq!(
        amqp_vhost(url),
        vhost,
        "the Kubernetes Secret connects to {url}"
    );
}

/// The field names a `deny_unknown_fields` section accepts, from the model
/// itself: serde's "unknown field ..., expected one of `a`, `b`" message.
fn fields_of<T: serde::de::DeserializeOwned>() -> Vec<String> {
    let err = match serde_json::from_value::<T>(serde_json::json!({"no_such_key_here": 1})) {
        Ok(_) => panic!("the section accepts an unknown key"),
        Err(e) => e.to_string(),
    };
    let expected = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("no field list in {err:?}"))
        .1;
    let fields: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(!fields.is_empty(), "no field list in {err:?}");
    fields
}

/// The top-level section `key:` of the example file: the comment lines right
/// above it and its lines up to the next blank line or top-level key.
fn example_section(text: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("deploy/lienthong.example.yaml has no top-level `{key}:`"));
    let mut start = at;
    while start > 0 && lines[start - 1].starts_with('#') {
        start -= 1;
    }
    let mut end = at + 1;
    while end < lines.len()
        && !lines[end].trim().is_empty()
        && !lines[end].starts_with(|c: char| c.is_ascii_alphabetic())
    {
        end += 1;
    }
    lines[start..end].join("\n")
}

/// Before: the example config, which says it documents every key, had neither
/// `tokens:` nor `retention:`. Each section is there with every field the model
/// accepts (asked of the model, not listed here), and `lienthong check` passes
/// the file once the secrets it names are supplied as it says (a variable, a
/// file) and the three partners it leaves to configure have an address.
#[test]
fn example_config_documents_tokens_and_retention_and_checks() {
    let path = root().join("deploy/lienthong.example.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    for (key, fields) in [
        ("tokens", fields_of::<router::auth::config::TokenConfig>()),
        (
            "retention",
            fields_of::<router::audit::retention::RetentionConfig>(),
        ),
    ] {
        let section = example_section(&text, key);
        for f in fields {
            assert!(
                section.contains(&format!("{f}:")),
                "`{key}.{f}` is not documented in deploy/lienthong.example.yaml:\n{section}"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let tax = dir.path().join("tax.hmac");
    std::fs::write(&tax, "example-tax-secret").unwrap();
    let check = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"));
        cmd.args(["check", "--config"])
            .arg(&path)
            .current_dir(root())
            .env_remove("LIENTHONG_CONFIG")
            .env("STATIONS_HMAC_SECRET", "example-stations-secret")
            .env("LIENTHONG_PARTNERS__TAX__HMAC_SECRET_FILE", &tax);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // With its secrets only, it passes; what the file says is left to configure (the
    // partners whose connectors are commented out) is named as waiting for
    // configuration: `serve` starts with it too, and keeps their deliveries.
    let (ok, stderr) = check(&[]);
    assert!(ok, "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 3, "{stderr}");
    for w in &warnings {
        assert!(
            w.contains("is not configured") && w.contains("wait for configuration"),
            "{stderr}"
        );
    }
    let (ok, stderr) = check(&[
        (
            "LIENTHONG_DESTINATIONS__PROVINCE_PORTAL__URL",
            "https://lgsp.example/api",
        ),
        (
            "LIENTHONG_DESTINATIONS__NATIONAL_PORTAL__URL",
            "https://dvcqg.example/api",
        ),
        ("LIENTHONG_DESTINATIONS__TAX__URL", "https://gip.example/ws"),
    ]);
    assert!(
        ok,
        "lienthong check --config deploy/lienthong.example.yaml with its secrets and destinations:\n{stderr}"
    );
}

/// Before: the Dockerfile's and compose's healthchecks ran `/dev/tcp` under
/// `/bin/sh`, which is dash in the image, so they always failed. Both run
/// `lienthong healthcheck` now; this runs the built binary with the exact
/// arguments each file gives it, so a flag the CLI does not have fails here.
/// (Nothing need listen on 8080: the answer must be the healthcheck's own,
/// exit 0 or 1, never a usage error, exit 2.)
#[test]
fn the_deploy_healthchecks_run_lienthong_healthcheck() {
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let line = dockerfile
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK in deploy/Dockerfile");
    let cmd = line
        .split_once(" CMD ")
        .expect("HEALTHCHECK ... CMD [...]")
        .1;
    let docker: Vec<String> = serde_json::from_str(cmd.trim())
        .unwrap_or_else(|e| panic!("HEALTHCHECK CMD is not an exec-form array ({e}): {line}"));
    let compose = yaml(&root().join("deploy/compose.yaml"));
    let compose: Vec<String> = compose["x-hub"]["healthcheck"]["test"]
        .as_array()
        .expect("x-hub.healthcheck.test")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for (what, argv) in [
        ("deploy/Dockerfile", docker),
        ("deploy/compose.yaml", compose[1..].to_vec()),
    ] {
        assert_eq!(
            argv.first().map(String::as_str),
            Some("/usr/local/bin/lienthong"),
            "{what}: {argv:?}"
        );
        assert_eq!(
            argv.get(1).map(String::as_str),
            Some("healthcheck"),
            "{what}: {argv:?}"
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .args(&argv[1..])
            .env_remove("LIENTHONG_CONFIG")
            .env("LIENTHONG_SERVER__LISTEN", "0.0.0.0:8080")
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{what}: `lienthong {}` exited {code:?}: {}",
            argv[1..].join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
