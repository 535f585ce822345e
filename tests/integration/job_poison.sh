#!/bin/bash
# Failures that retrying cannot fix. A task whose exec step kills its own
# worker with SIGKILL fails the job after max_attempts lost workers, with a
# "lost its worker" message. A permanent error (an exec step on a worker
# without --allow-exec; AccessDenied from S3 when a server is configured)
# fails the job after one attempt, with the message in `status --json`.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 200 7

# Poison task: the command's parent is the exec step's guard process, and
# the guard's parent is the worker.
cat >"$WORK/poison.sh" <<'SH'
kill -KILL "$(awk '{print $4}' "/proc/$PPID/stat")"
sleep 5
SH
poison="{\"op\": \"exec\", \"command\": [\"sh\", \"$WORK/poison.sh\"]}"
write_spec "$WORK/poison.json" "$WORK/in/*.jsonl" "$WORK/out-poison" 1000000 "$poison" \
    '"max_attempts": 2, "lease_seconds": 5'
job=$("$BIN" submit "$WORK/poison.json" --store "$STORE" --job-id poison) || die "submit failed"
# Keep one worker running: start a new one whenever the last one died.
starts=0
deadline=$((SECONDS + 60))
while [ "$(job_state "$job")" = running ]; do
    [ $SECONDS -lt $deadline ] || die "the poison job was still running after 60 s and $starts workers"
    if [ "$starts" = 0 ] || ! kill -0 "$LAST_PID" 2>/dev/null; then
        start_worker "$WORK/poison-worker.log" --allow-exec --job poison --exit-when-finished
        starts=$((starts + 1))
    fi
    sleep 0.5
done
echo "poison job ended after $starts worker starts in $SECONDS s"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/poison-status.json" || die "status failed"
jq -e '.state == "failed"' "$WORK/poison-status.json" >/dev/null ||
    die "poison job ended as $(jq -r .state "$WORK/poison-status.json"), expected failed"
jq -e '.final.code == "worker_lost" and .final.task == "t00000"' "$WORK/poison-status.json" \
    >/dev/null || { jq .final "$WORK/poison-status.json"; die "state.json does not blame a lost worker"; }
jq -r .final.message "$WORK/poison-status.json" | grep -q "task s0/t00000 lost its worker 2 times" ||
    { jq .final "$WORK/poison-status.json"; die "unclear message for a poison task"; }
jq -e '[.errors[] | select(.code == "worker_lost")] | length == 2' "$WORK/poison-status.json" \
    >/dev/null || { jq .errors "$WORK/poison-status.json"; die "expected 2 lost attempts"; }
# The lease expiry in the message is an ISO-8601 UTC time, and the text
# status shows when each error happened in the same form.
jq -r '.errors[] | select(.code == "worker_lost") | .message' "$WORK/poison-status.json" |
    grep -qE 'lease expired at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\)' ||
    { jq .errors "$WORK/poison-status.json"; die "the lease expiry is not an ISO-8601 UTC time"; }
"$BIN" status "$job" --store "$STORE" >"$WORK/poison-status.txt" || die "text status failed"
grep -qE '^error s0/t00000 attempt a[0-9a-f-]+ at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z: ' \
    "$WORK/poison-status.txt" ||
    { cat "$WORK/poison-status.txt"; die "the text status does not show error times in ISO-8601"; }
jq -e '[.errors[] | .time_ms | numbers] | length == 2' "$WORK/poison-status.json" >/dev/null ||
    { jq .errors "$WORK/poison-status.json"; die "status --json lost the numeric time_ms"; }
[ "$starts" -ge 2 ] || die "only $starts workers started; the exec step did not kill its worker"
[ ! -e "$WORK/out-poison/_SUCCESS" ] || die "a failed job published _SUCCESS"

# Permanent error: an exec step on a worker without --allow-exec. Each
# case's workers serve only its own job, so a worker left from one case
# (this one lacks --allow-exec) never takes a task of the next.
write_spec "$WORK/noexec.json" "$WORK/in/*.jsonl" "$WORK/out-noexec" 1000000 \
    '{"op": "exec", "command": ["cat"]}' '"max_attempts": 3'
