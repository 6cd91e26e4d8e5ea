//! The codecs and the schema registry against the partners' reference samples.
//!
//! Every sample in `tests/fixtures/samples/` (copies of the partners' reference
//! samples, see its README) that a codec reads is decoded,
//! round-tripped (decode → encode → decode gives the same tree), and checked for the
//! properties the hub promises: repeated elements become arrays, a single element
//! becomes an array when the schema says so, identifiers keep their leading zeros,
//! Vietnamese text is unchanged byte for byte (NFC and NFD), and bad input fails with
//! an error that says where.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use router::codec::{self, ArrayPaths, DecodeOptions, EncodeOptions, Format};
use router::limits;
use router::schema::SchemaRegistry;
use router::Error;
use serde_json::{json, Value};

fn samples_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
    assert!(
        dir.is_dir(),
        "the reference samples should be at {}; they are needed by this test",
        dir.display()
    );
    dir
}

fn sample(name: &str) -> Vec<u8> {
    let path = samples_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", path.display()))
}

fn fixtures() -> SchemaRegistry {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas");
    SchemaRegistry::load(&dir).unwrap_or_else(|d| panic!("fixture schemas should load:\n{d}"))
}

/// Which codec reads a sample, by name; `None` for notes.
fn format_of(name: &str) -> Option<Format> {
    if name.ends_with(".txt") {
        Some(Format::StationFile)
    } else if name.starts_with("tax.") && name.ends_with(".xml") {
        Some(Format::TaxGip)
    } else if name.ends_with(".xml") {
        Some(Format::Xml)
    } else if name.ends_with(".json") {
        Some(Format::Json)
    } else {
        None
    }
}

