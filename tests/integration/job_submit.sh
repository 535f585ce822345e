#!/bin/bash
# Submission rules and worker lifecycle:
# - two concurrent submits of one id create one job;
# - the default id is derived from the spec, so submitting again is a no-op;
# - a different spec under an existing id is rejected;
# - a second job writing to the output of an unfinished job is rejected;
# - a worker started before the job picks it up;
# - an idle worker with --idle-exit exits;
# - gc deletes attempts and leases but keeps what status needs.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 200 7
write_spec "$WORK/a.json" "$WORK/in/*.jsonl" "$WORK/out-a" 4000
write_spec "$WORK/b.json" "$WORK/in/*.jsonl" "$WORK/out-a" 8000

# A worker started before any job exists.
start_worker "$WORK/early-worker.log" --idle-exit 5
early=$LAST_PID

# Two submits of the same id at once.
"$BIN" submit "$WORK/a.json" --store "$STORE" --job-id same >"$WORK/s1.out" 2>"$WORK/s1.err" &
p1=$!
"$BIN" submit "$WORK/a.json" --store "$STORE" --job-id same >"$WORK/s2.out" 2>"$WORK/s2.err" &
p2=$!
wait $p1 || { cat "$WORK/s1.err"; die "first concurrent submit failed"; }
wait $p2 || { cat "$WORK/s2.err"; die "second concurrent submit failed"; }
[ "$(cat "$WORK/s1.out")" = same ] || die "first submit printed '$(cat "$WORK/s1.out")'"
[ "$(cat "$WORK/s2.out")" = same ] || die "second submit printed '$(cat "$WORK/s2.out")'"
[ "$(ls "$STORE/jobs")" = same ] || die "expected exactly one job, found: $(ls "$STORE/jobs")"

# A different spec under the same id.
if "$BIN" submit "$WORK/b.json" --store "$STORE" --job-id same 2>"$WORK/b.err"; then
    die "a different spec under an existing id was accepted"
fi
grep -q "different spec" "$WORK/b.err" || { cat "$WORK/b.err"; die "unclear rejection message"; }

# Another job writing to the same output while 'same' is unfinished. The
# early worker may already be running it, so this check races only with
# completion; retry with a fresh id when 'same' already finished.
if [ "$(job_state same)" = running ]; then
    if "$BIN" submit "$WORK/b.json" --store "$STORE" --job-id other 2>"$WORK/o.err"; then
        [ "$(job_state same)" = running ] && die "a second job was allowed onto an unfinished job's output"
    else
        grep -q "output of unfinished job same" "$WORK/o.err" || { cat "$WORK/o.err"; die "unclear output conflict message"; }
    fi
fi

"$BIN" wait same --store "$STORE" --timeout 60 || die "the early worker did not run the job"
grep -q "job_found.*job=same" "$WORK/early-worker.log" || die "early worker log lacks job_found"

# The default id is stable: a second submit of the same spec is a no-op.
write_spec "$WORK/c.json" "$WORK/in/*.jsonl" "$WORK/out-c" 4000
id1=$("$BIN" submit "$WORK/c.json" --store "$STORE") || die "default-id submit failed"
id2=$("$BIN" submit "$WORK/c.json" --store "$STORE" 2>"$WORK/c2.err") || die "repeated submit failed"
[ "$id1" = "$id2" ] || die "default ids differ: $id1 vs $id2"
grep -q "nothing to do" "$WORK/c2.err" || die "repeated submit did not say it was a no-op"
start_worker "$WORK/second-worker.log" --idle-exit 3
"$BIN" wait "$id1" --store "$STORE" --timeout 60 || die "job $id1 did not finish"

# gc removes attempts and leases but keeps what status needs.
"$BIN" gc same --store "$STORE" || die "gc failed"
[ ! -d "$STORE/jobs/same/attempts" ] || [ -z "$(find "$STORE/jobs/same/attempts" -type f)" ] ||
    die "gc left attempt files"
[ -z "$(find "$STORE/jobs/same/leases" -type f 2>/dev/null)" ] || die "gc left leases"
[ "$(job_state same)" = done ] || die "status after gc is not done"
[ -f "$WORK/out-a/_SUCCESS" ] || die "gc touched the output"

# The idle worker exits by itself.
for _ in $(seq 150); do
    kill -0 "$early" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$early" 2>/dev/null && die "worker with --idle-exit 5 is still running"
wait "$early" || die "idle worker exited with an error"
grep -q worker_idle_exit "$WORK/early-worker.log" || die "idle worker did not log its exit"
echo "ok"
