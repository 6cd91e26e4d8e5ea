//! Mapping engine, schema checks, mapping tests and routes, on the fixtures in
//! `tests/fixtures/mappings/` and the real `schemas/` registry code.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use router::mapping::{run_tests, CaseOutcome, MappingSet, NoSchemas};
use router::routes::Routes;
use router::schema::SchemaRegistry;
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mappings")
}

fn registry() -> SchemaRegistry {
    SchemaRegistry::load(&fixtures().join("schemas")).expect("fixture schemas load")
}

fn compile(text: &str) -> Result<router::mapping::CompiledMapping, router::Diagnostics> {
    MappingSet::compile_str("m.yaml", text, &fixtures().join("good"), &registry())
}

const HEADER: &str = "version: 1
source: { system: portal, message_type: dossier, format: json }
target: { system: lis, message_type: register, format: xml, xml: { root: DangKy } }
";

#[test]
fn fixture_mappings_load_and_their_tests_pass() {
    let reg = registry();
    let set = MappingSet::load(&fixtures().join("good"), &reg).unwrap_or_else(|d| panic!("{d}"));
    let m = set
        .get("portal/dossier.to-lis")
        .expect("id defaults to the path");
    assert_eq!(m.version, 3);
    assert_eq!(m.content_hash.len(), 64);
    let report = run_tests(&set, &reg, None);
    for r in &report.results {
        assert_eq!(r.outcome, CaseOutcome::Passed, "{r}");
    }
    assert_eq!(report.summary_line(), "4 passed, 0 failed");
}

