//! Mapping engine: applying a compiled mapping to any JSON input never panics, never
//! hangs, and produces a tree the JSON encoder accepts.
//!
//! The mapping is fixed and small but touches every kind of rule: required/default,
//! const, pipes (trim, nfc, date, decimal, inline lookup), template, for_each, when,
//! and the jq escape hatch.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lienthong_core::codec::{decode, encode, DecodeOptions, EncodeOptions, Format};
use lienthong_core::mapping::{CompiledMapping, MappingSet, NoSchemas};

const MAPPING: &str = r#"
id: fuzz/dossier.to-lis
version: 1
source: { system: fuzz, message_type: dossier, format: json }
target: { system: lis, message_type: dossier.register, format: json }
lookups:
  kenh_nop: { map: { "1": TRUC_TIEP, "2": TRUC_TUYEN }, fallback: KHAC }
rules:
  - { target: MaHoSo, source: MaHoSo, pipe: [trim], required: true }
  - { target: TrangThai, const: "2" }
  - target: NgayNhan
    source: NgayTiepNhan
    pipe:
      - date: { from: "yyyyMMddHHmmss", to: rfc3339, tz: Asia/Ho_Chi_Minh }
    default: ""
  - { target: ChuSuDung.HoTen, source: ChuHoSo, pipe: [trim, nfc], default: "" }
  - { target: KenhNop, source: KenhNop, pipe: [{ lookup: kenh_nop }], default: KHAC }
  - target: LePhi
    source: DanhSachLePhi[0].Gia
    pipe: [{ decimal: { scale: 0 } }]
    default: "0"
  - target: MoTa
    template: "Chuyển nhượng thửa {ThuaDat.SoThua}, tờ {ThuaDat.SoTo}"
  - target: TaiLieu.TepDinhKem
    for_each: TaiLieuNop
    rules:
      - { target: "@id", source: TepDinhKemId, default: "" }
      - { target: Ten, source: TenTepDinhKem, pipe: [nfc], default: "" }
  - target: GhiChu
    when: '.TrangThaiHoSo == "6"'
    expr: '"NVTC: " + (.DanhSachLePhi | length | tostring)'
"#;

fn mapping() -> &'static CompiledMapping {
    static MAPPING_CELL: OnceLock<CompiledMapping> = OnceLock::new();
    MAPPING_CELL.get_or_init(|| {
        MappingSet::compile_str("fuzz/dossier.to-lis.yaml", MAPPING, Path::new("/nonexistent"), &NoSchemas)
            .unwrap_or_else(|d| panic!("the fuzz mapping must compile:\n{d}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = decode(Format::Json, data, &DecodeOptions::default()) else { return };
    if let Ok(output) = mapping().apply(&input) {
        encode(Format::Json, &output, &EncodeOptions::default()).expect("a mapped tree must encode as JSON");
    }
});
