#!/bin/bash
# Zombie: freeze a worker (SIGSTOP) in the middle of a task until its lease
# expires and another worker's attempt commits, then thaw it (SIGCONT). Its
# attempt must not win, its files must be deleted, and the output must be
# the clean output.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 200 1
slow='{"op": "exec", "command": ["sh", "-c", "sleep 3; cat"]}'
opts='"lease_seconds": 5, "speculative": false'
write_spec "$WORK/clean.json" "$WORK/in/*.jsonl" "$WORK/out-clean" 1000000 "$slow" "$opts"
write_spec "$WORK/zombie.json" "$WORK/in/*.jsonl" "$WORK/out-zombie" 1000000 "$slow" "$opts"
"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 1 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "clean run failed"; }

job=$("$BIN" submit "$WORK/zombie.json" --store "$STORE" --job-id zombie) || die "submit failed"
start_worker "$WORK/zombie-worker.log" --allow-exec
zombie=$LAST_PID
for _ in $(seq 50); do
    grep -q task_start "$WORK/zombie-worker.log" && break
    sleep 0.1
done
grep -q task_start "$WORK/zombie-worker.log" || die "the first worker never started the task"
attempt=$(grep -o 'event=task_start.*attempt=[^ ]*' "$WORK/zombie-worker.log" | head -1 | sed 's/.*attempt=//')
kill -STOP "$zombie"
echo "froze worker $zombie in attempt $attempt"

# The lease (5 s) expires; a second worker takes the task over and commits.
sleep 6
start_worker "$WORK/second-worker.log" --allow-exec
"$BIN" wait "$job" --store "$STORE" --timeout 60 || die "job did not finish after the takeover"
grep -q lease_taken_over "$WORK/second-worker.log" || die "the second worker did not take the lease over"

kill -CONT "$zombie"
# The zombie notices at its next heartbeat or commit, then deletes its files.
for _ in $(seq 100); do
    grep -qE 'commit_rejected|task_abandoned' "$WORK/zombie-worker.log" && break
    sleep 0.1
done
grep -E 'commit_rejected|task_abandoned|lease_lost' "$WORK/zombie-worker.log" ||
    die "the thawed worker neither lost its commit nor abandoned its task"
sleep 1
[ -z "$(find "$STORE/jobs/$job/attempts" -path "*$attempt*" -type f 2>/dev/null)" ] ||
    die "files of zombie attempt $attempt remain"
jq -e --arg a "$attempt" '[.tasks[].attempt] | index($a) == null' "$STORE/jobs/$job/seals/s0.json" >/dev/null ||
    die "the zombie attempt is in the seal"
same_output "$WORK/out-clean" "$WORK/out-zombie"
attempts_match_commits "$job"
echo "ok"
