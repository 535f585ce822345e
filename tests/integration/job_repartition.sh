#!/bin/bash
# repartition as a job stage, on the Common Crawl sample with each
# document's domain copied to a top-level "domain" member. By field: 4
# shards, every domain in exactly one shard, each shard in input order, the
# same documents as without repartition, and byte-identical output with 1
# and 3 workers. By hash: the requested shard count. By sort: a global
# sort by a string or a number, split into ranges. A step after
# repartition is rejected at planning. After dedup_exact: the counts add up.
# Equal JSON values written differently share a shard.
# With an S3 server configured, the by-field job also runs on S3.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CC="$ROOT/tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

mkdir -p "$WORK/in"
zcat "$CC" | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    d["domain"] = d["metadata"]["url"].split("/")[0]
    print(json.dumps(d))' >"$WORK/in/cc.jsonl"

# repart_spec FILE OUTPUT STEPS_JSON
repart_spec() {
    cat >"$1" <<JSON
{
  "name": "repart-$(basename "$1" .json)",
  "input": ["$WORK/in/*.jsonl"],
  "steps": [$3],
  "output": {"uri": "$2", "format": "jsonl.zst"},
  "options": {"target_task_bytes": 300000}
}
JSON
}

run_job() {
    local spec=$1 log=$2
    shift 2
    "$BIN" run "$spec" --store "$STORE" "$@" >"$log" 2>&1 || { tail -20 "$log"; die "run of $spec failed"; }
}

length='{"op": "length", "min_words": 3}'
repart_spec "$WORK/base.json" "$WORK/out-base" "$length"
run_job "$WORK/base.json" "$WORK/base.log"
for n in 1 3; do
    repart_spec "$WORK/field-$n.json" "$WORK/out-field-$n" \
        "$length, {\"op\": \"repartition\", \"by\": \"field\", \"field\": \"domain\", \"shards\": 4}"
    run_job "$WORK/field-$n.json" "$WORK/field-$n.log" --workers "$n"
done
same_output "$WORK/out-field-1" "$WORK/out-field-3"
# The shuffle carries whole lines and order keys, so the map tasks commit
# only their shuffle files.
job=$(ls "$STORE/jobs" | grep '^repart-field-1-')
map_files=$(jq -r '.tasks[].files[].key' "$STORE/jobs/$job"/seals/s0.json | sed 's|.*/||' | sort -u | tr '\n' ' ')
[ "$map_files" = "shuffle.bin " ] ||
    die "map tasks of the repartition by field committed $map_files; expected shuffle.bin"
jq -e '.totals.files == 4' "$WORK/out-field-1/_MANIFEST.json" >/dev/null ||
    die "expected 4 output files, got $(jq .totals.files "$WORK/out-field-1/_MANIFEST.json")"

python3 - "$WORK/in/cc.jsonl" "$WORK/out-base" "$WORK/out-field-1" <<'PY' || die "repartition by field is wrong"
import glob, json, subprocess, sys

def parts(d):
    out = []
    for p in sorted(glob.glob(d + "/part-*")):
        data = subprocess.run(["zstdcat", p], check=True, capture_output=True).stdout
        out.append([json.loads(l) for l in data.decode().split("\n") if l])
    return out

position = {json.loads(l)["id"]: i for i, l in enumerate(open(sys.argv[1], encoding="utf-8"))}
base = sorted(d["id"] for p in parts(sys.argv[2]) for d in p)
shards = parts(sys.argv[3])
got = sorted(d["id"] for p in shards for d in p)
assert got == base, "repartitioned output has %d documents, expected %d" % (len(got), len(base))
owner = {}
for i, p in enumerate(shards):
    for d in p:
        assert owner.setdefault(d["domain"], i) == i, "domain %s in shards %d and %d" % (d["domain"], owner[d["domain"]], i)
    order = [position[d["id"]] for d in p]
    assert order == sorted(order), "shard %d is not in input order" % i
print("shards", [len(p) for p in shards], "domains", len(owner))
PY

repart_spec "$WORK/hash.json" "$WORK/out-hash" "$length, {\"op\": \"repartition\", \"shards\": 3}"
run_job "$WORK/hash.json" "$WORK/hash.log" --workers 2
jq -e '.totals.files == 3' "$WORK/out-hash/_MANIFEST.json" >/dev/null || die "expected 3 output files by hash"
[ "$(jq .totals.records_out "$WORK/out-hash/_MANIFEST.json")" = "$(jq .totals.records_out "$WORK/out-base/_MANIFEST.json")" ] ||
    die "repartition by hash changed the number of documents"

