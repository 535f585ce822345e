#!/bin/bash
# SIGTERM to `dspark run` after its job finished, but before run saw it,
# ends run as a normal end would: the summary and exit 0 for a done job,
# not the resume command and 143. The test stops run with SIGSTOP, waits
# until the job is done, sends SIGTERM and lets run continue.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/part-0.jsonl" 100 0
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 30000

"$BIN" run "$WORK/job.json" --store "$STORE" --workers 1 --job-id late >"$WORK/run.log" 2>&1 &
run=$!
STARTED_PIDS+=("$run")
for _ in $(seq 300); do
    grep -q "event=job_submitted" "$WORK/run.log" && break
    sleep 0.1
done
kill -STOP "$run"
for _ in $(seq 600); do
    [ -f "$STORE/jobs/late/state.json" ] && [ "$(job_state late)" = done ] && break
    sleep 0.1
done
[ "$(job_state late)" = done ] || { cat "$WORK/run.log"; die "the job did not finish"; }
kill -TERM "$run"
kill -CONT "$run"
wait "$run"
rc=$?
[ "$rc" = 0 ] || { cat "$WORK/run.log"; die "run exited $rc for a done job, expected 0"; }
grep -q "resume it with" "$WORK/run.log" && die "run printed a resume command for a done job"
echo "ok"