fn round_trip(format: Format, bytes: &[u8], opts: &DecodeOptions) -> Value {
    let tree = codec::decode(format, bytes, opts)
        .unwrap_or_else(|e| panic!("{format} decode failed: {e}"));
    let encoded = codec::encode(format, &tree, &EncodeOptions::default())
        .unwrap_or_else(|e| panic!("{format} encode failed: {e}"));
    let again = codec::decode(format, &encoded, opts).unwrap_or_else(|e| {
        panic!(
            "{format} re-decode failed: {e}\n{}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(tree, again, "{format} round trip changed the tree");
    tree
}

#[test]
fn every_sample_decodes_and_round_trips() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(format) = format_of(&name) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let opts = DecodeOptions {
            array_paths: None,
            file_name: Some(&name),
        };
        round_trip(format, &bytes, &opts);
        // Every XML sample is also plain XML.
        if format == Format::TaxGip {
            round_trip(Format::Xml, &bytes, &opts);
        }
        seen += 1;
    }
    assert!(seen >= 9, "expected at least 9 codec samples, found {seen}");
}

#[test]
fn station_sample() {
    let name = "07_station_QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt";
    let tree = round_trip(
        Format::StationFile,
        &sample(name),
        &DecodeOptions {
            array_paths: None,
            file_name: Some(name),
        },
    );
    assert_eq!(tree["station_code"], "QNAM_CTYXYZ_NUOCTHAI01");
    assert_eq!(tree["measured_at"], "2022-09-15T10:30:00+07:00");
    let obs = tree["observations"].as_array().unwrap();
    assert_eq!(obs.len(), 7);
    assert_eq!(
        obs[0],
        json!({"parameter": "pH", "value": 7.21, "unit": "-",
        "measured_at": "2022-09-15T10:30:00+07:00", "status": "00"})
    );
    assert_eq!(obs[6]["status"], "01");
    // Exact decimal text, through the schema layer too.
    let schema = fixtures().find("stations", "observation.file").unwrap();
    let tree = schema.decode_with(&sample(name), Some(name)).unwrap();
    schema.validate(&tree).unwrap();
    assert_eq!(
        schema.correlation_id(&tree).as_deref(),
        Some("QNAM_CTYXYZ_NUOCTHAI01")
    );
    assert_eq!(tree["observations"][3]["value"].to_string(), "1.82");
}

#[test]
fn tax_reply_arrays_and_leading_zeros() {
    let registry = fixtures();
    let schema = registry.find("tax", "ledger.response").unwrap();
    assert!(
        schema.array_paths.contains("BODY/ROW"),
        "{:?}",
        schema.array_paths
    );
    assert!(schema
        .array_paths
        .contains("BODY/ROW/SOTHUE/TONG_TIEN/ROW_SOTHUE"));
    let tree = schema
        .decode(&sample("tax.query-land-tax-ledger.response.xml"))
        .unwrap();
    schema.validate(&tree).unwrap();
    // Single <ROW> + schema array → array of one; two <ROW_SOTHUE> → array of two.
    let rows = tree["BODY"]["ROW"]
        .as_array()
        .expect("ROW is an array of one");
    assert_eq!(rows.len(), 1);
    let items = rows[0]["SOTHUE"]["TONG_TIEN"]["ROW_SOTHUE"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["SO"], "049090000123");
    assert_eq!(items[1]["SHKB"], "0000");
    assert_eq!(rows[0]["SOTHUE"]["TRANGTHAI"], "01");
    assert_eq!(items[0]["MA_GCN"], "");
    assert_eq!(items[1]["TEN_TMUC"], "Lệ phí trước bạ nhà đất");
    assert_eq!(
        schema.correlation_id(&tree).as_deref(),
        Some("000.NN.NN.H47-220915-0001")
    );
    assert_eq!(
        schema.message_id_of(&tree).as_deref(),
        Some("GIP202209200000001")
    );

    // Without the schema, the single ROW stays an object.
    let plain = codec::decode(
        Format::TaxGip,
        &sample("tax.query-land-tax-ledger.response.xml"),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert!(plain["DATA"]["BODY"]["ROW"].is_object());

    // Schema-level round trip: encode (to the bare <DATA> document a delivery
    // carries; the tax connector adds the envelope once, when it sends) and
    // decode again. The codec itself still writes the envelope.
    let bytes = schema.encode(&tree).unwrap();
    assert!(String::from_utf8_lossy(&bytes).starts_with("<DATA><HEADER>"));
    assert_eq!(schema.decode(&bytes).unwrap(), tree);
    let enveloped = codec::encode(
        Format::TaxGip,
        &json!({"DATA": tree.clone()}),
        &Default::default(),
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&enveloped).contains("<![CDATA[<DATA>"));
    assert_eq!(schema.decode(&enveloped).unwrap(), tree);
}

#[test]
fn tax_request_envelope_is_unwrapped() {
    let schema = fixtures().find("tax", "ledger.request").unwrap();
    let tree = schema
        .decode(&sample("tax.query-land-tax-ledger.request.xml"))
        .unwrap();
    schema.validate(&tree).unwrap();
    assert_eq!(tree["HEADER"]["RECEIVER_NAME"], "Hệ Thống GIP");
    assert_eq!(tree["BODY"]["ROW"]["TRUYVAN"]["SO"], "049090000123");
    assert_eq!(tree["BODY"]["ROW"]["TYPE"], "00109");
    assert_eq!(tree["SECURITY"], "");
    assert_eq!(
        schema.correlation_id(&tree).as_deref(),
        Some("000.NN.NN.H47-220915-0001")
    );

    // As SOAP: header blocks and the operation element, prefixes kept, xmlns dropped.
    let msg = codec::soap::unwrap(&sample("tax.query-land-tax-ledger.request.xml")).unwrap();
    let header = msg.header.unwrap();
    assert_eq!(header["wsse:Security"]["@soapenv:mustUnderstand"], "1");
    assert_eq!(
        header["wsse:Security"]["wsse:UsernameToken"]["wsse:Username"],
        "PARTNER_CODE"
    );
    assert!(header["wsse:Security"].get("@xmlns:wsse").is_none());
    let inner = msg.body["gip:xuLyTruyVanMsg"]["in_msg"].as_str().unwrap();
    assert!(inner.starts_with("<DATA><HEADER><VERSION>1</VERSION>"));
}

#[test]
fn json_samples_keep_numbers_and_identifiers() {
    let registry = fixtures();
    let schema = registry.find("portal", "dossier.sync").unwrap();
    let tree = schema
        .decode(&sample("national-portal.DongBoHoSoMC.json"))
        .unwrap();
    schema.validate(&tree).unwrap();
    assert_eq!(
        schema.correlation_id(&tree).as_deref(),
        Some("000.NN.NN.H47-220915-0001")
    );
    assert_eq!(tree["data"][0]["SoDienThoai"], "0905000000");
    let tree = codec::decode(
        Format::Json,
        &sample("lis-to-tax.financial-obligation-transfer.json"),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(tree["giaChuyenNhuongTheoHopDong"].to_string(), "1500000000");
    assert_eq!(tree["thuaDat"]["dienTich"].to_string(), "150.0");
    assert_eq!(tree["nguoiSuDungDat"][0]["soGiayTo"], "049090000123");
    let out = codec::encode(Format::Json, &tree, &EncodeOptions::default()).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("\"dienTich\":150.0,"));
}

#[test]
fn lis_xml_schema_round_trip_with_namespaces_and_single_array() {
    let schema = fixtures().find("lis", "dossier.register").unwrap();
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DangKyHoSo xmlns="http://lis.quangnam.gov.vn/hoso" phienBan="2">
  <MaHoSo>000.00.32.H19-210708-0032</MaHoSo>
  <ChuSuDung><HoTen>Nguyễn Văn A</HoTen><SoGiayTo>049090000123</SoGiayTo></ChuSuDung>
  <TaiLieu><TepDinhKem id="101"><Ten>Đơn đăng ký.pdf</Ten></TepDinhKem></TaiLieu>
</DangKyHoSo>"#;
    let tree = schema.decode(xml.as_bytes()).unwrap();
    schema.validate(&tree).unwrap();
    assert_eq!(tree["@phienBan"], "2");
    assert_eq!(
        tree["TaiLieu"]["TepDinhKem"],
        json!([{"@id": "101", "Ten": "Đơn đăng ký.pdf"}])
    );
    let bytes = schema.encode(&tree).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains("<DangKyHoSo xmlns=\"http://lis.quangnam.gov.vn/hoso\" phienBan=\"2\">"),
        "{text}"
    );
    assert_eq!(schema.decode(&bytes).unwrap(), tree);

    // Validation lists every failing path.
    let Err(Error::Schema { violations, .. }) =
        schema.validate(&json!({"ChuSuDung": {"SoGiayTo": "49090000123"}}))
    else {
        panic!("expected violations")
    };
    assert!(
        violations.contains(&"/MaHoSo: is required".to_string()),
        "{violations:?}"
    );
    assert!(
        violations.contains(&"/ChuSuDung/HoTen: is required".to_string()),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("/ChuSuDung/SoGiayTo: ")),
        "{violations:?}"
    );
}

