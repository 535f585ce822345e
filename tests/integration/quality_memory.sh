#!/bin/bash
# Peak memory of the quality operators on one huge document. The input is
# one record of about 60 MiB: 30 million one-letter words, or 20 million
# one-letter lines. A worker that runs gopher_repetition alone, or the
# steps of examples/cc-clean.json, must stay within 256 MiB of RSS and
# remove the document for the documented reason (too_many_words or
# too_many_lines). Without those limits, gopher_repetition alone took
# 1.7 GiB on the words document. The peak is /usr/bin/time's maximum RSS
# of `dspark run --workers 1`, which includes the worker process it starts.
set -u
export AWS_EC2_METADATA_DISABLED=true
ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${DSPARK_BIN:-$ROOT/build/dspark}
WORK=$(mktemp -d /tmp/dsp-quality-memory.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
unset DSPARK_STORE DSPARK_FAULTS
export DSPARK_LOG_LEVEL=warn
LIMIT_KIB=$((256 * 1024))

die() {
    echo "FAIL: $*"
    exit 1
}

[ -x /usr/bin/time ] || { echo "SKIP: /usr/bin/time (GNU time) is not installed"; exit 77; }

# Two inputs, each one JSONL record of about 60 MiB, under the 64 MiB
# default record limit.
python3 - "$WORK/words.jsonl" "$WORK/lines.jsonl" <<'PY' || die "could not generate the inputs"
import json, sys
words = "a " * (30 * 1024 * 1024)
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"id": "words", "text": words[:-1]}) + "\n")
with open(sys.argv[2], "w") as f:
    f.write(json.dumps({"id": "lines", "text": "a\n" * (20 * 1024 * 1024)}) + "\n")
PY

# run_job NAME INPUT STEPS_JSON: run the job and check its peak RSS. The
# summary is left in $WORK/NAME.out.
run_job() {
    local name=$1 input=$2 steps=$3
    cat >"$WORK/$name.json" <<JOB
{"name": "$name", "input": ["$input"], "format": "jsonl", "steps": $steps,
 "output": {"uri": "$WORK/$name-out", "format": "jsonl.zst"}}
JOB
    /usr/bin/time -f "%M" -o "$WORK/$name.rss" "$BIN" run "$WORK/$name.json" \
        --store "$WORK/$name-store" --workers 1 >"$WORK/$name.out" 2>"$WORK/$name.err" ||
        { tail -5 "$WORK/$name.err"; die "$name: dspark run failed"; }
    local rss
    rss=$(tail -1 "$WORK/$name.rss")
    echo "$name: peak RSS $((rss / 1024)) MiB"
    [ "$rss" -le "$LIMIT_KIB" ] || die "$name: peak RSS $rss KiB is above $LIMIT_KIB KiB"
}

# expect_removed NAME STEP REASON: check that STEP removed one document
# for REASON, from its line in the job summary.
expect_removed() {
    grep -E "^ +$2 .*\($3 1\)" "$WORK/$1.out" >/dev/null ||
        { cat "$WORK/$1.out"; die "$1: expected $2 to remove the document as $3"; }
}

run_job repetition_words "$WORK/words.jsonl" '[{"op": "gopher_repetition"}]'
expect_removed repetition_words gopher_repetition too_many_words

run_job repetition_lines "$WORK/lines.jsonl" '[{"op": "gopher_repetition"}]'
expect_removed repetition_lines gopher_repetition too_many_lines

steps=$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["steps"]))' \
    "$ROOT/examples/cc-clean.json") || die "could not read the steps of examples/cc-clean.json"
run_job pipeline_words "$WORK/words.jsonl" "$steps"
expect_removed pipeline_words gopher_quality too_many_words

echo "PASS"
