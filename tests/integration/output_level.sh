#!/bin/bash
# output.level reaches the writer: the same job written with zstd's fast
# level -5, the default and level 19 publishes the same records, and each
# higher level gives smaller shards. gzip rejects a negative level with an
# error naming output.level.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CC="$ROOT/tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

# level_spec FILE OUTPUT OUTPUT_FIELDS_JSON
level_spec() {
    cat >"$1" <<JSON
{"name": "level-$(basename "$1" .json)", "input": ["$CC"], "steps": [{"op": "stats"}],
 "output": {"uri": "$2"$3}}
JSON
}

sizes=()
for level in -5 0 19; do
    level_spec "$WORK/l$level.json" "$WORK/out$level" ", \"level\": $level"
    "$BIN" run "$WORK/l$level.json" --store "$STORE" >"$WORK/l$level.log" 2>&1 ||
        { tail -20 "$WORK/l$level.log"; die "job at output.level $level failed"; }
    zstd -t -q "$WORK/out$level"/part-*.jsonl.zst || die "level $level wrote invalid zstd"
    zstdcat "$WORK/out$level"/part-*.jsonl.zst >"$WORK/records$level" || die "zstdcat failed"
    sizes+=("$(jq '.totals.bytes_out' "$WORK/out$level/_MANIFEST.json")")
done
cmp -s "$WORK/records-5" "$WORK/records0" || die "level -5 and the default wrote different records"
cmp -s "$WORK/records19" "$WORK/records0" || die "level 19 and the default wrote different records"
[ "$(wc -l <"$WORK/records0")" = 697 ] || die "expected 697 records"
[ "${sizes[0]}" -gt "${sizes[1]}" ] || die "level -5 (${sizes[0]} bytes) is not larger than level 3 (${sizes[1]})"
[ "${sizes[1]}" -gt "${sizes[2]}" ] || die "level 3 (${sizes[1]} bytes) is not larger than level 19 (${sizes[2]})"
echo "bytes out at levels -5, 3, 19: ${sizes[*]}"

level_spec "$WORK/gz.json" "$WORK/out-gz" ', "format": "jsonl.gz", "level": -1'
"$BIN" run "$WORK/gz.json" --store "$STORE" >"$WORK/gz.log" 2>&1
rc=$?
[ $rc = 2 ] || die "gzip at level -1 exited $rc, expected 2"
grep -q "output.level: -1 is out of range; expected 0 to 9" "$WORK/gz.log" ||
    { cat "$WORK/gz.log"; die "unclear error for a negative gzip level"; }
echo "ok"
