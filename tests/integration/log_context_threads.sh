#!/bin/bash
# Lines logged by a task's helper threads carry the task's job, stage, task
# and attempt ids like the task's own lines. Injected 503s make two kinds
# of helper thread log retries. The threads that fetch the shuffle slices
# of a dedup_exact reduce run on the local store. The upload thread of the
# S3 writer runs when a task writes an output shard in several parts, so it
# needs an S3 server.
. "$(dirname "$0")/job_lib/common.bash"

# check_retry_lines LOG WHAT: every retry line for WHAT names a job, stage,
# task and attempt id, and there is at least one such line.
check_retry_lines() {
    local log=$1 what=$2 lines bad
    lines=$(grep 'event=retry ' "$log" | grep -F -- "$what") ||
        { tail -20 "$log"; die "no retry line for $what; were faults injected?"; }
    bad=$(echo "$lines" | grep -vE ' job=[^ ]+ stage=s[0-9]+ task=t[0-9]+ attempt=a[0-9]+-[0-9a-f]+ ' || true)
    [ -z "$bad" ] || die "retry lines for $what without the task's ids: $(echo "$bad" | head -3)"
    echo "$lines" | grep -q ' request_attempt=[0-9]' ||
        die "retry lines for $what lack request_attempt"
    echo "$(echo "$lines" | wc -l) retry lines for $what carry the task's ids"
}

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 3000 13
write_spec "$WORK/dedup.json" "$WORK/in/*.jsonl" "$WORK/out-dedup" 100000 '{"op": "dedup_exact"}'
DSPARK_FAULTS="op=get,error=503,rate=0.3,key=/shuffle.bin,seed=5" \
    "$BIN" run "$WORK/dedup.json" --store "$STORE" --workers 1 >"$WORK/dedup.out" 2>"$WORK/dedup.log" ||
    { tail -20 "$WORK/dedup.log"; die "the dedup job failed"; }
check_retry_lines "$WORK/dedup.log" "/shuffle.bin"
echo "ok shuffle fetch threads"

if use_s3_store log-context; then
    # 3,000 documents of 5,336 random base64 characters: about 16 MB that
    # zstd cannot shrink, so the one output shard takes two 8 MiB parts.
    python3 - "$WORK/in/random.jsonl" <<'PY'
import base64, json, os, sys
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        f.write(json.dumps({"id": str(i), "text": base64.b64encode(os.urandom(4000)).decode()}) + "\n")
PY
    cat >"$WORK/upload.json" <<JSON
{
  "name": "log-context-upload",
  "input": ["$WORK/in/random.jsonl"],
  "steps": [],
  "output": {"uri": "$STORE-out", "format": "jsonl.zst"},
  "options": {"target_task_bytes": "64MiB"}
}
JSON
    DSPARK_FAULTS="op=mpu,error=503,rate=0.5,seed=5" \
        "$BIN" run "$WORK/upload.json" --store "$STORE" --workers 1 >"$WORK/upload.out" 2>"$WORK/upload.log" ||
        { tail -20 "$WORK/upload.log"; die "the upload job failed"; }
    check_retry_lines "$WORK/upload.log" 'op="put part"'
    "$BIN" rm --recursive "$STORE-out/" >/dev/null 2>&1
    "$BIN" rm --recursive "$STORE/" >/dev/null 2>&1
    echo "ok s3 upload thread"
else
    echo "skipped s3: no S3 server configured"
fi
echo "ok"
