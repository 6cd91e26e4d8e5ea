//! `lienthong check`, `test` and `map`, run as the built binary on the mapping fixtures.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("router/tests/fixtures/mappings")
}

fn lienthong(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lienthong");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            input.write_all(bytes).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait for lienthong")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn dir(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

#[test]
fn check_reports_every_error_with_positions_and_fails() {
    let out = lienthong(
        &[
            "check",
            "--mappings",
            &dir("broken"),
            "--schemas",
            &dir("schemas"),
        ],
        None,
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad.yaml:5:23: rules[0] (target: MaHoSo): unknown key 'sorce'"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:9:9: rules[1] (target: NgayNhan): unknown op 'dat'"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:10:60: rules[2] (target: TrangThai): op 'lookup': no lookup table named 'nosuch'"), "{err}");
    assert!(err.contains("check failed:"), "{err}");
}

#[test]
fn check_succeeds_on_good_files_with_a_summary() {
    let out = lienthong(
        &[
            "check",
            "--mappings",
            &dir("good"),
            "--schemas",
            &dir("schemas"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ok: 2 schema(s), 1 mapping(s) with 4 test case(s)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn missing_directories_are_explained() {
    let out = lienthong(
        &[
            "test",
            "--mappings",
            "/nonexistent/mappings",
            "--schemas",
            &dir("schemas"),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("mappings directory not found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn test_command_prints_the_summary_line_and_diffs() {
    let out = lienthong(
        &[
            "test",
            "--mappings",
            &dir("good"),
            "--schemas",
            &dir("schemas"),
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        stdout.lines().last(),
        Some("4 passed, 0 failed"),
        "{stdout}"
    );

    // A copy of the fixture with one wrong expectation.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mdir = tmp.path().join("mappings");
    std::fs::create_dir_all(mdir.join("portal")).unwrap();
    std::fs::create_dir_all(mdir.join("lookups")).unwrap();
    std::fs::copy(
        fixtures().join("good/lookups/communes.yaml"),
        mdir.join("lookups/communes.yaml"),
    )
    .unwrap();
    let original =
        std::fs::read_to_string(fixtures().join("good/portal/dossier.to-lis.yaml")).unwrap();
    let broken = original.replacen("KenhNop: TRUC_TUYEN", "KenhNop: TRUC_TIEP", 1);
    assert_ne!(original, broken);
    std::fs::write(mdir.join("portal/dossier.to-lis.yaml"), broken).unwrap();
    let out = lienthong(
        &[
            "test",
            "--mappings",
            mdir.to_str().unwrap(),
            "--schemas",
            &dir("schemas"),
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("2 passed, 1 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  portal/dossier.to-lis :: nominal"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  \"KenhNop\": \"TRUC_TIEP\",")
            && stdout.contains("+  \"KenhNop\": \"TRUC_TUYEN\","),
        "{stdout}"
    );
    // a filter selects mappings by id
    let out = lienthong(
        &[
            "test",
            "--mappings",
            mdir.to_str().unwrap(),
            "--schemas",
            &dir("schemas"),
            "nomatch",
        ],
        None,
    );
    assert_eq!(text(&out.stdout).lines().last(), Some("0 passed, 0 failed"));
}

#[test]
fn map_jsonl_reports_bad_lines_and_goes_on() {
    let good = br#"{"MaHoSo":"A-1","NgayTiepNhan":"20220915083000","KenhNop":"1","LePhi":2500.5}"#;
    let mut input = Vec::new();
    input.extend_from_slice(good);
    input.extend_from_slice(b"\n{\"MaHoSo\": \"A-2\", \"NgayTiepNhan\": \n");
    input.extend_from_slice(b"{\"MaHoSo\":\"\xff\xfe\",\"NgayTiepNhan\":\"20220915083000\"}\n");
    input.extend_from_slice(b"{\"MaHoSo\":\"A-4\",\"NgayTiepNhan\":\"20230230083000\"}\n");
    input.extend_from_slice(b"{\"NgayTiepNhan\":\"20230228083000\"}\n");
    input.extend_from_slice(good);
    input.push(b'\n');
    let mapping = fixtures().join("good/portal/dossier.to-lis.yaml");
    let args = [
        "map",
        "--mapping",
        mapping.to_str().unwrap(),
        "--mappings",
        &dir("good"),
        "--schemas",
        &dir("schemas"),
        "--jsonl",
    ];
    let out = lienthong(&args, Some(&input));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "a failed line makes the exit code non-zero"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}\n{stderr}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["NgayNhan"], "2022-09-15T08:30:00+07:00");
    assert_eq!(first["LePhi"], "2501");
    assert_eq!(first["KenhNop"], "TRUC_TIEP");
    assert!(
        stderr.contains("line 2: json at line 1, column"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3: json at byte 11") && stderr.contains("not valid UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4:") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5: input: schema portal/dossier")
            && stderr.contains("MaHoSo: is required"),
        "{stderr}"
    );
    assert!(stderr.contains("4 line(s) failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // --identity: parse and re-serialize only
    let out = lienthong(&[&args[..], &["--identity"]].concat(), Some(good));
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), std::str::from_utf8(good).unwrap());
}

#[test]
fn map_files_encodes_in_the_target_format_and_reports_bad_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ok = tmp.path().join("ok.json");
    std::fs::write(
        &ok,
        r#"{"MaHoSo":"A-1","ChuHoSo":"Lê Thị C","NgayTiepNhan":"20220915083000","KenhNop":"2"}"#,
    )
    .unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"MaHoSo\": \"A-1\",\n  \"NgayTiepNhan\" \"x\"\n}",
    )
    .unwrap();
    let mapping = fixtures().join("good/portal/dossier.to-lis.yaml");
    let out = lienthong(
        &[
            "map",
            "--mapping",
            mapping.to_str().unwrap(),
            "--mappings",
            &dir("good"),
            "--schemas",
            &dir("schemas"),
            ok.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
        None,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success());
    assert!(
        stdout.contains("<DangKy") && stdout.contains("xmlns=\"urn:lis\""),
        "{stdout}"
    );
    assert!(stdout.contains("<HoTen>Lê Thị C</HoTen>"), "{stdout}");
    assert!(
        stdout.contains("<NgayNhan>2022-09-15T08:30:00+07:00</NgayNhan>"),
        "{stdout}"
    );
    assert!(
        stderr.contains("bad.json: json at line 3, column"),
        "{stderr}"
    );
}

#[test]
fn map_reports_unknown_lookup_codes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = tmp.path().join("m.yaml");
    let empty = tmp.path().join("no-schemas");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(
        &m,
        "id: t\nversion: 1\nsource: { system: a, message_type: b, format: json }\ntarget: { system: c, message_type: d, format: json }\nlookups: { k: { map: { \"1\": X } } }\nrules:\n  - { target: v, source: c, pipe: [{ lookup: k }] }\n",
    )
    .unwrap();
    let out = lienthong(
        &[
            "map",
            "--mapping",
            m.to_str().unwrap(),
            "--mappings",
            tmp.path().to_str().unwrap(),
            "--schemas",
            empty.to_str().unwrap(),
            "--jsonl",
        ],
        Some(b"{\"c\": \"1\"}\n{\"c\": \"2\"}\n"),
    );
    assert_eq!(text(&out.stdout), "{\"v\":\"X\"}\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 2: mapping t v1: rules[0] (target: v): lookup table 'k'")
            && stderr.contains("no entry for code '2'"),
        "{stderr}"
    );
}

#[test]
fn check_validates_the_hub_config_when_given() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("lienthong.yaml");
    std::fs::write(&cfg, "server:\n  listen: 127.0.0.1:8080\nversion: 1\n").unwrap();
    let out = lienthong(
        &[
            "check",
            "--config",
            cfg.to_str().unwrap(),
            "--mappings",
            &dir("good"),
            "--schemas",
            &dir("schemas"),
        ],
        None,
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("lienthong.yaml:3:1:") && err.contains("unknown field `version`"),
        "{err}"
    );
}
