#!/bin/bash
# The GraySort-style records of bench/sort_records.c through a sort job:
# 5,000 records of 100 bytes in two zstd files, sorted by key into 3 shards
# with 2 workers. The checker accepts the output and prints the input's
# record count and checksums. It rejects an output with two records
# swapped, a truncated last record and a malformed record, and a lost or
# duplicated record changes the summary. With an S3 server configured the
# job also runs on S3. A sort by numeric id checks that integers above
# 2^53 keep their exact order. Then bench/sort_bench.sh runs end to end on
# 3,000 records against the local store.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
TOOL=$WORK/sort_records
gcc -std=c11 -Wall -Wextra -Werror -O2 "$ROOT/bench/sort_records.c" \
    $(pkg-config --cflags --libs libxxhash) -o "$TOOL" || die "cannot build bench/sort_records.c"

mkdir -p "$WORK/in"
"$TOOL" gen 7 0 2500 | zstd -q -o "$WORK/in/a.jsonl.zst"
"$TOOL" gen 7 2500 2500 | zstd -q -o "$WORK/in/b.jsonl.zst"
expect=$("$TOOL" gen 7 0 5000 | "$TOOL" sum)
case "$expect" in
records=5000\ *) ;;
*) die "unexpected input summary: $expect" ;;
esac
[ "$(zstdcat "$WORK/in/a.jsonl.zst" | wc -c)" = 250000 ] || die "2,500 records are not 250,000 bytes"
if zstdcat "$WORK/in/a.jsonl.zst" | "$TOOL" check 2>"$WORK/unsorted.err"; then
    die "the checker accepted the unsorted input"
fi

cat >"$WORK/sort.json" <<JSON
{
  "name": "sort-records",
  "input": ["$WORK/in/*.jsonl.zst"],
  "steps": [{"op": "repartition", "by": "sort", "field": "key", "shards": 3}],
  "output": {"uri": "$WORK/out", "format": "jsonl.zst"},
  "options": {"target_task_bytes": 100000}
}
JSON
"$BIN" run "$WORK/sort.json" --store "$STORE" --workers 2 >"$WORK/run.log" 2>&1 ||
    { tail -20 "$WORK/run.log"; die "the sort job failed"; }
parts=("$WORK"/out/part-*)
[ "${#parts[@]}" = 3 ] || die "expected 3 output shards, got ${#parts[@]}"
zstdcat "${parts[@]}" >"$WORK/sorted.jsonl"
for p in "${parts[@]}"; do
    [ "$(zstdcat "$p" | wc -l)" -gt 0 ] || die "shard $p is empty"
