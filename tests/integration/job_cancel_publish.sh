#!/bin/bash
# Cancel during publish: every copy of a part into the output waits 3 s
# (an injected delay), so publishing 24 parts, 8 at a time, takes about
# 9 s. The job is cancelled once the first parts appear. The publisher
# must stop before _MANIFEST.json and _SUCCESS, so the output is visibly
# incomplete, and the job stays cancelled.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 2400 3
size=$(stat -c %s "$WORK/in/a.jsonl")
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" $((size / 24 + 1))
job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id cancel-publish) || die "submit failed"

# The job store and the output share one local store, so each part is
# published with one copy request, and only publishing copies.
DSPARK_FAULTS="op=copy,error=delay,rate=1,delay_ms=3000" \
    start_worker "$WORK/worker.log" --job "$job" --exit-when-finished
worker=$LAST_PID
for _ in $(seq 1200); do
    [ -n "$(find "$WORK/out" -name 'part-*' 2>/dev/null)" ] && break
    kill -0 "$worker" 2>/dev/null || { tail -20 "$WORK/worker.log"; die "the worker exited before publishing"; }
    sleep 0.1
done
[ -n "$(find "$WORK/out" -name 'part-*' 2>/dev/null)" ] ||
    { tail -20 "$WORK/worker.log"; die "no part was published within 120 s"; }
[ ! -e "$WORK/out/_SUCCESS" ] || die "publishing finished before the cancel; the copy delay is too short"

"$BIN" cancel "$job" --store "$STORE" || die "cancel failed"
wait "$worker" || { tail -20 "$WORK/worker.log"; die "the worker exited non-zero after the cancel"; }

[ "$(job_state "$job")" = cancelled ] || die "job $job is $(job_state "$job"), expected cancelled"
[ ! -e "$WORK/out/_SUCCESS" ] || die "the cancelled job published _SUCCESS"
[ ! -e "$WORK/out/_MANIFEST.json" ] || die "the cancelled job published _MANIFEST.json"
grep -q "event=publish_stopped.*is cancelled, so publishing stopped" "$WORK/worker.log" ||
    { tail -20 "$WORK/worker.log"; die "the worker did not log that publishing stopped"; }
grep -q "event=publish_failed" "$WORK/worker.log" && die "the stopped publish was logged as a failure"
echo "ok"