job=$("$BIN" submit "$WORK/noexec.json" --store "$STORE" --job-id noexec) || die "submit failed"
start_worker "$WORK/noexec-worker.log" --job noexec --exit-when-finished
"$BIN" wait "$job" --store "$STORE" --timeout 60
rc=$?
[ "$rc" = 1 ] || die "wait exited $rc for a job with a refused exec step, expected 1"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/noexec-status.json" || die "status failed"
jq -e '.errors | length == 1' "$WORK/noexec-status.json" >/dev/null ||
    { jq .errors "$WORK/noexec-status.json"; die "a permanent error was retried"; }
jq -e '.errors[0].code == "invalid" or .errors[0].code == "permanent"' "$WORK/noexec-status.json" \
    >/dev/null || { jq .errors "$WORK/noexec-status.json"; die "a refused exec step is not a permanent error"; }
jq -r '.errors[0].message' "$WORK/noexec-status.json" | grep -q -- "--allow-exec" ||
    { jq .errors "$WORK/noexec-status.json"; die "the error does not name --allow-exec"; }
jq -r '.final.message' "$WORK/noexec-status.json" | grep -q "not retried" ||
    { jq .final "$WORK/noexec-status.json"; die "state.json does not say the error was not retried"; }

# Transient errors are still retried: an exec step that fails until its
# second attempt, with max_attempts 2, finishes the job.
flaky='{"op": "exec", "command": ["sh", "-c", "if mkdir '"$WORK"'/flaky.lock 2>/dev/null; then exit 3; fi; cat"]}'
write_spec "$WORK/flaky.json" "$WORK/in/*.jsonl" "$WORK/out-flaky" 1000000 "$flaky" '"max_attempts": 2'
job=$("$BIN" submit "$WORK/flaky.json" --store "$STORE" --job-id flaky) || die "submit failed"
start_worker "$WORK/flaky-worker.log" --allow-exec --job flaky --exit-when-finished
"$BIN" wait "$job" --store "$STORE" --timeout 60 || die "a job whose first attempt failed did not finish"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/flaky-status.json" || die "status failed"
jq -e '.state == "done" and (.errors | length == 1)' "$WORK/flaky-status.json" >/dev/null ||
    { jq '{state, errors}' "$WORK/flaky-status.json"; die "expected one failed attempt, then done"; }

# Permanent store error: inputs on S3 read by a worker whose secret key is
# wrong, so every GET answers 403. The job store stays local.
if use_s3_store poison-input; then
    input=$STORE
    STORE="$WORK/store"
    "$BIN" cp "$WORK/in/a.jsonl" "$input/a.jsonl" >/dev/null || die "upload to $input failed"
    write_spec "$WORK/denied.json" "$input/*.jsonl" "$WORK/out-denied" 1000000 "" '"max_attempts": 3'
    job=$("$BIN" submit "$WORK/denied.json" --store "$STORE" --job-id denied) || die "submit failed"
    AWS_SECRET_ACCESS_KEY=wrong-secret start_worker "$WORK/denied-worker.log" --job denied --exit-when-finished
    "$BIN" wait "$job" --store "$STORE" --timeout 60
    rc=$?
    [ "$rc" = 1 ] || die "wait exited $rc for a job whose input is denied, expected 1"
    "$BIN" status "$job" --store "$STORE" --json >"$WORK/denied-status.json" || die "status failed"
    jq -e '.errors | length == 1' "$WORK/denied-status.json" >/dev/null ||
        { jq .errors "$WORK/denied-status.json"; die "an AccessDenied error was retried"; }
    jq -e '.errors[0].code == "permanent"' "$WORK/denied-status.json" >/dev/null ||
        { jq .errors "$WORK/denied-status.json"; die "expected code permanent for a 403"; }
    jq -r '.errors[0].message' "$WORK/denied-status.json" | grep -qE '403|SignatureDoesNotMatch|AccessDenied' ||
        { jq .errors "$WORK/denied-status.json"; die "the error does not show the 403"; }
    "$BIN" rm "$input/a.jsonl" >/dev/null 2>&1
else
    echo "note: no S3 server configured; skipped the AccessDenied case"
fi
echo "ok"
