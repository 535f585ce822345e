#!/bin/bash
# Chaos: while a job of at least 50 tasks runs, kill -9 a random worker
# every second and start a new one. The job must finish with output
# byte-identical to a clean run, matching record counts, and no attempt
# files other than those of winning commits.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
for i in 0 1 2 3; do gen_jsonl "$WORK/in/part-$i.jsonl" 400 "$i"; done
# An exec step that sleeps makes each task last long enough to be killed.
slow='{"op": "exec", "command": ["sh", "-c", "sleep 0.2; cat"]}'
# Repeated kills can hit one slow task more often than the default 4
# attempts on a loaded machine.
chaos_opts='"lease_seconds": 5, "max_attempts": 20'
write_spec "$WORK/clean.json" "$WORK/in/*.jsonl" "$WORK/out-clean" 8000 "$slow" "$chaos_opts"
write_spec "$WORK/chaos.json" "$WORK/in/*.jsonl" "$WORK/out-chaos" 8000 "$slow" "$chaos_opts"

"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 4 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "clean run failed"; }

job=$("$BIN" submit "$WORK/chaos.json" --store "$STORE" --job-id chaos) || die "submit failed"
ntasks=$("$BIN" status "$job" --store "$STORE" --json | jq '.stages[0].tasks')
[ "$ntasks" -ge 50 ] || die "expected at least 50 tasks, got $ntasks"

pids=()
for i in 0 1 2; do
    start_worker "$WORK/worker.log" --allow-exec
    pids+=("$LAST_PID")
done
kills=0
deadline=$((SECONDS + 100))
while [ "$(job_state "$job")" = running ]; do
    [ $SECONDS -lt $deadline ] || die "job did not finish within 100 s under chaos"
    sleep 1
    victim=$((RANDOM % ${#pids[@]}))
    kill -KILL "${pids[$victim]}" 2>/dev/null && kills=$((kills + 1))
    start_worker "$WORK/worker.log" --allow-exec
    pids[$victim]=$LAST_PID
done
echo "killed $kills workers"
[ "$kills" -ge 3 ] || die "only $kills workers were killed; the job ran too fast to test chaos"
[ "$(job_state "$job")" = done ] || die "job ended as $(job_state "$job")"

same_output "$WORK/out-clean" "$WORK/out-chaos"
jq -e '.totals.records_in == 1600' "$WORK/out-chaos/_MANIFEST.json" >/dev/null ||
    die "records_in is not 1600"
# Give zombie-free cleanup a moment: killed workers leave files that the
# publisher's sweep removed; a worker still finishing removes its own.
sleep 1
attempts_match_commits "$job"
grep -q "lease_taken_over" "$WORK/worker.log" || echo "note: no lease takeover happened"
echo "ok"
