#!/bin/bash
# Failures: a task over corrupt input (a truncated .gz) fails the job at
# its first attempt, with the key and byte offset in `status --json`, and
# `wait` exits 1. A cancelled job makes `wait` exit 3. A store without
# conditional writes is rejected by `run`.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in" "$WORK/bad"
gen_jsonl "$WORK/in/a.jsonl" 2000 3
gzip -c "$WORK/in/a.jsonl" >"$WORK/full.gz"
size=$(stat -c %s "$WORK/full.gz")
head -c $((size / 2)) "$WORK/full.gz" >"$WORK/bad/broken.jsonl.gz"

write_spec "$WORK/bad.json" "$WORK/bad/*.gz" "$WORK/out-bad" 1000000 "" '"max_attempts": 2'
job=$("$BIN" submit "$WORK/bad.json" --store "$STORE" --job-id broken) || die "submit failed"
# Only this job: a worker without --allow-exec fails the exec steps of the
# later jobs at once, because that error is permanent.
start_worker "$WORK/worker.log" --job broken
"$BIN" wait "$job" --store "$STORE" --timeout 60
rc=$?
[ "$rc" = 1 ] || die "wait exited $rc for a failed job, expected 1"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/status.json" || die "status failed"
jq -e '.schema_version == 1 and .state == "failed"' "$WORK/status.json" >/dev/null ||
    die "status is not schema 1 / failed"
jq -e '.errors | length == 1' "$WORK/status.json" >/dev/null || {
    jq .errors "$WORK/status.json"; die "expected 1 recorded attempt: corrupt input is not retried"; }
jq -e --arg path "$WORK/bad/broken.jsonl.gz" \
    '.errors[0] | .task == "t00000" and (.attempt | length > 0) and (.message | contains($path))' \
    "$WORK/status.json" >/dev/null || {
    jq .errors "$WORK/status.json"; die "error does not name the input by its full path"; }
jq -r '.errors[0].message' "$WORK/status.json" | grep -qiE 'offset|byte' ||
    { jq .errors "$WORK/status.json"; die "error does not give the byte offset"; }
jq -e '.final.task == "t00000" and (.final.message | length > 0)' "$WORK/status.json" >/dev/null ||
    die "state.json lacks the failing task"
[ ! -e "$WORK/out-bad/_SUCCESS" ] || die "a failed job published _SUCCESS"

# Cancel: a slow job, cancelled while it runs.
slow='{"op": "exec", "command": ["sh", "-c", "sleep 2; cat"]}'
write_spec "$WORK/slow.json" "$WORK/in/*.jsonl" "$WORK/out-slow" 20000 "$slow" '"lease_seconds": 6'
job=$("$BIN" submit "$WORK/slow.json" --store "$STORE" --job-id slow) || die "submit failed"
start_worker "$WORK/slow-worker.log" --allow-exec
slow_worker=$LAST_PID
sleep 1
"$BIN" cancel "$job" --store "$STORE" || die "cancel failed"
"$BIN" wait "$job" --store "$STORE" --timeout 30
rc=$?
[ "$rc" = 3 ] || die "wait exited $rc for a cancelled job, expected 3"
"$BIN" cancel "$job" --store "$STORE" || die "cancelling twice failed"
# Within a few seconds the worker sees the cancellation and starts no more
# tasks of the job (a running task stops at its next batch or finishes).
for _ in $(seq 50); do
    grep -qE "(job_final_seen|job_inactive).*job=slow" "$WORK/slow-worker.log" && break
    sleep 0.1
done
grep -qE "(job_final_seen|job_inactive).*job=slow" "$WORK/slow-worker.log" ||
    die "the worker did not notice the cancellation within 5 s"
sleep 3
sed -n -E '/job_final_seen|job_inactive/,$p' "$WORK/slow-worker.log" | grep -q "event=task_start" &&
    die "the worker started a task of the cancelled job"
# SIGTERM stops a worker cleanly.
kill -TERM "$slow_worker"
wait "$slow_worker" || die "worker exited non-zero after SIGTERM"

# A store without conditional writes.
write_spec "$WORK/ok.json" "$WORK/in/*.jsonl" "$WORK/out-ok" 1000000
if DSPARK_FAULTS="op=cput,error=nocond,rate=1" "$BIN" run "$WORK/ok.json" --store "$STORE" \
    --workers 1 2>"$WORK/nocond.err"; then
    die "run accepted a store without conditional writes"
fi
grep -q "does not enforce conditional writes" "$WORK/nocond.err" || {
    cat "$WORK/nocond.err"; die "unclear message for a store without conditional writes"; }
echo "ok"
