#!/bin/bash
# The main job (examples/cc-clean.json) on the bundled Common Crawl samples:
# it finishes, its output is valid zstd JSONL without e-mail addresses, the
# manifest matches the files, and the counters reconcile
# (records in = records out + removed by each operator + rejected).
# Then the same job runs with its inputs, job store and output on S3 when a
# server is configured, and must give the same records.
set -u
export AWS_EC2_METADATA_DISABLED=true
ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${DSPARK_BIN:-$ROOT/build/dspark}
WORK=$(mktemp -d /tmp/dsp-main-job.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
unset DSPARK_STORE DSPARK_FAULTS
export DSPARK_LOG_LEVEL=warn

die() {
    echo "FAIL: $*"
    exit 1
}

# make_spec OUT_SPEC OUTPUT_URI INPUT_URI...: examples/cc-clean.json with
# other inputs and output.
make_spec() {
    python3 - "$ROOT/examples/cc-clean.json" "$@" <<'PY'
import json, sys
src, out_spec, output = sys.argv[1], sys.argv[2], sys.argv[3]
spec = json.load(open(src))
spec["input"] = sys.argv[4:]
spec["output"]["uri"] = output
json.dump(spec, open(out_spec, "w"), indent=2)
PY
}

# check_output DIR: validate a local copy of the output prefix; prints the
# sorted document ids to DIR.ids.
check_output() {
    python3 - "$1" <<'PY' || exit 1
import hashlib, json, os, re, subprocess, sys
d = sys.argv[1]
manifest = json.load(open(os.path.join(d, "_MANIFEST.json")))
assert os.path.exists(os.path.join(d, "_SUCCESS")), "_SUCCESS missing"
email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ids, records = [], 0
for f in manifest["files"]:
    path = os.path.join(d, f["name"])
    raw = open(path, "rb").read()
    assert len(raw) == f["size"], f"{f['name']}: size {len(raw)} != manifest {f['size']}"
    assert hashlib.sha256(raw).hexdigest() == f["sha256"], f"{f['name']}: sha256 differs"
    text = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    lines = text.decode("utf-8").splitlines()
    assert len(lines) == f["records"], f"{f['name']}: {len(lines)} lines, manifest {f['records']}"
    for n, line in enumerate(lines):
        doc = json.loads(line)
        m = email.search(doc["text"])
        assert not m, f"{f['name']} line {n + 1}: e-mail address {m.group(0)!r} left in text"
        ids.append(doc["id"])
    records += len(lines)
t = manifest["totals"]
assert records == t["records_out"], f"{records} records in files, totals say {t['records_out']}"
removed = sum(sum(op["removed"].values()) for op in manifest["operators"])
assert t["records_in"] == t["records_out"] + removed + t["records_rejected"], \
    f"counters do not reconcile: in {t['records_in']} != out {t['records_out']} + removed {removed} + rejected {t['records_rejected']}"
prev = t["records_in"] - t["records_rejected"]
for i, op in enumerate(manifest["operators"]):
    assert op["in"] == prev, f"operator {i}: in {op['in']} != previous out {prev}"
    assert op["in"] - op["out"] == sum(op["removed"].values()), f"operator {i}: removals do not add up"
    prev = op["out"]
assert records > 0, "no documents survived"
assert any(i.startswith("<urn:uuid:") for i in ids), "no document from the WARC inputs"
open(d + ".ids", "w").write("\n".join(sorted(ids)) + "\n")
print(f"{d}: {records} documents of {t['records_in']}, {removed} removed, counters reconcile")
PY
}

# 1. Local store and local output.
make_spec "$WORK/local.json" "$WORK/out-local" \
    "$ROOT/tests/data/cc/*.jsonl.gz" "$ROOT/tests/data/warc/*.warc.gz"
"$BIN" run "$WORK/local.json" --store "$WORK/store" --workers 2 >"$WORK/run-local.log" 2>&1 \
    || { cat "$WORK/run-local.log"; die "local run failed"; }
grep -q "documents  in" "$WORK/run-local.log" || die "run printed no summary"
check_output "$WORK/out-local"

# 2. Everything on S3.
if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ -z "${DSPARK_TEST_S3_BUCKET:-}" ]; then
    echo "S3 part skipped: no server configured"
    exit 0
fi
PREFIX="s3://$DSPARK_TEST_S3_BUCKET/main-job-$$-$RANDOM"
for f in "$ROOT"/tests/data/cc/*.jsonl.gz "$ROOT"/tests/data/warc/*.warc.gz; do
    sub=$(basename "$(dirname "$f")")
    "$BIN" cp "$f" "$PREFIX/in/$sub/$(basename "$f")" >/dev/null || die "upload of $f failed"
done
make_spec "$WORK/s3.json" "$PREFIX/out" "$PREFIX/in/cc/*.jsonl.gz" "$PREFIX/in/warc/*.warc.gz"
"$BIN" run "$WORK/s3.json" --store "$PREFIX/store" --workers 2 >"$WORK/run-s3.log" 2>&1 \
    || { cat "$WORK/run-s3.log"; die "S3 run failed"; }
mkdir -p "$WORK/out-s3"
"$BIN" ls "$PREFIX/out/" --recursive >"$WORK/ls-s3.txt" || die "listing the S3 output failed"
for name in _MANIFEST.json _SUCCESS; do
    "$BIN" cp "$PREFIX/out/$name" "$WORK/out-s3/$name" >/dev/null || die "download of $name failed"
done
for name in $(python3 -c 'import json,sys; print(" ".join(f["name"] for f in json.load(open(sys.argv[1]))["files"]))' "$WORK/out-s3/_MANIFEST.json"); do
    "$BIN" cp "$PREFIX/out/$name" "$WORK/out-s3/$name" >/dev/null || die "download of $name failed"
done
check_output "$WORK/out-s3"
cmp -s "$WORK/out-local.ids" "$WORK/out-s3.ids" || die "S3 run kept other documents than the local run"
"$BIN" rm --recursive "$PREFIX/" >/dev/null 2>&1 || true
echo "ok"
