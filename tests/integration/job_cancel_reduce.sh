#!/bin/bash
# Cancel during a reduce: a dedup_exact job whose shuffle reads are slowed
# by an injected delay (every GET of a shuffle.bin waits 1.5 s, so one
# reduce task takes about 9 s) is cancelled while its first reduce task
# runs. The worker must abandon the task within a few seconds, commit
# nothing for the reduce stage, exit, and leave the job cancelled.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 4000 7
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 120000 '{"op": "dedup_exact"}' \
    '"lease_seconds": 6'
job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id cancel-reduce) || die "submit failed"
reduce=$("$BIN" status "$job" --store "$STORE" --json |
    jq -r '.stages[] | select(.kind == "dedup_exact_reduce") | .id')
[ -n "$reduce" ] || die "the plan has no dedup_exact_reduce stage"

DSPARK_FAULTS="op=get,error=delay,rate=1,key=/shuffle.bin,delay_ms=1500" \
    start_worker "$WORK/worker.log" --job "$job" --exit-when-finished --slots 1
worker=$LAST_PID
for _ in $(seq 600); do
    grep -q "event=task_start.*stage=$reduce" "$WORK/worker.log" && break
    kill -0 "$worker" 2>/dev/null || { tail -20 "$WORK/worker.log"; die "the worker exited early"; }
    sleep 0.1
done
grep -q "event=task_start.*stage=$reduce" "$WORK/worker.log" ||
    { tail -20 "$WORK/worker.log"; die "no reduce task started within 60 s"; }

"$BIN" cancel "$job" --store "$STORE" || die "cancel failed"
cancelled=$(date +%s%N)
# Noticing the cancel takes up to 2 s (the state check period), and the
# GETs in flight take up to 1.5 s more. Finishing the reduce would take
# about 9 s.
for _ in $(seq 60); do
    kill -0 "$worker" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$worker" 2>/dev/null && { tail -20 "$WORK/worker.log"; die "the worker still runs 6 s after the cancel"; }
wait "$worker" || die "the worker exited non-zero after the cancel"
elapsed_ms=$((($(date +%s%N) - cancelled) / 1000000))
echo "worker stopped ${elapsed_ms} ms after the cancel"

grep -q "event=task_abandoned.*stage=$reduce.*reason=job_finished" "$WORK/worker.log" ||
    { grep "stage=$reduce" "$WORK/worker.log" | tail; die "the reduce task was not abandoned"; }
[ "$(job_state "$job")" = cancelled ] || die "job state is $(job_state "$job"), expected cancelled"
commits=$(find "$STORE/jobs/$job" -path "*commit*" -name "*.json" | grep -c "/$reduce/" || true)
[ "$commits" = 0 ] || { find "$STORE/jobs/$job" -path "*$reduce*"; die "the reduce stage committed $commits tasks"; }
[ ! -e "$WORK/out/_SUCCESS" ] || die "a cancelled job published _SUCCESS"
echo "ok"
