#!/bin/sh
# Mapping engine benchmark (see BENCHMARKS.md, section "Mapping engine").
#
#   cargo build --release --bin lienthong
#   benches/mapping.sh [N] [path/to/lienthong]
#
# Generates N province-portal dossiers as JSON lines, then times over the same input:
#   1. parse + serialize only        lienthong map --jsonl --identity
#   2. the real mapping              lienthong map --jsonl --no-validate   (dossier-filed.to-lis)
#   3. the mapping with validation   lienthong map --jsonl                 (source + target JSON Schema)
#   4. the same translation in jq    jq -c -f benches/dossier-to-lis.jq
#   5. the same in jaq, if installed
# and checks that lienthong and jq produce the same trees (after NFC, which jq cannot do).
set -eu
N=${1:-200000}
BIN=${2:-target/release/lienthong}
MAPPING=mappings/province-portal/dossier-filed.to-lis.yaml
DIR=${TMPDIR:-/tmp}/lienthong-bench
mkdir -p "$DIR"
IN=$DIR/dossiers-$N.jsonl
[ -f "$IN" ] || python3 benches/gen_dossiers.py "$N" > "$IN"
python3 benches/gen_dossiers.py 1 > /dev/null   # (re)writes benches/lookups.json
BYTES=$(wc -c < "$IN")
echo "input: $N dossiers, $BYTES bytes ($IN)"

run() {
    name=$1; shift
    start=$(date +%s.%N)
    "$@" < "$IN" > "$DIR/out-$name.jsonl"
    end=$(date +%s.%N)
    python3 - "$name" "$start" "$end" "$N" "$BYTES" <<'PY'
import sys
name, s, e, n, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t = e - s
print(f"{name:<22} {t:7.2f} s {n / t:10.0f} msg/s {b / t / 1e6:7.1f} MB/s")
PY
}

run identity "$BIN" map --mapping "$MAPPING" --jsonl --identity
run map-no-validate "$BIN" map --mapping "$MAPPING" --jsonl --no-validate
run map-validate "$BIN" map --mapping "$MAPPING" --jsonl
run jq jq -c --slurpfile lk benches/lookups.json -f benches/dossier-to-lis.jq
if command -v jaq > /dev/null; then
    run jaq jaq -c --slurpfile lk benches/lookups.json -f benches/dossier-to-lis.jq
fi

python3 - "$DIR/out-map-no-validate.jsonl" "$DIR/out-jq.jsonl" <<'PY'
import json, sys, unicodedata
def nfc(v):
    if isinstance(v, str): return unicodedata.normalize("NFC", v)
    if isinstance(v, list): return [nfc(x) for x in v]
    if isinstance(v, dict): return {k: nfc(x) for k, x in v.items()}
    return v
with open(sys.argv[1]) as a, open(sys.argv[2]) as b:
    diff = sum(1 for x, y in zip(a, b) if nfc(json.loads(x)) != nfc(json.loads(y)))
print(f"lienthong vs jq: {diff} differing outputs")
PY