#[test]
fn vietnamese_text_is_byte_exact_in_nfc_and_nfd() {
    let nfc = "Trạm quan trắc nước thải Núi Thành";
    let nfd: String = "Tra\u{323}m quan tra\u{306}\u{301}c nu\u{31b}o\u{31b}\u{301}c tha\u{309}i Nu\u{301}i Tha\u{300}nh".into();
    assert_ne!(nfc.as_bytes(), nfd.as_bytes());
    for text in [nfc, nfd.as_str()] {
        let json = round_trip(
            Format::Json,
            format!("{{\"ten\":\"{text}\"}}").as_bytes(),
            &DecodeOptions::default(),
        );
        assert_eq!(json["ten"].as_str().unwrap().as_bytes(), text.as_bytes());

        let xml = round_trip(
            Format::Xml,
            format!("<R t=\"{text}\"><Ten>{text}</Ten></R>").as_bytes(),
            &DecodeOptions::default(),
        );
        assert_eq!(
            xml["R"]["Ten"].as_str().unwrap().as_bytes(),
            text.as_bytes()
        );
        assert_eq!(xml["R"]["@t"].as_str().unwrap().as_bytes(), text.as_bytes());

        let tax = round_trip(
            Format::TaxGip,
            format!("<DATA><BODY><TEN>{text}</TEN></BODY></DATA>").as_bytes(),
            &DecodeOptions::default(),
        );
        assert_eq!(
            tax["DATA"]["BODY"]["TEN"].as_str().unwrap().as_bytes(),
            text.as_bytes()
        );

        let station = round_trip(
            Format::StationFile,
            format!("{text}\t1.0\tmg/L\t20220915103000\t00\n").as_bytes(),
            &DecodeOptions::default(),
        );
        assert_eq!(
            station["observations"][0]["parameter"]
                .as_str()
                .unwrap()
                .as_bytes(),
            text.as_bytes()
        );
    }
}

