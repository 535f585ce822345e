#!/bin/bash
# A signal to `dspark run` during submission takes effect once the
# submission is complete. SIGTERM leaves a job with a plan that the printed
# resume command finishes, and SIGINT cancels the job. A delay on every
# create-only write keeps run in submission when the signal arrives. Run
# logs fault_injection_on when it opens the store, after it installed its
# signal handlers and before it submits, so the test signals at that line.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/part-0.jsonl" 100 0

# signal_during_submit SIGNAL NAME: start run with the delay, send SIGNAL
# when the store is open and set RC to run's exit code.
signal_during_submit() {
    local sig=$1 name=$2 run
    write_spec "$WORK/$name.json" "$WORK/in/*.jsonl" "$WORK/out-$name" 30000
    DSPARK_FAULTS="op=cput,error=delay,rate=1,delay_ms=1000" \
        "$BIN" run "$WORK/$name.json" --store "$STORE" --workers 1 --job-id "$name" \
        >"$WORK/$name.log" 2>&1 &
    run=$!
    STARTED_PIDS+=("$run")
    for _ in $(seq 300); do
        grep -q "event=fault_injection_on" "$WORK/$name.log" && break
        sleep 0.1
    done
    grep -q "event=fault_injection_on" "$WORK/$name.log" ||
        { cat "$WORK/$name.log"; die "run did not open the store"; }
    kill "-$sig" "$run"
    wait "$run"
    RC=$?
}

signal_during_submit TERM stopped
[ "$RC" = 143 ] || { cat "$WORK/stopped.log"; die "run exited $RC after SIGTERM, expected 143"; }
hint=$(sed -n 's/.*resume it with: dspark //p' "$WORK/stopped.log")
[ -n "$hint" ] || { cat "$WORK/stopped.log"; die "run printed no resume command"; }
[ -f "$STORE/jobs/stopped/plan.json" ] || die "the job stopped during submission has no plan"
[ "$(job_state stopped)" = running ] || die "job ended as $(job_state stopped), expected running"
read -r -a resume <<<"$hint"
timeout 120 "$BIN" "${resume[@]}" >"$WORK/resumed.log" 2>&1 ||
    { tail -20 "$WORK/resumed.log"; die "the printed resume command failed: dspark $hint"; }
[ "$(job_state stopped)" = done ] || die "job ended as $(job_state stopped) after the resume"

signal_during_submit INT interrupted
[ "$RC" = 3 ] || { cat "$WORK/interrupted.log"; die "run exited $RC after SIGINT, expected 3"; }
[ "$(job_state interrupted)" = cancelled ] ||
    die "job ended as $(job_state interrupted) after SIGINT, expected cancelled"
# The cancelled job no longer owns its output, so a new run may use it.
timeout 120 "$BIN" run "$WORK/interrupted.json" --store "$STORE" --workers 1 \
    >"$WORK/rerun.log" 2>&1 || { tail -20 "$WORK/rerun.log"; die "rerun after SIGINT failed"; }
echo "ok"