# by sort: 4 shards that are consecutive ranges of domain, each sorted by
# domain with ties in input order, the same with 1 and 3 workers; a numeric
# member sorts numerically.
for n in 1 3; do
    repart_spec "$WORK/sort-$n.json" "$WORK/out-sort-$n" \
        "$length, {\"op\": \"repartition\", \"by\": \"sort\", \"field\": \"domain\", \"shards\": 4}"
    run_job "$WORK/sort-$n.json" "$WORK/sort-$n.log" --workers "$n"
done
same_output "$WORK/out-sort-1" "$WORK/out-sort-3"
repart_spec "$WORK/sortnum.json" "$WORK/out-sortnum" \
    "$length, {\"op\": \"repartition\", \"by\": \"sort\", \"field\": \"words\", \"shards\": 3}"
python3 - "$WORK/in/cc.jsonl" "$WORK/in-num.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        d = json.loads(line)
        d["words"] = len(d["text"].split()) * (-1 if len(d["text"]) % 3 == 0 else 1) / 4
        out.write(json.dumps(d) + "\n")
PY
mkdir -p "$WORK/num" && mv "$WORK/in-num.jsonl" "$WORK/num/cc.jsonl"
sed -i "s|$WORK/in/\*.jsonl|$WORK/num/*.jsonl|" "$WORK/sortnum.json"
run_job "$WORK/sortnum.json" "$WORK/sortnum.log" --workers 2
python3 - "$WORK/in/cc.jsonl" "$WORK/out-base" "$WORK/out-sort-1" "$WORK/out-sortnum" <<'PY' || die "repartition by sort is wrong"
import glob, json, subprocess, sys

def parts(d):
    out = []
    for p in sorted(glob.glob(d + "/part-*")):
        data = subprocess.run(["zstdcat", p], check=True, capture_output=True).stdout
        out.append([json.loads(l) for l in data.decode().split("\n") if l])
    return out

position = {json.loads(l)["id"]: i for i, l in enumerate(open(sys.argv[1], encoding="utf-8"))}
base = parts(sys.argv[2])
shards = parts(sys.argv[3])
assert len(shards) == 4, "expected 4 shards, got %d" % len(shards)
docs = [d for p in shards for d in p]
assert sorted(d["id"] for d in docs) == sorted(d["id"] for p in base for d in p), "documents differ"
keys = [(d["domain"].encode(), position[d["id"]]) for d in docs]
assert keys == sorted(keys), "concatenated shards are not sorted by (domain, input order)"
nums = [d["words"] for p in parts(sys.argv[4]) for d in p]
assert nums == sorted(nums), "numeric sort is wrong"
assert any(x < 0 for x in nums) and any(x > 0 for x in nums)
print("sort shards", [len(p) for p in shards])
PY

# by sort with no step before it: the map tasks commit inputs.direct in
# place of data shards, and the sort_map tasks re-read the inputs. Every
# input document comes out, sorted by (domain, input order), the same with
# 1 and 3 workers.
for n in 1 3; do
    repart_spec "$WORK/sortdirect-$n.json" "$WORK/out-sortdirect-$n" \
        '{"op": "repartition", "by": "sort", "field": "domain", "shards": 3}'
    run_job "$WORK/sortdirect-$n.json" "$WORK/sortdirect-$n.log" --workers "$n"
done
same_output "$WORK/out-sortdirect-1" "$WORK/out-sortdirect-3"
job=$(ls "$STORE/jobs" | grep '^repart-sortdirect-1-')
map_files=$(jq -r '.tasks[].files[].key' "$STORE/jobs/$job"/seals/s0.json | sed 's|.*/||' | sort -u | tr '\n' ' ')
[ "$map_files" = "inputs.direct sample.bin " ] ||
    die "map tasks of the sort without steps committed $map_files; expected inputs.direct sample.bin"
python3 - "$WORK/in/cc.jsonl" "$WORK/out-sortdirect-1" <<'PY' || die "sort without steps is wrong"
import glob, json, subprocess, sys

docs = []
for p in sorted(glob.glob(sys.argv[2] + "/part-*")):
    data = subprocess.run(["zstdcat", p], check=True, capture_output=True).stdout
    docs += [json.loads(l) for l in data.decode().split("\n") if l]
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
position = {d["id"]: i for i, d in enumerate(lines)}
assert sorted(d["id"] for d in docs) == sorted(position), "documents differ from the input"
keys = [(d["domain"].encode(), position[d["id"]]) for d in docs]
assert keys == sorted(keys), "output is not sorted by (domain, input order)"
PY

