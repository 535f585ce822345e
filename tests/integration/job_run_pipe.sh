#!/bin/bash
# `dspark run` whose output pipe closes early (`| head -1`) keeps running:
# the job finishes, nothing is left running, and a second run to the same
# output works. A run killed with SIGKILL leaves workers that finish the job
# and then exit by themselves. A run whose workers were all stopped prints a
# resume command that works.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 800 11
# Tasks of about half a second each, so run logs while the job runs.
slow='{"op": "exec", "command": ["sh", "-c", "sleep 0.5; cat"]}'
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 30000 "$slow"

# workers_of_store: PIDs of dspark workers using this test's store.
workers_of_store() {
    pgrep -f -- "worker --store $STORE" || true
}

# start_run JOB_ID LOG: start `dspark run` of the slow job in the
# background, wait until both its workers run, and set run_pid and workers.
start_run() {
    "$BIN" run "$WORK/job.json" --store "$STORE" --workers 2 --allow-exec --job-id "$1" \
        >"$2" 2>&1 &
    run_pid=$!
    STARTED_PIDS+=("$run_pid")
    for _ in $(seq 50); do
        [ "$(workers_of_store | wc -l)" -ge 2 ] && break
        sleep 0.1
    done
    workers=$(workers_of_store)
    [ -n "$workers" ] || die "run started no workers"
    STARTED_PIDS+=($workers)
}

# Progress and worker logs (stderr) and the summary (stdout) into one pipe
# that head closes after the first line.
"$BIN" run "$WORK/job.json" --store "$STORE" --workers 2 --allow-exec --job-id piped 2>&1 | head -1
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || die "run into a closed pipe exited $rc, expected 0"
[ "$(job_state piped)" = done ] || die "job piped ended as $(job_state piped), expected done"
[ -f "$WORK/out/_SUCCESS" ] || die "job piped did not publish its output"
sleep 1
[ -z "$(workers_of_store)" ] || die "workers still running after run returned: $(workers_of_store)"

# Only stdout into the pipe: the summary has more than one line.
"$BIN" run "$WORK/job.json" --store "$STORE" --workers 2 --allow-exec --job-id stdout-piped \
    2>"$WORK/stdout-piped.err" | head -1 >"$WORK/summary-line"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || { tail -5 "$WORK/stdout-piped.err"; die "run with a closed stdout exited $rc"; }
[ -s "$WORK/summary-line" ] || die "run printed no summary line"
[ "$(job_state stdout-piped)" = done ] || die "job stdout-piped ended as $(job_state stdout-piped)"

# Run killed with SIGKILL mid-job: its workers finish the job and exit.
start_run orphaned "$WORK/orphaned.log"
sleep 1
kill -KILL "$run_pid"
"$BIN" wait orphaned --store "$STORE" --timeout 60 || die "workers of a killed run did not finish the job"
for _ in $(seq 100); do
    [ -z "$(workers_of_store)" ] && break
    sleep 0.1
done
[ -z "$(workers_of_store)" ] || die "workers of a killed run still running 10 s after the job finished"

# The output is free again for a later job.
"$BIN" run "$WORK/job.json" --store "$STORE" --workers 2 --allow-exec --job-id second \
    >"$WORK/second.log" 2>&1 || { tail -5 "$WORK/second.log"; die "a second run to the same output failed"; }
[ "$(job_state second)" = done ] || die "job second ended as $(job_state second)"

# Every worker of a run stopped with SIGTERM, which run does not replace
# because the workers exit with status 0: run exits 1 and prints a command
# that resumes the job. That command, run as printed, finishes the job.
start_run abandoned "$WORK/abandoned.log"
sleep 1
kill -TERM $workers
rc=0
wait "$run_pid" || rc=$?
[ "$rc" = 1 ] || die "run whose workers were all stopped exited $rc, expected 1"
hint=$(sed -n 's/.*resume it with: dspark //p' "$WORK/abandoned.log")
[ -n "$hint" ] || { tail -5 "$WORK/abandoned.log"; die "run printed no resume command"; }
read -r -a resume <<<"$hint"
"$BIN" "${resume[@]}" >"$WORK/resumed.log" 2>&1 ||
    { tail -5 "$WORK/resumed.log"; die "the printed resume command failed: $hint"; }
[ "$(job_state abandoned)" = done ] || die "job abandoned ended as $(job_state abandoned) after resuming"
echo "ok"
