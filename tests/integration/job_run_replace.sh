#!/bin/bash
# `dspark run` replaces workers that die. Both workers of a run get SIGKILL
# in the middle of the job. Run logs each death with the worker's pid and
# signal and starts replacements, and the job finishes with the same output
# as an undisturbed run. Workers that die at once every time (here an exec
# step kills its worker) are replaced only up to --workers plus the job's
# max_attempts times. Then run stops, names the last dead worker and prints
# the command that resumes the job.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
for i in 0 1 2 3 4 5 6 7 8 9; do gen_jsonl "$WORK/in/part-$i.jsonl" 100 "$i"; done
slow='{"op": "exec", "command": ["sh", "-c", "sleep 0.5; cat"]}'
for name in clean replaced; do
    write_spec "$WORK/$name.json" "$WORK/in/*.jsonl" "$WORK/out-$name" 40000 "$slow" '"lease_seconds": 5'
done
"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 2 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "undisturbed run failed"; }

# worker_pids RUN_PID: the pids of the workers that run started.
worker_pids() {
    ps -o pid= --ppid "$1" | tr -d ' '
}

"$BIN" run "$WORK/replaced.json" --store "$STORE" --workers 2 --allow-exec \
    --job-id replaced >"$WORK/replaced.log" 2>&1 &
run=$!
STARTED_PIDS+=("$run")
for _ in $(seq 300); do
    grep -q "event=task_start" "$WORK/replaced.log" && [ "$(worker_pids "$run" | wc -l)" = 2 ] && break
    sleep 0.1
done
workers=$(worker_pids "$run")
[ "$(echo "$workers" | wc -l)" = 2 ] || { cat "$WORK/replaced.log"; die "run did not start 2 workers"; }
# shellcheck disable=SC2086
kill -KILL $workers
echo "killed workers $(echo $workers)"

wait "$run"
rc=$?
[ "$rc" = 0 ] || { tail -30 "$WORK/replaced.log"; die "run exited $rc after its workers were killed"; }
for pid in $workers; do
    grep -qE "event=worker_died .*worker_pid=$pid signal=9 signal_name=SIGKILL" "$WORK/replaced.log" ||
        { grep -E "worker_(died|replaced)" "$WORK/replaced.log"; die "no worker_died line for $pid"; }
    grep -qE "event=worker_replaced .*dead_worker_pid=$pid " "$WORK/replaced.log" ||
        { grep -E "worker_(died|replaced)" "$WORK/replaced.log"; die "worker $pid was not replaced"; }
done
same_output "$WORK/out-clean" "$WORK/out-replaced"
echo "killed workers were replaced and the job finished"

# Every task kills the worker that runs it, so no task ever commits. With
# 2 workers and max_attempts 3, run replaces 5 workers and then stops. The
# job has more tasks than the 7 workers that die, so each worker claims a
# new task and no task uses up its attempts. The command's parent is the
# guard process of the exec step, and the guard's parent is the worker.
cat >"$WORK/crash.sh" <<'SH'
guard_parent=$(awk '{print $4}' "/proc/$PPID/stat")
kill -KILL "$guard_parent"
sleep 60
SH
crash="{\"op\": \"exec\", \"command\": [\"sh\", \"$WORK/crash.sh\"]}"
write_spec "$WORK/crash.json" "$WORK/in/*.jsonl" "$WORK/out-crash" 8000 "$crash" '"max_attempts": 3'
"$BIN" run "$WORK/crash.json" --store "$STORE" --workers 2 --allow-exec --job-id crash \
    >"$WORK/crash.log" 2>&1
rc=$?
[ "$rc" = 1 ] || { tail -30 "$WORK/crash.log"; die "run exited $rc when every worker crashed, expected 1"; }
replaced=$(grep -c "event=worker_replaced" "$WORK/crash.log")
[ "$replaced" = 5 ] || { grep -E "worker_(died|replaced)" "$WORK/crash.log"; die "$replaced workers were replaced, expected 5"; }
grep -qE "5 workers were replaced with no task committed in between.*worker pid [0-9]+ was killed by signal 9 \(SIGKILL\)" \
    "$WORK/crash.log" || { tail -5 "$WORK/crash.log"; die "no clear message about the restart limit"; }
grep -qF "resume it with: dspark run $WORK/crash.json --store file://$STORE --job-id crash --allow-exec" \
    "$WORK/crash.log" || { tail -5 "$WORK/crash.log"; die "no resume command"; }
[ "$(job_state crash)" = running ] || die "the job should be left unfinished, to be resumed"
echo "run stopped after 5 replacements"
echo "ok"