#[test]
fn repeated_elements_and_array_paths_in_plain_xml() {
    let xml = b"<R><Tep>a</Tep><Tep>b</Tep><Mot><X>1</X></Mot></R>";
    let tree = round_trip(Format::Xml, xml, &DecodeOptions::default());
    assert_eq!(tree, json!({"R": {"Tep": ["a", "b"], "Mot": {"X": "1"}}}));
    let paths: ArrayPaths = ["Mot", "Mot/X"].into_iter().collect();
    let tree = round_trip(
        Format::Xml,
        xml,
        &DecodeOptions {
            array_paths: Some(&paths),
            file_name: None,
        },
    );
    assert_eq!(
        tree,
        json!({"R": {"Tep": ["a", "b"], "Mot": [{"X": ["1"]}]}})
    );
}

/// Each bad input fails with a codec error that has a position.
#[test]
fn bad_input_errors_have_positions() {
    let deep_json = "[".repeat(limits::MAX_DEPTH + 1);
    let deep_xml = "<a>".repeat(limits::MAX_DEPTH + 1);
    let huge = vec![b' '; limits::MAX_BODY_BYTES + 1];
    let huge_station = vec![b'\n'; limits::MAX_STATION_FILE_BYTES + 1];
    let station_ok = "pH\t7.21\t-\t20220915103000\t00\n";
    let cases: Vec<(&str, Format, Vec<u8>, &str, &str)> = vec![
        ("malformed JSON", Format::Json, b"{\"a\": [1, 2}".to_vec(), "line 1, column 12", "malformed JSON"),
        ("JSON not UTF-8", Format::Json, b"{\"ten\": \"Nguy\xE1n\"}".to_vec(), "byte 13 (line 1, column 14)", "not valid UTF-8"),
        ("JSON too deep", Format::Json, deep_json.into_bytes(), "line 1, column 65", "MAX_DEPTH"),
        ("JSON too large", Format::Json, huge.clone(), "byte 8388608", "limit"),
        ("malformed XML", Format::Xml, b"<a><b></a>".to_vec(), "line 1, column 7", "malformed XML"),
        ("XML not UTF-8", Format::Xml, b"<a>\n\xFF</a>".to_vec(), "byte 4 (line 2, column 1)", "not valid UTF-8"),
        ("DOCTYPE", Format::Xml, b"<?xml version=\"1.0\"?>\n<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>".to_vec(), "line 2, column 1", "DOCTYPE"),
        ("ENTITY", Format::Xml, b"<!DOCTYPE a [<!ENTITY x \"y\">]>\n<a>&x;</a>".to_vec(), "line 1, column 1", "ENTITY"),
        ("undeclared entity", Format::Xml, b"<a>\n&x;</a>".to_vec(), "line 2, column 1", "unknown entity"),
        ("XML too deep", Format::Xml, deep_xml.into_bytes(), "line 1, column 193", "MAX_DEPTH"),
        ("XML too large", Format::Xml, huge, "byte 8388608", "limit"),
        ("unclosed tag", Format::Xml, b"<a>\n <b>x</b>\n".to_vec(), "line 3, column 1", "never closed"),
        ("unknown closing tag", Format::Xml, b"<a>x</c>".to_vec(), "line 1, column 5", "malformed XML"),
        ("tax DATA broken in CDATA", Format::TaxGip,
            b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><gip:op><in_msg><![CDATA[<DATA><BODY>]]></in_msg></gip:op></s:Body></s:Envelope>".to_vec(),
            "line 1, column 13", "never closed"),
        ("station bad line", Format::StationFile, format!("{station_ok}COD\t42.5\tmg/L\n").into_bytes(), "line 2", "5 TAB-separated"),
        ("station bad field", Format::StationFile, format!("{station_ok}COD\t4x\tmg/L\t20220915103000\t00\n").into_bytes(), "line 2 (field 2: value)", "not a decimal"),
        ("station date does not exist", Format::StationFile, format!("{station_ok}COD\t4\tmg/L\t20220230103000\t00\n").into_bytes(), "line 2 (field 4: time)", "2022-02-30"),
        ("station too large", Format::StationFile, huge_station, "byte 1048576", "limit"),
    ];
    for (what, format, bytes, position, message) in cases {
        let err = match codec::decode(format, &bytes, &DecodeOptions::default()) {
            Ok(tree) => panic!("{what}: expected an error, got {tree}"),
            Err(e) => e,
        };
        assert_eq!(err.position, position, "{what}: {err}");
        assert!(err.message.contains(message), "{what}: {err}");
        // And it reaches the router error with the position in its text.
        let text = Error::from(err).to_string();
        assert!(text.contains(position), "{what}: {text}");
    }
}

