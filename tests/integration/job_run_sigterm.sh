#!/bin/bash
# SIGTERM to `dspark run`, as a workflow orchestrator or a CI timeout sends
# it, stops the job for a later resume instead of cancelling it. Run stops
# its workers, which release their tasks, exits 143 and prints a resume
# command. The job stays unfinished, and the printed command completes it
# with the same output as an undisturbed run. The leases are long, so the
# resumed run finishes in time only if the stopped tasks were released.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
for i in 0 1 2 3 4 5; do gen_jsonl "$WORK/in/part-$i.jsonl" 100 "$i"; done
slow='{"op": "exec", "command": ["sh", "-c", "sleep 1; cat"]}'
for name in clean stopped; do
    write_spec "$WORK/$name.json" "$WORK/in/*.jsonl" "$WORK/out-$name" 30000 "$slow" '"lease_seconds": 300'
done
"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 2 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "undisturbed run failed"; }

# Start from a directory that the resume command does not run in, so the
# spec path it prints must be absolute.
mkdir "$WORK/cwd"
cp "$WORK/stopped.json" "$WORK/cwd/stopped.json"
(cd "$WORK/cwd" && exec "$BIN" run stopped.json --store "$STORE" --workers 2 --allow-exec \
    --job-id stopped) >"$WORK/stopped.log" 2>&1 &
run=$!
STARTED_PIDS+=("$run")
for _ in $(seq 300); do
    [ "$(find "$STORE/jobs/stopped/commits" -name '*.json' 2>/dev/null | wc -l)" -ge 1 ] && break
    sleep 0.1
done
workers=$(ps -o pid= --ppid "$run" | tr -d ' ')
[ -n "$workers" ] || { cat "$WORK/stopped.log"; die "run has no workers"; }
kill -TERM "$run"

for _ in $(seq 600); do
    kill -0 "$run" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$run" 2>/dev/null && die "run still runs 60 s after SIGTERM"
wait "$run"
rc=$?
[ "$rc" = 143 ] || { tail -20 "$WORK/stopped.log"; die "run exited $rc after SIGTERM, expected 143"; }
for pid in $workers; do
    [ -e "/proc/$pid" ] && die "worker $pid still runs after run exited"
done

status=$("$BIN" status stopped --store "$STORE" --json) || die "status failed"
[ "$(echo "$status" | jq -r .state)" = running ] ||
    die "job ended as $(echo "$status" | jq -r .state) after SIGTERM, expected unfinished (running)"
committed=$(echo "$status" | jq '.stages[0].committed')
total=$(echo "$status" | jq '.stages[0].tasks')
echo "SIGTERM with $committed of $total tasks committed"
[ "$committed" -lt "$total" ] || die "the job finished before the SIGTERM; make tasks slower"
[ "$(echo "$status" | jq '.stages[0].running')" = 0 ] ||
    die "stopped tasks still have leases: $(echo "$status" | jq -c .stages[0])"
grep -q "event=task_abandoned.*reason=worker_stopping" "$WORK/stopped.log" ||
    die "no worker logged an abandoned task"

hint=$(sed -n 's/.*resume it with: dspark //p' "$WORK/stopped.log")
[ -n "$hint" ] || { tail -5 "$WORK/stopped.log"; die "run printed no resume command"; }
read -r -a resume <<<"$hint"
# Far below lease_seconds.
timeout 120 "$BIN" "${resume[@]}" >"$WORK/resumed.log" 2>&1 ||
    { tail -20 "$WORK/resumed.log"; die "the printed resume command failed: dspark $hint"; }
[ "$(job_state stopped)" = done ] || die "job ended as $(job_state stopped) after the resume"
# The summary's counters include the tasks committed before the SIGTERM,
# so a rate over the resumed run's time alone would be too high.
grep -q "^  resumed    $committed of $total tasks were done before this run" "$WORK/resumed.log" ||
    { cat "$WORK/resumed.log"; die "the resumed run's summary does not say it resumed"; }
if grep "^  throughput" "$WORK/resumed.log"; then
    die "the resumed run's summary shows a throughput over work of an earlier run"
fi
same_output "$WORK/out-clean" "$WORK/out-stopped"
echo "ok"