repart_spec "$WORK/after.json" "$WORK/out-after" "{\"op\": \"repartition\", \"shards\": 2}, $length"
if "$BIN" explain "$WORK/after.json" >"$WORK/after.log" 2>&1; then
    die "a step after repartition was accepted"
fi
grep -q "must be the last step" "$WORK/after.log" || { cat "$WORK/after.log"; die "unclear message for a step after repartition"; }

repart_spec "$WORK/dedup.json" "$WORK/out-dedup" \
    '{"op": "dedup_exact", "normalize": false}, {"op": "repartition", "shards": 2}'
run_job "$WORK/dedup.json" "$WORK/dedup.log" --workers 2
jq -e '.totals.records_in == 697 and .totals.records_out == 662 and .operators[0].removed.duplicate == 35
       and .operators[1].in == 662 and .operators[1].out == 662' "$WORK/out-dedup/_MANIFEST.json" >/dev/null ||
    { jq '.totals, .operators' "$WORK/out-dedup/_MANIFEST.json"; die "dedup then repartition counts are wrong"; }

# By field, values that are equal as JSON share a shard however they are
# written: 1, 1.0 and 1e0; "A" and "\u0041"; objects with and without
# spaces. The string "1" is another value. Earlier versions hashed the
# raw JSON text, which split such values.
mkdir -p "$WORK/typed"
python3 - "$WORK/typed/in.jsonl" <<'PY'
import json, sys
spellings = [
    ["1", "1.0", "1e0", "10e-1"],
    ['"1"', '"\\u0031"'],
    ['"A"', '"\\u0041"'],
    ['{"a":[1,2]}', '{ "a" : [ 1 , 2 ] }'],
    ["-0", "0", "0.0"],
    ["123456789012345678901", "1.23456789012345678901e20"],
]
with open(sys.argv[1], "w") as f:
    n = 0
    for rep in range(8):
        for cls, forms in enumerate(spellings):
            for form in forms:
                f.write('{"id": "%d", "cls": %d, "text": "t%d", "k": %s}\n' % (n, cls, n, form))
                n += 1
PY
cat >"$WORK/typed.json" <<JSON
{"name": "repart-typed", "input": ["$WORK/typed/in.jsonl"],
 "steps": [{"op": "repartition", "by": "field", "field": "k", "shards": 16}],
 "output": {"uri": "$WORK/out-typed"}}
JSON
run_job "$WORK/typed.json" "$WORK/typed.log" --workers 2
python3 - "$WORK/out-typed" <<'PY' || die "repartition by field split equal values"
import glob, json, subprocess, sys
owner, total = {}, 0
for i, p in enumerate(sorted(glob.glob(sys.argv[1] + "/part-*"))):
    data = subprocess.run(["zstdcat", p], check=True, capture_output=True).stdout
    for line in data.decode().splitlines():
        d = json.loads(line)
        total += 1
        assert owner.setdefault(d["cls"], i) == i, \
            "value class %d is in shards %d and %d" % (d["cls"], owner[d["cls"]], i)
assert total == 8 * 15, "expected 120 documents, got %d" % total
assert len(set(owner.values())) > 1, "every value class is in one shard: %s" % owner
PY
"$BIN" explain "$WORK/typed.json" --plan-out "$WORK/typed-plan.json" >/dev/null ||
    die "explain of $WORK/typed.json failed"
jq -e '.stages[] | select(.kind == "repartition_reduce") | .steps[0].field_hash == "typed"' \
    "$WORK/typed-plan.json" >/dev/null || die "the plan does not pin field_hash"
sed 's/"shards": 16/"shards": 16, "field_hash": "bytes"/' "$WORK/typed.json" >"$WORK/typed-bad.json"
if "$BIN" explain "$WORK/typed-bad.json" >"$WORK/typed-bad.log" 2>&1; then
    die "field_hash \"bytes\" was accepted"
fi
grep -qF 'option "field_hash" must be "typed" or "text", got "bytes"' "$WORK/typed-bad.log" ||
    { cat "$WORK/typed-bad.log"; die "unclear message for a bad field_hash"; }

if use_s3_store repartition; then
    out="s3://$DSPARK_TEST_S3_BUCKET/out-repartition-$$-$RANDOM"
    repart_spec "$WORK/s3.json" "$out" \
        "$length, {\"op\": \"repartition\", \"by\": \"field\", \"field\": \"domain\", \"shards\": 4}"
    run_job "$WORK/s3.json" "$WORK/s3.log" --workers 2
    fetch_output "$out" "$WORK/out-s3" || die "cannot download $out"
    same_output "$WORK/out-field-1" "$WORK/out-s3"
    echo "S3 run matches"
fi
echo "ok"