#[test]
fn broken_schemas_are_all_reported_with_positions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas-broken");
    let diags = SchemaRegistry::load(&dir).expect_err("broken schemas must not load");
    let lines: Vec<String> = diags.0.iter().map(ToString::to_string).collect();
    let find = |file: &str, needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(file) && l.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "no diagnostic for {file} containing {needle:?} in:\n{}",
                    lines.join("\n")
                )
            })
            .clone()
    };
    assert!(find("syntax.schema.json", "not valid JSON").contains("syntax.schema.json:4:"));
    assert!(
        find("annotation.schema.json", "format \"yaml\"").contains("annotation.schema.json:4:5")
    );
    assert!(find("annotation.schema.json", "unknown key \"corelation\"")
        .contains("annotation.schema.json:5:5"));
    assert!(find("keyword.schema.json", "invalid JSON Schema").contains("keyword.schema.json:5:"));
    assert_eq!(diags.len(), 4, "{}", lines.join("\n"));

    let missing = SchemaRegistry::load(Path::new("/nonexistent/schemas")).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("cannot read the schema directory"),
        "{missing}"
    );
}

#[test]
fn registry_lookup() {
    let registry = fixtures();
    assert_eq!(registry.len(), 5);
    let ids: Vec<&str> = registry.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "lis/dossier.register",
            "portal/dossier.sync",
            "stations/observation.file",
            "tax/ledger.request",
            "tax/ledger.response"
        ]
    );
    let lis = registry.get("lis/dossier.register").unwrap();
    assert_eq!(lis.format, Format::Xml);
    assert_eq!(lis.xml_root.as_deref(), Some("DangKyHoSo"));
    assert_eq!(
        lis.namespaces.get("").map(String::as_str),
        Some("http://lis.quangnam.gov.vn/hoso")
    );
    assert!(lis.array_paths.contains("TaiLieu/TepDinhKem"));
    assert!(registry.find("lis", "nope").is_none());
}