#[test]
fn a_failing_case_reports_a_unified_diff() {
    let reg = registry();
    let text = format!(
        "{HEADER}rules:
  - {{ target: MaHoSo, source: MaHoSo }}
  - {{ target: NgayNhan, source: NgayTiepNhan }}
  - {{ target: TrangThai, const: \"2\" }}
tests:
  - name: wrong
    input: {{ MaHoSo: A, NgayTiepNhan: \"20220915083000\" }}
    expect: {{ MaHoSo: B, NgayNhan: \"20220915083000\", TrangThai: \"2\" }}
  - name: error expected but none
    input: {{ MaHoSo: A, NgayTiepNhan: \"20220915083000\" }}
    expect_error: nope
"
    );
    let m = MappingSet::compile_str("m.yaml", &text, &fixtures().join("good"), &reg)
        .unwrap_or_else(|d| panic!("{d}"));
    let set = MappingSet::from_mappings([m]);
    let report = run_tests(&set, &reg, None);
    assert_eq!(report.summary_line(), "0 passed, 2 failed");
    let shown = report.results[0].to_string();
    assert!(
        shown.contains("-  \"MaHoSo\": \"B\",") && shown.contains("+  \"MaHoSo\": \"A\","),
        "{shown}"
    );
    assert!(shown.contains("m.yaml:"), "{shown}");
    assert!(matches!(
        report.results[1].outcome,
        CaseOutcome::ExpectedError { .. }
    ));
}

#[test]
fn load_errors_carry_positions_and_are_all_reported() {
    let err = MappingSet::load(&fixtures().join("broken"), &NoSchemas).unwrap_err();
    let text = err.to_string();
    let file = fixtures()
        .join("broken/portal/bad.yaml")
        .display()
        .to_string();
    assert!(
        text.contains(&format!(
            "{file}:5:23: rules[0] (target: MaHoSo): unknown key 'sorce' (did you mean 'source'?"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:9:9: rules[1] (target: NgayNhan): unknown op 'dat' (did you mean 'date'?"
        )),
        "{text}"
    );
    assert!(text.contains("no lookup table named 'nosuch'"), "{text}");
    assert!(err.len() >= 3, "{text}");
}

#[test]
fn structural_errors() {
    let e = compile("version: 0\nsource: 3\nrules: []\nextra: 1\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.yaml:1:10: version: version must be a whole number"),
        "{e}"
    );
    assert!(e.contains("m.yaml:2:9: source: expected a mapping"), "{e}");
    assert!(
        e.contains("m.yaml:4:1: mapping: unknown key 'extra'"),
        "{e}"
    );
    assert!(e.contains("missing required key 'target'"), "{e}");
    let e = compile(&format!(
        "{HEADER}rules:\n  - {{ target: MaHoSo, source: \"a..b\" }}\n  - {{ target: X, when: '.a ==' , const: x }}\n  - {{ target: Y, pipe: [{{date: {{from: yyyy-QQ, to: rfc3339}}}}], source: a }}\n  - {{ target: Z, source: a, const: b }}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("m.yaml:5:31: rules[0] (target: MaHoSo): path 'a..b' has an empty segment"),
        "{e}"
    );
    assert!(
        e.contains("rules[1] (target: X): jq expression does not parse"),
        "{e}"
    );
    assert!(e.contains("unsupported letter 'QQ'"), "{e}");
    assert!(e.contains("give only one of"), "{e}");
    let e = compile("a: [1\n").unwrap_err().to_string();
    assert!(e.contains("m.yaml:") && e.contains("invalid YAML"), "{e}");
}

#[test]
fn schema_checks_find_wrong_paths_missing_fields_and_type_conflicts() {
    let e = compile(&format!(
        "{HEADER}rules:
  - {{ target: MaHoSo, source: MaHoSO }}
  - {{ target: TrangThai, const: \"7\" }}
  - {{ target: LePhi, source: LePhi }}
  - {{ target: MoTa, source: ThuaDat }}
  - {{ target: ChuSoHuu.Ten, source: ChuHoSo }}
  - {{ target: TenXa, source: ThuaDat.MaXaa }}
"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("m.yaml:5:31: rules[0] (target: MaHoSo): source path 'MaHoSO': 'MaHoSO' is not in the source schema; did you mean 'MaHoSo'?"), "{e}");
    assert!(
        e.contains(
            "rules[1] (target: TrangThai): const \"7\" is not accepted by target field 'TrangThai'"
        ),
        "{e}"
    );
    assert!(e.contains("rules[2] (target: LePhi): source 'LePhi' is a number, but target field 'LePhi' must be string; add `string`"), "{e}");
    assert!(e.contains("rules[3] (target: MoTa): source 'ThuaDat' is an object, but target field 'MoTa' must be string"), "{e}");
    assert!(e.contains("rules[4] (target: ChuSoHuu.Ten): target path 'ChuSoHuu.Ten': 'ChuSoHuu.Ten' is not in the target schema"), "{e}");
    assert!(
        e.contains("'ThuaDat.MaXaa' is not in the source schema; did you mean 'MaXa'?")
            || e.contains("known fields here: MaXa, SoThua, SoTo"),
        "{e}"
    );
    assert!(
        e.contains("target schema 'lis/register' requires 'NgayNhan', but no rule produces it"),
        "{e}"
    );
    // a lookup value the target enum rejects
    let e = compile(&format!(
        "{HEADER}lookups: {{ k: {{ map: {{ \"1\": TRUC_TIEP, \"2\": ONLINE }} }} }}
rules:
  - {{ target: MaHoSo, source: MaHoSo }}
  - {{ target: NgayNhan, source: NgayTiepNhan }}
  - {{ target: TrangThai, const: \"2\" }}
  - {{ target: KenhNop, source: KenhNop, pipe: [{{ lookup: k }}] }}
"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("lookup table 'k' maps '2' to \"ONLINE\""), "{e}");
}

#[test]
fn runtime_errors_name_the_rule_and_the_problem() {
    let m = compile(&format!(
        "{HEADER}lookups: {{ k: {{ map: {{ \"1\": TRUC_TIEP }} }} }}
rules:
  - {{ target: MaHoSo, source: MaHoSo, required: true }}
  - target: NgayNhan
    source: NgayTiepNhan
    pipe: [{{ date: {{ from: yyyyMMddHHmmss, to: rfc3339 }} }}]
  - {{ target: TrangThai, const: \"2\" }}
  - {{ target: KenhNop, source: KenhNop, pipe: [{{ lookup: k }}] }}
"
    ))
    .unwrap_or_else(|d| panic!("{d}"));
    let e = m
        .apply(&json!({"MaHoSo": "A", "NgayTiepNhan": "20230230000000"}))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("rules[1] (target: NgayNhan): date '20230230000000' does not exist"),
        "{e}"
    );
    assert!(!e.is_retryable());
    let e = m
        .apply(&json!({"MaHoSo": "A", "NgayTiepNhan": "20230228000000", "KenhNop": "5"}))
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "rules[3] (target: KenhNop): lookup table 'k' (m.yaml) has no entry for code '5'"
        ),
        "{e}"
    );
    let e = m
        .apply(&json!({"NgayTiepNhan": "20230228000000"}))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("rules[0] (target: MaHoSo): required value is missing (source 'MaHoSo'"),
        "{e}"
    );
    let ok = m
        .apply(&json!({"MaHoSo": "A", "NgayTiepNhan": "20230228000000", "KenhNop": 1}))
        .unwrap();
    assert_eq!(
        ok,
        json!({"MaHoSo": "A", "NgayNhan": "2023-02-28T00:00:00+07:00", "TrangThai": "2", "KenhNop": "TRUC_TIEP"})
    );
}

#[test]
fn concat_join_default_and_root_paths() {
    let m = MappingSet::compile_str(
        "m.yaml",
        "id: t\nversion: 1
source: { system: a, message_type: b, format: json }
target: { system: c, message_type: d, format: json }
rules:
  - { target: ten, concat: [ho, dem, ten], separator: \" \" }
  - { target: ma, join: [a, b] }
  - { target: x.y, default: 5 }
  - target: ds
    for_each: items
    rules:
      - { target: parent, source: $.ma }
      - { target: v, source: v, pipe: [string, { pad_left: { width: 3 } }] }
  - { target: \"l[]\", source: ho }
  - { target: \"l[]\", source: ten }
",
        Path::new("."),
        &NoSchemas,
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let out = m
        .apply(&json!({"ho": "Nguyễn", "ten": "An", "a": "X", "b": 1, "ma": "M", "items": [{"v": 7}, {"v": 42}]}))
        .unwrap();
    assert_eq!(
        out,
        json!({"ten": "Nguyễn An", "ma": "X1", "x": {"y": 5},
               "ds": [{"parent": "M", "v": "007"}, {"parent": "M", "v": "042"}], "l": ["Nguyễn", "An"]})
    );
}

#[test]
fn routes_resolve_and_are_checked() {
    let reg = registry();
    let set = MappingSet::load(&fixtures().join("good"), &reg).unwrap_or_else(|d| panic!("{d}"));
    let routes = Routes::parse(
        "routes.yaml",
        "routes:
  - id: filed
    from: { system: portal, message_type: dossier }
    when: '.TrangThaiHoSo == \"2\"'
    to:
      - { system: lis, mapping: portal/dossier.to-lis }
",
        &set,
        &reg,
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let hit = routes.resolve("portal", "dossier", &json!({"TrangThaiHoSo": "2"}));
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0].route_id, "filed");
    assert_eq!(hit[0].mapping.id, "portal/dossier.to-lis");
    assert!(routes
        .resolve("portal", "dossier", &json!({"TrangThaiHoSo": "4"}))
        .is_empty());
    assert!(routes.resolve("other", "dossier", &json!({})).is_empty());

    let e = Routes::parse(
        "routes.yaml",
        "routes:
  - id: a
    from: { system: portal, message_type: dossier }
    to:
      - { system: tax, mapping: portal/dossier.to-lis }
      - { system: lis, mapping: portal/nope }
  - id: a
    from: { system: lis, message_type: register }
    when: '.x =='
    to: []
",
        &set,
        &reg,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("routes.yaml:5:19: routes[0] (a).to[0]: mapping 'portal/dossier.to-lis' writes for system 'lis', not 'tax'"), "{e}");
    assert!(
        e.contains("routes.yaml:6:33: routes[0] (a).to[1]: no mapping with id 'portal/nope'"),
        "{e}"
    );
    assert!(e.contains("route id 'a' is used twice"), "{e}");
}

#[test]
fn the_real_mappings_load_and_pass_their_tests() {
    // The repository's own mappings and schemas (written by the content engineers).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    let reg = SchemaRegistry::load(&root.join("schemas")).unwrap_or_else(|d| panic!("{d}"));
    let set = MappingSet::load(&root.join("mappings"), &reg).unwrap_or_else(|d| panic!("{d}"));
    let report = run_tests(&set, &reg, None);
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome != CaseOutcome::Passed)
        .map(|r| r.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        report.summary_line()
    );
}
