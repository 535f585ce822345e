#!/bin/bash
# The local input cache: a dedup job whose map stage has no steps reads
# each compressed input once from the store and once from the cache entry
# that its map task wrote. The output equals the output with the cache
# off. No entry is left after the job, also when the job fails under a
# plain worker. Entries older than a day are removed when a worker
# starts, and a cache directory of the wrong mode only turns the cache off.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
mkdir -p "$WORK/in"
cp "$ROOT/tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz" "$WORK/in/a.jsonl.gz"
# A second input keeps two tasks apart, so that two entries are written.
zcat "$WORK/in/a.jsonl.gz" | head -300 | zstd -q -o "$WORK/in/b.jsonl.zst"

# dedup_spec FILE OUTPUT: exact dedup of both inputs, one task per input.
dedup_spec() {
    cat >"$1" <<JSON
{"name": "cache-$(basename "$1" .json)", "input": ["$WORK/in/*"],
 "steps": [{"op": "dedup_exact", "normalize": false}],
 "output": {"uri": "$2"}, "options": {"target_task_bytes": 100000}}
JSON
}

# run_job SPEC LOG [ENV...]: run SPEC with 2 workers and debug logs.
run_job() {
    local spec=$1 log=$2
    shift 2
    env DSPARK_LOG_LEVEL=debug "$@" "$BIN" run "$spec" --store "$STORE" --workers 2 >"$log" 2>&1 ||
        { tail -20 "$log"; die "run of $spec failed"; }
}

CACHE="$WORK/cache"
mkdir -m 700 "$CACHE"
# Stale entries of earlier jobs go, recent ones stay.
touch -d '2 days ago' "$CACHE/0000000000000000-0000000000000000-0.jsonl"
touch "$CACHE/1111111111111111-0000000000000000-0.jsonl"

dedup_spec "$WORK/on.json" "$WORK/out-on"
run_job "$WORK/on.json" "$WORK/on.log" DSPARK_INPUT_CACHE="$CACHE"
reads=$(grep -c 'event=input_cache_read' "$WORK/on.log")
[ "$reads" = 2 ] || { grep input_cache "$WORK/on.log"; die "expected 2 cache reads, got $reads"; }
grep -q 'event=input_cache_read.*key=a.jsonl.gz.*bytes=' "$WORK/on.log" ||
    die "the filter task of a.jsonl.gz did not read its cache entry"
left=$(ls "$CACHE" | grep -v '^1111111111111111-' || true)
[ -z "$left" ] || die "entries left in the cache after the job: $left"
[ -e "$CACHE/1111111111111111-0000000000000000-0.jsonl" ] ||
    die "a recent entry of another job was removed"

dedup_spec "$WORK/off.json" "$WORK/out-off"
run_job "$WORK/off.json" "$WORK/off.log" DSPARK_INPUT_CACHE=off
! grep -q 'event=input_cache_read' "$WORK/off.log" || die "DSPARK_INPUT_CACHE=off still read the cache"
same_output "$WORK/out-on" "$WORK/out-off"
jq -e '.totals.records_in == 997 and .operators[0].removed.duplicate == 335' \
    "$WORK/out-on/_MANIFEST.json" >/dev/null ||
    { jq '.totals, .operators' "$WORK/out-on/_MANIFEST.json"; die "unexpected dedup counts"; }

# A job that fails after its map stage, under a plain worker rather than
# run, leaves no entry: the exec step after the dedup fails the
# dedup_filter task, and the worker removes the job's entries.
cat >"$WORK/fail.json" <<JSON
{"name": "cache-fail", "input": ["$WORK/in/*"],
 "steps": [{"op": "dedup_exact", "normalize": false},
           {"op": "exec", "command": ["sh", "-c", "exit 3"]}],
 "output": {"uri": "$WORK/out-fail"},
 "options": {"target_task_bytes": 100000, "max_attempts": 1}}
JSON
job=$(DSPARK_INPUT_CACHE="$CACHE" "$BIN" submit "$WORK/fail.json" --store "$STORE" 2>"$WORK/fail.log") ||
    { cat "$WORK/fail.log"; die "submit of the failing job failed"; }
DSPARK_INPUT_CACHE="$CACHE" DSPARK_LOG_LEVEL=debug "$BIN" worker --store "$STORE" --job "$job" \
    --exit-when-finished --allow-exec >>"$WORK/fail.log" 2>&1
grep -q 'event=input_cache_read' "$WORK/fail.log" || die "the failing job did not read its cache entries"
[ "$(job_state "$job")" = failed ] || die "the job with a failing exec step did not fail"
left=$(ls "$CACHE" | grep -v '^1111111111111111-' || true)
[ -z "$left" ] || die "a failed job left entries in the cache: $left"

# A directory that others can read is not used, and the job still runs.
chmod 755 "$CACHE"
dedup_spec "$WORK/open.json" "$WORK/out-open"
run_job "$WORK/open.json" "$WORK/open.log" DSPARK_INPUT_CACHE="$CACHE"
grep -q 'event=input_cache_off.*not a directory of this user with mode 0700' "$WORK/open.log" ||
    die "no input_cache_off warning for a directory of mode 755"
! grep -q 'event=input_cache_read' "$WORK/open.log" || die "a directory of mode 755 was used"
same_output "$WORK/out-on" "$WORK/out-open"
echo "ok"
