#!/bin/bash
# dedup_exact on a field compares its raw bytes unless the step sets
# "normalize": true. 500 distinct URLs that differ only in digits
# (/article/1, /article/2, ...) and two that differ only in case (/a, /A)
# all survive, and one exact repeat is removed. With "normalize": true the
# digit and case variants collapse, as they do in the text. Null and
# missing values are kept, and values of different JSON types never match.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
python3 - "$WORK/in/urls.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    n = 0
    def doc(url):
        global n
        f.write(json.dumps({"id": "d%d" % n, "url": url, "text": "page %d" % n}) + "\n")
        n += 1
    for i in range(1, 501):
        doc("https://ex.com/article/%d" % i)
    doc("https://ex.com/a")
    doc("https://ex.com/A")
    doc("https://ex.com/article/7")
PY

# dedup_spec FILE OUTPUT STEP_JSON
dedup_spec() {
    cat >"$1" <<JSON
{
  "name": "dedup-field-$(basename "$1" .json)",
  "input": ["$WORK/in/*.jsonl"],
  "steps": [$3],
  "output": {"uri": "$2", "format": "jsonl.zst"}
}
JSON
}

# kept OUTPUT_DIR: the number of published documents.
kept() {
    zstdcat "$1"/part-*.zst | wc -l
}

dedup_spec "$WORK/raw.json" "$WORK/out-raw" '{"op": "dedup_exact", "field": "url"}'
"$BIN" run "$WORK/raw.json" --store "$STORE" --workers 2 >"$WORK/raw.log" 2>&1 ||
    { tail -20 "$WORK/raw.log"; die "the dedup_exact job on url failed"; }
[ "$(kept "$WORK/out-raw")" = 502 ] ||
    die "dedup_exact on url kept $(kept "$WORK/out-raw") of 503 documents, expected 502"
zstdcat "$WORK"/out-raw/part-*.zst | jq -r .url | grep -qx 'https://ex.com/A' ||
    die "dedup_exact on url removed https://ex.com/A as a duplicate of https://ex.com/a"
jq -e '.operators[0].removed.duplicate == 1' "$WORK/out-raw/_MANIFEST.json" >/dev/null ||
    { jq .operators "$WORK/out-raw/_MANIFEST.json"; die "dedup_exact on url counted other than 1 duplicate"; }

# An explicit "normalize": true still normalises the field: each digit
# becomes 0, so /article/N leaves one URL per length of N (1, 10, 100),
# and /a and /A become one value.
dedup_spec "$WORK/norm.json" "$WORK/out-norm" '{"op": "dedup_exact", "field": "url", "normalize": true}'
"$BIN" run "$WORK/norm.json" --store "$STORE" --workers 2 >"$WORK/norm.log" 2>&1 ||
    { tail -20 "$WORK/norm.log"; die "the dedup_exact job with normalize true failed"; }
[ "$(kept "$WORK/out-norm")" = 4 ] ||
    die "dedup_exact on url with normalize true kept $(kept "$WORK/out-norm") documents, expected 4"

# Values are typed: null counts as missing (kept and reported), values of
# different JSON types never match, and numbers match by value.
python3 - "$WORK/in/urls.jsonl" <<'PY'
import sys
values = [
    "null", "null", "null", None, None,  # 5 kept: no value to compare
    '"null"', "1", '"1"', "1.0",         # 1.0 is the number 1: removed
    "9007199254740993", "9007199254740992", "true", '"true"',
    '{"u": 1}', '{"u":1}',               # the same object: removed
]
with open(sys.argv[1], "w") as f:
    for i, v in enumerate(values):
        url = "" if v is None else ', "url": %s' % v
        f.write('{"id": "v%d"%s, "text": "page %d"}\n' % (i, url, i))
PY
dedup_spec "$WORK/typed.json" "$WORK/out-typed" '{"op": "dedup_exact", "field": "url"}'
"$BIN" run "$WORK/typed.json" --store "$STORE" --workers 2 >"$WORK/typed.log" 2>&1 ||
    { tail -20 "$WORK/typed.log"; die "the dedup_exact job on typed url values failed"; }
kept_ids=$(zstdcat "$WORK"/out-typed/part-*.zst | jq -r .id | sort -V | tr '\n' ' ')
[ "$kept_ids" = "v0 v1 v2 v3 v4 v5 v6 v7 v9 v10 v11 v12 v13 " ] ||
    die "dedup_exact on typed url values kept $kept_ids, expected all but v8 (1.0) and v14 (the repeated object)"
grep -q 'dedup_field_missing.*documents=5 null=3' "$WORK/typed.log" ||
    { grep dedup_field_missing "$WORK/typed.log"; die "the 2 missing and 3 null urls were not reported as documents=5 null=3"; }

# The text is still normalised by default.
python3 - "$WORK/in/urls.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"id": "t0", "text": "Hello, World 1"}) + "\n")
    f.write(json.dumps({"id": "t1", "text": "hello world 2"}) + "\n")
PY
dedup_spec "$WORK/text.json" "$WORK/out-text" '{"op": "dedup_exact"}'
"$BIN" run "$WORK/text.json" --store "$STORE" --workers 1 >"$WORK/text.log" 2>&1 ||
    { tail -20 "$WORK/text.log"; die "the dedup_exact job on the text failed"; }
[ "$(kept "$WORK/out-text")" = 1 ] ||
    die "dedup_exact on the text kept $(kept "$WORK/out-text") documents, expected 1 (normalised)"

# dspark ops shows the default for each case.
"$BIN" ops dedup_exact >"$WORK/ops.txt" || die "dspark ops dedup_exact failed"
grep -q "false when field is set" "$WORK/ops.txt" ||
    { cat "$WORK/ops.txt"; die "dspark ops dedup_exact does not describe the normalize default"; }
echo "ok"
