#!/bin/bash
# `dspark run` with the id of a cancelled job starts its workers, reads that
# the job is final and stops them with SIGTERM. Workers that run stopped
# did not die: run logs them as worker_stopped, never as worker_died. Four
# workers and three runs make it likely that some worker gets the SIGTERM
# before it installs its own handler and so ends by the signal.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/part-0.jsonl" 100 0
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 30000
"$BIN" submit "$WORK/job.json" --store "$STORE" --job-id gone >"$WORK/submit.log" 2>&1 || die "submit failed"
"$BIN" cancel gone --store "$STORE" 2>/dev/null || die "cancel failed"

for i in 1 2 3; do
    "$BIN" run "$WORK/job.json" --store "$STORE" --workers 4 --job-id gone >"$WORK/run-$i.log" 2>&1
    rc=$?
    [ "$rc" = 3 ] || { cat "$WORK/run-$i.log"; die "run $i exited $rc for a cancelled job, expected 3"; }
    if grep "event=worker_died" "$WORK/run-$i.log"; then
        die "run $i logged worker_died for workers that it stopped"
    fi
done
echo "ok"
