#!/bin/bash
# Speculative execution: one worker is slow (its exec step sleeps 40 s),
# another is fast. Once most of the stage is committed and the slow
# attempt has run for more than max(2 x median, 10 s), the fast worker
# starts a second attempt of that task. The first commit wins, so the job
# finishes long before the slow attempt would.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 400 5
slow='{"op": "exec", "command": ["sh", "-c", "sleep ${DSP_TEST_DELAY:-0}; cat"]}'
write_spec "$WORK/clean.json" "$WORK/in/*.jsonl" "$WORK/out-clean" 12000 "$slow"
write_spec "$WORK/spec.json" "$WORK/in/*.jsonl" "$WORK/out-spec" 12000 "$slow"
"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 2 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "clean run failed"; }

job=$("$BIN" submit "$WORK/spec.json" --store "$STORE" --job-id spec) || die "submit failed"
DSP_TEST_DELAY=40 start_worker "$WORK/slow.log" --allow-exec
for _ in $(seq 50); do
    grep -q task_start "$WORK/slow.log" && break
    sleep 0.1
done
slow_task=$(grep -o 'event=task_start.* task=[^ ]*' "$WORK/slow.log" | head -1 | sed 's/.* task=//')
[ -n "$slow_task" ] || die "the slow worker did not start a task"
start=$SECONDS
start_worker "$WORK/fast.log" --allow-exec
"$BIN" wait "$job" --store "$STORE" --timeout 35 || die "job did not finish within 35 s"
echo "finished $((SECONDS - start)) s after the fast worker started; slow task $slow_task"
grep -q "speculative_attempt.*task=$slow_task" "$WORK/fast.log" ||
    die "no speculative attempt of $slow_task was logged"
jq -e --arg t "$slow_task" '.tasks[] | select(.task == $t) | .attempt | test("^a[0-9]+s-")' \
    "$STORE/jobs/$job/seals/s0.json" >/dev/null || die "the speculative attempt did not win $slow_task"
same_output "$WORK/out-clean" "$WORK/out-spec"
echo "ok"
