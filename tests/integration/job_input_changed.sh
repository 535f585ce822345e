#!/bin/bash
# An input that changes size between submit and the task that reads it
# fails the job at once (a permanent error), naming the input and both
# sizes, instead of publishing output from other bytes than the plan
# listed. An unchanged input still runs.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 300 3
gen_jsonl "$WORK/in/b.jsonl" 300 4
planned=$(stat -c %s "$WORK/in/a.jsonl")
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 1000000

job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id changed) || die "submit failed"
truncate -s 3000 "$WORK/in/a.jsonl"
start_worker "$WORK/worker.log" --job "$job" --exit-when-finished
"$BIN" wait "$job" --store "$STORE" --timeout 60 >/dev/null 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/worker.log"; die "a job with a changed input exited $rc, expected 1"; }
[ "$(grep -c 'event=task_failed' "$WORK/worker.log")" = 1 ] ||
    die "the changed input was retried; a permanent error should fail the job at once"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/status.json" || die "status failed"
jq -e --arg want "is 3000 bytes but was $planned bytes when the job was planned" \
    '.errors[0].message | contains($want)' "$WORK/status.json" >/dev/null ||
    { jq .errors "$WORK/status.json"; die "the job's error does not name both sizes"; }
jq -e '.errors[0].message | contains("in/a.jsonl")' "$WORK/status.json" >/dev/null ||
    die "the job's error does not name the input"
[ ! -e "$WORK/out/_SUCCESS" ] || die "output was published from a changed input"

# The same spec on unchanged inputs runs.
gen_jsonl "$WORK/in/a.jsonl" 300 3
"$BIN" run "$WORK/job.json" --store "$STORE" >"$WORK/run.log" 2>&1 ||
    { tail -5 "$WORK/run.log"; die "the job on unchanged inputs failed"; }
echo "ok"
