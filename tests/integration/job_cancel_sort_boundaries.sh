#!/bin/bash
# Cancel during sort_boundaries. Every GET of a sample.bin waits 1.5 s, and
# there is one sample per map task, so the boundaries task of this sort
# job takes about 15 s. The job is cancelled while that task runs. The
# worker must abandon the task within a few seconds, commit nothing for
# the stage, exit, and leave the job cancelled.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 4000 11
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 60000 \
    '{"op": "repartition", "by": "sort", "field": "id", "shards": 2}' '"lease_seconds": 6'
job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id cancel-bounds) || die "submit failed"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/plan-status.json" || die "status failed"
bounds=$(jq -r '.stages[] | select(.kind == "sort_boundaries") | .id' "$WORK/plan-status.json")
[ -n "$bounds" ] || die "the plan has no sort_boundaries stage"
maps=$(jq -r '.stages[0].tasks' "$WORK/plan-status.json")
[ "$maps" -ge 8 ] || die "the map stage has $maps tasks; the test needs at least 8 samples"

DSPARK_FAULTS="op=get,error=delay,rate=1,key=/sample.bin,delay_ms=1500" \
    start_worker "$WORK/worker.log" --job "$job" --exit-when-finished --slots 1
worker=$LAST_PID
for _ in $(seq 600); do
    grep -q "event=task_start.*stage=$bounds" "$WORK/worker.log" && break
    kill -0 "$worker" 2>/dev/null || { tail -20 "$WORK/worker.log"; die "the worker exited early"; }
    sleep 0.1
done
grep -q "event=task_start.*stage=$bounds" "$WORK/worker.log" ||
    { tail -20 "$WORK/worker.log"; die "the sort_boundaries task did not start within 60 s"; }

"$BIN" cancel "$job" --store "$STORE" || die "cancel failed"
cancelled=$(date +%s%N)
# Noticing the cancel takes up to 2 s (the state check period), and the
# sample GET in flight takes up to 1.5 s more. Finishing the task would
# take about 12 s more.
for _ in $(seq 60); do
    kill -0 "$worker" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$worker" 2>/dev/null && { tail -20 "$WORK/worker.log"; die "the worker still runs 6 s after the cancel"; }
wait "$worker" || die "the worker exited non-zero after the cancel"
elapsed_ms=$((($(date +%s%N) - cancelled) / 1000000))
echo "worker stopped ${elapsed_ms} ms after the cancel"

grep -q "event=task_abandoned.*stage=$bounds.*reason=job_finished" "$WORK/worker.log" ||
    { grep "stage=$bounds" "$WORK/worker.log" | tail; die "the sort_boundaries task was not abandoned"; }
[ "$(job_state "$job")" = cancelled ] || die "job state is $(job_state "$job"), expected cancelled"
commits=$(find "$STORE/jobs/$job" -path "*commit*" -name "*.json" | grep -c "/$bounds/" || true)
[ "$commits" = 0 ] || { find "$STORE/jobs/$job" -path "*$bounds*"; die "the sort_boundaries stage committed $commits tasks"; }
[ ! -e "$WORK/out/_SUCCESS" ] || die "a cancelled job published _SUCCESS"
echo "ok"
