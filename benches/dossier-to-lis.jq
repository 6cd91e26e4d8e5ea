# The province-portal -> LIS dossier translation of
# mappings/province-portal/dossier-filed.to-lis.yaml, written by hand in jq, for the
# benchmark in BENCHMARKS.md ("Mapping engine"). Run with:
#   jq -c --slurpfile lk benches/lookups.json -f benches/dossier-to-lis.jq
# jq has no Unicode normalization, so the `nfc` steps are left out (jq does less work),
# and it has no date validation: dates are re-cut as text.
def trim: sub("^\\s+"; "") | sub("\\s+$"; "");
def date14: "\(.[0:4])-\(.[4:6])-\(.[6:8])T\(.[8:10]):\(.[10:12]):\(.[12:14])+07:00";
def nonnull: with_entries(select(.value != null));
def giay: {"CCCD": "5", "CMND": "1", "HO_CHIEU": "3"}[.] // "5";
def party($role): {
    "@vaiTro": $role,
    hoTen: (.HoTen | trim),
    maSoDinhDanh: .SoGiayTo,
    diaChi: (.DiaChi | if . then trim else null end),
    GiayToTuyThan: { loaiGiayToTuyThanId: (if .LoaiGiayTo then .LoaiGiayTo | giay else "5" end), soGiayTo: .SoGiayTo }
  } | nonnull;
$lk[0] as $t
| {
    "@phienBan": "1",
    hoSoTiepNhanId: (.MaHoSo | trim),
    maThuTucHanhChinh: (.MaTTHC | trim),
    tenThuTucHanhChinh: (.TenTTHC | if . then trim else null end),
    loaiBienDong: "CHUYEN_NHUONG",
    thoiDiemTiepNhan: (.NgayTiepNhan | date14),
    thoiDiemHenTra: (.NgayHenTra | if . then date14 else null end),
    coQuanTiepNhan: .MaDonVi,
    giaChuyenNhuong: (.GiaChuyenNhuong | if . then tostring else null end),
    ThuaDat: (.ThuaDat | {
      tinhId: (.MaTinh // "49"),
      huyenId: $t.district[.MaXa],
      xaId: .MaXa,
      tenXa: $t.commune[.MaXa],
      soHieuToBanDo: .SoHieuToBanDo,
      soThuTuThua: .SoThuTuThua,
      dienTich: .DienTich,
      diaChi: (.DiaChi | if . then trim else null end),
      ListMucDichSuDung: { MucDichSuDung: [ .MucDichSuDung[] | {
        loaiMucDichSuDungId: (.LoaiDat | trim),
        tenLoaiMucDichSuDung: $t.land_use[.LoaiDat | trim],
        dienTich: .DienTich,
        thoiHanSuDung: .ThoiHan } | nonnull ] }
    } | nonnull),
    GiayChungNhan: (.GiayChungNhan | if . then { soPhatHanh: .SoPhatHanh, soVaoSo: .SoVaoSo, ngayVaoSo: .NgayCap } | nonnull else null end),
    ListChuSuDung: { ChuSuDung: ([.BenChuyenNhuong[] | party("BEN_CHUYEN")] + [.BenNhanChuyenNhuong[] | party("BEN_NHAN")]) },
    ListTaiLieu: ([ .TaiLieuNop[]? | select(.IsDeleted != "True") | {
      "@id": .TepDinhKemId, tenTaiLieu: .TenTepDinhKem, duongDan: .DuongDanTaiTepTin } | nonnull ]
      | if . == [] then null else { TaiLieu: . } end)
  }
| nonnull