done
got=$("$TOOL" check <"$WORK/sorted.jsonl") || die "the checker rejected the job's output"
[ "$got" = "$expect" ] || die "output summary '$got' differs from the input's '$expect'"
# The same records sorted by GNU sort: whole-line byte order puts the keys
# in order too, so both outputs have the same keys in the same order.
cmp <(cut -c9-18 "$WORK/sorted.jsonl") \
    <(zstdcat "$WORK"/in/*.zst | LC_ALL=C sort | cut -c9-18) >/dev/null ||
    die "the job's key order differs from GNU sort's"

# expect_reject NAME PATTERN: the checker must fail on stdin with a message
# that matches PATTERN.
expect_reject() {
    if "$TOOL" check >"$WORK/$1.out" 2>"$WORK/$1.err"; then
        die "the checker accepted the $1 output"
    fi
    grep -q "$2" "$WORK/$1.err" || { cat "$WORK/$1.err"; die "unclear message for the $1 output"; }
}
# Records 1000 and 3000 swapped (lines 1001 and 3001).
awk 'NR == FNR { if (FNR == 1001) a = $0; if (FNR == 3001) b = $0; next }
     FNR == 1001 { print b; next } FNR == 3001 { print a; next } { print }' \
    "$WORK/sorted.jsonl" "$WORK/sorted.jsonl" | expect_reject swapped "sorts before the previous key"
head -c -40 "$WORK/sorted.jsonl" | expect_reject truncated "record 4999 at byte 499900 is 60 bytes"
sed '2000s/"text"/"txet"/' "$WORK/sorted.jsonl" | expect_reject malformed "record 1999 .* no 10-byte key"

# A lost or duplicated record keeps the order but changes the summary.
lost=$(sed '2500d' "$WORK/sorted.jsonl" | "$TOOL" check) || die "the checker rejected an output missing one record"
[ "$lost" != "$expect" ] || die "the summary did not change with one record missing"
case "$lost" in records=4999\ *) ;; *) die "unexpected summary with one record missing: $lost" ;; esac
dup=$(sed '2500p' "$WORK/sorted.jsonl" | "$TOOL" check) || die "the checker rejected an output with a duplicate"
[ "$dup" != "$expect" ] || die "the summary did not change with one record duplicated"
# Same count, one record replaced by a copy of its neighbour.
replaced=$(awk 'NR == 2500 { prev = $0 } NR == 2501 { print prev; next } { print }' "$WORK/sorted.jsonl" |
    "$TOOL" check) || die "the checker rejected an output with a replaced record"
case "$replaced" in records=5000\ *) ;; *) die "unexpected summary with a replaced record: $replaced" ;; esac
[ "$replaced" != "$expect" ] || die "the summary did not change with one record replaced"

# With an S3 server configured: the same job with the job store and the
# output in the bucket gives the same shards.
if use_s3_store sort-records; then
    out="s3://$DSPARK_TEST_S3_BUCKET/out-sort-records-$$-$RANDOM"
    sed "s|\"uri\": \"$WORK/out\"|\"uri\": \"$out\"|" "$WORK/sort.json" >"$WORK/sort-s3.json"
    "$BIN" run "$WORK/sort-s3.json" --store "$STORE" --workers 2 >"$WORK/run-s3.log" 2>&1 ||
        { tail -20 "$WORK/run-s3.log"; die "the sort job on S3 failed"; }
    fetch_output "$out" "$WORK/out-s3" || die "cannot download $out"
    s3_got=$(zstdcat "$WORK"/out-s3/part-* | "$TOOL" check) || die "the checker rejected the S3 output"
    [ "$s3_got" = "$expect" ] || die "S3 output summary '$s3_got' differs from the input's '$expect'"
    same_output "$WORK/out" "$WORK/out-s3"
    echo "S3 run matches"
fi

# Sort by a numeric id: integers above 2^53, which a double cannot tell
# apart, mixed with non-integers, negatives and other spellings of one
# value, over 4 map tasks and 3 shards. Python's Decimal gives the
# expected order: missing and null first, then numbers by value, then
# strings, each tie in input order.
mkdir -p "$WORK/in-ids"
python3 - "$WORK/in-ids" <<'PY'
import random, sys
rng = random.Random(11)
base = 12345678901234567000
ids = [str(base + rng.randrange(0, 1000)) for _ in range(300)]
ids += [str(2**53 + d) for d in range(-3, 4)] + ["9007199254740992.5", "9.007199254740993e15"]
ids += ["-" + str(base + rng.randrange(0, 1000)) for _ in range(50)]
ids += ["%d.%d" % (rng.randrange(0, 100), rng.randrange(1, 10)) for _ in range(50)]
ids += ["1", "1.0", "10e-1", "-0", "0", "1e400", "-1e400", "null", None, '"12"', '"9"']
rng.shuffle(ids)
for f in range(2):
    with open("%s/ids-%d.jsonl" % (sys.argv[1], f), "w") as out:
        for i, v in enumerate(ids[f::2]):
            member = "" if v is None else '"id": %s, ' % v
            out.write('{%s"n": "%d-%d", "text": "record"}\n' % (member, f, i))
PY
cat >"$WORK/ids.json" <<JSON
{
  "name": "sort-ids",
  "input": ["$WORK/in-ids/*.jsonl"],
  "steps": [{"op": "repartition", "by": "sort", "field": "id", "shards": 3}],
  "output": {"uri": "$WORK/out-ids", "format": "jsonl.gz"},
  "options": {"target_task_bytes": 8000}
}
JSON
"$BIN" run "$WORK/ids.json" --store "$STORE" --workers 2 >"$WORK/ids.log" 2>&1 ||
    { tail -20 "$WORK/ids.log"; die "the sort job on numeric ids failed"; }
python3 - "$WORK/in-ids" "$WORK/out-ids" <<'PY' || die "repartition by sort put numeric ids out of order"
import glob, gzip, json, sys
from decimal import Decimal

def rank(doc):
    v = doc.get("id")
    if v is None:
        return (0, 0, "")
    if isinstance(v, str):
        return (2, 0, v)
    return (1, Decimal(v), "")

def load(paths):
    docs = []
    for p in paths:
        with (gzip.open(p, "rt") if p.endswith(".gz") else open(p)) as f:
            for line in f:
                docs.append(json.loads(line, parse_float=Decimal))
    return docs

inputs = load(sorted(glob.glob(sys.argv[1] + "/*.jsonl")))
want = [d["n"] for d in sorted(inputs, key=rank)]
got = [d["n"] for d in load(sorted(glob.glob(sys.argv[2] + "/part-*")))]
if got != want:
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            print("first difference at position %d: got %s, expected %s" % (i, g, w))
            break
    print("got %d records, expected %d" % (len(got), len(want)))
    sys.exit(1)
PY

# The benchmark script end to end, small: every case checks its output.
SORT_S3=0 DSPARK_BIN=$BIN "$ROOT/bench/sort_bench.sh" 3000 1 >"$WORK/bench.log" 2>&1 ||
    { tail -20 "$WORK/bench.log"; die "bench/sort_bench.sh failed"; }
grep -q "^local run 1: output checked" "$WORK/bench.log" || { cat "$WORK/bench.log"; die "bench did not check the local output"; }
grep -q "^gnu_sort  *1 " "$WORK/bench.log" || { cat "$WORK/bench.log"; die "bench printed no baseline row"; }
echo "ok"
