#!/usr/bin/env python3
"""Generate N province-portal `dossier.filed` messages as JSON lines (deterministic).

Usage: benches/gen_dossiers.py N [mappings_dir] > dossiers.jsonl

Each line is a realistic transfer dossier (chuyển nhượng QSDĐ) that validates against
schemas/province-portal/dossier.filed.schema.json: 1-4 attached files (some deleted),
1-2 land-use purposes, 1-2 parties on each side, Vietnamese names (some in NFD),
communes and land-use codes drawn from the real lookup tables. Also writes
benches/lookups.json (the lookup tables as JSON) for the jq translation.
"""
import json
import random
import sys
import unicodedata
from pathlib import Path

import yaml

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
mappings = Path(sys.argv[2] if len(sys.argv) > 2 else "mappings")
rng = random.Random(20221019)


def table(name):
    raw = yaml.safe_load((mappings / "lookups" / name).read_text(encoding="utf-8"))
    if isinstance(raw, dict) and isinstance(raw.get("map"), dict):
        raw = raw["map"]
    return {str(k): v for k, v in raw.items() if k != "fallback"}


communes = table("communes-gso.yaml")
districts = table("commune-district-gso.yaml")
land_use = table("land-use-types.yaml")
Path(__file__).with_name("lookups.json").write_text(
    json.dumps({"commune": communes, "district": districts, "land_use": land_use}, ensure_ascii=False),
    encoding="utf-8",
)
commune_codes = sorted(c for c in communes if c in districts)
land_codes = sorted(land_use)
ho = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ"]
dem = ["Văn", "Thị", "Minh", "Ngọc", "Thu", "Quang", "Hữu", "Thanh"]
ten = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Khánh", "Lan", "Nhung", "Quân", "Ánh", "Đức"]
kinds = ["CCCD", "CMND", "HO_CHIEU"]


def name():
    s = f"{rng.choice(ho)} {rng.choice(dem)} {rng.choice(ten)}"
    return unicodedata.normalize("NFD", s) if rng.random() < 0.2 else s


def party():
    p = {"HoTen": (" " if rng.random() < 0.1 else "") + name(), "SoGiayTo": f"0490{rng.randrange(10**8):08d}",
         "LoaiGiayTo": rng.choice(kinds), "DiaChi": f"Tổ {rng.randrange(1, 20)}, {communes[rng.choice(commune_codes)]}"}
    return p


out = sys.stdout
for i in range(n):
    day = rng.randrange(1, 29)
    month = rng.randrange(1, 13)
    xa = rng.choice(commune_codes)
    docs = []
    for j in range(rng.randrange(1, 5)):
        d = {"TepDinhKemId": f"{i:06d}{j:02d}", "TenTepDinhKem": f"Tài_liệu_{j}.pdf",
             "DuongDanTaiTepTin": f"https://motcua.quangnam.gov.vn/download?id={i}-{j}",
             "IsDeleted": "True" if rng.random() < 0.1 else "False"}
        docs.append(d)
    purposes = [{"LoaiDat": rng.choice(land_codes), "DienTich": f"{rng.randrange(30, 500)}.{rng.randrange(10)}",
                 "ThoiHan": "Lâu dài"} for _ in range(rng.randrange(1, 3))]
    msg = {
        "MaHoSo": f"000.00.32.H47-2209{day:02d}-{i % 10000:04d}",
        "MaTTHC": "1.004227",
        "TenTTHC": "Đăng ký biến động quyền sử dụng đất",
        "MaDonVi": "000.00.32.H47",
        "ChuHoSo": name(),
        "TrichYeuHoSo": f"Chuyển nhượng QSDĐ thửa {rng.randrange(1, 900)}, tờ bản đồ {rng.randrange(1, 60)}",
        "NgayTiepNhan": f"2022{month:02d}{day:02d}{rng.randrange(7, 17):02d}{rng.randrange(60):02d}00",
        "NgayHenTra": f"2022{month:02d}{day:02d}170000",
        "TrangThaiHoSo": "2",
        "TaiLieuNop": docs,
        "ThuaDat": {"SoThuTuThua": str(rng.randrange(1, 900)), "SoHieuToBanDo": str(rng.randrange(1, 60)),
                    "MaXa": xa, "MaTinh": "49", "DiaChi": f"Thửa đất tại {communes[xa]}, tỉnh Quảng Nam",
                    "DienTich": f"{rng.randrange(50, 900)}.0", "MucDichSuDung": purposes},
        "GiayChungNhan": {"SoPhatHanh": f"CS {rng.randrange(10**6):06d}", "SoVaoSo": f"CS{rng.randrange(10**5):05d}",
                          "NgayCap": "2019-05-20"},
        "BenChuyenNhuong": [party() for _ in range(rng.randrange(1, 3))],
        "BenNhanChuyenNhuong": [party() for _ in range(rng.randrange(1, 3))],
        "GiaChuyenNhuong": rng.randrange(1, 50) * 100_000_000,
    }
    out.write(json.dumps(msg, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")
