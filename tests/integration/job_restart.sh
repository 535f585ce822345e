#!/bin/bash
# Kill every worker in the middle of a job, then start new ones: tasks
# committed before the kill are not run again and the job finishes with
# the clean output. Then the same job under a few percent of injected 503
# errors still succeeds with the same output, on S3 too when configured.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
for i in 0 1 2; do gen_jsonl "$WORK/in/part-$i.jsonl" 300 "$i"; done
slow='{"op": "exec", "command": ["sh", "-c", "sleep 0.3; cat"]}'
for name in clean restart faults; do
    write_spec "$WORK/$name.json" "$WORK/in/*.jsonl" "$WORK/out-$name" 6000 "$slow" '"lease_seconds": 5'
done
"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 4 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "clean run failed"; }

job=$("$BIN" submit "$WORK/restart.json" --store "$STORE" --job-id restart) || die "submit failed"
first=()
for i in 0 1; do start_worker "$WORK/first.log" --allow-exec; first+=("$LAST_PID"); done
for _ in $(seq 100); do
    n=$(find "$STORE/jobs/$job/commits" -name '*.json' 2>/dev/null | wc -l)
    [ "$n" -ge 4 ] && break
    sleep 0.1
done
kill -KILL "${first[@]}"
sleep 0.2
committed=$(cd "$STORE/jobs/$job/commits/s0" && ls | sed 's/\.json$//' | sort)
total=$("$BIN" status "$job" --store "$STORE" --json | jq '.stages[0].tasks')
echo "killed all workers with $(echo "$committed" | wc -l) of $total tasks committed"
[ "$(echo "$committed" | wc -l)" -lt "$total" ] || die "the job finished before the kill; make tasks slower"

for i in 0 1; do start_worker "$WORK/second.log" --allow-exec; done
"$BIN" wait "$job" --store "$STORE" --timeout 90 || die "job did not finish after the restart"
for t in $committed; do
    if grep -q "event=task_start.* task=$t " "$WORK/second.log"; then
        die "task $t was committed before the kill but ran again"
    fi
done
same_output "$WORK/out-clean" "$WORK/out-restart"

# A few percent of 503s on every request type.
DSPARK_FAULTS="op=any,error=503,rate=0.03" "$BIN" run "$WORK/faults.json" --store "$STORE" \
    --workers 2 --allow-exec >"$WORK/faults.log" 2>&1 || { tail -30 "$WORK/faults.log"; die "run with 503 faults failed"; }
grep -q "event=retry" "$WORK/faults.log" || die "no retry was logged; were faults injected?"
same_output "$WORK/out-clean" "$WORK/out-faults"

# The same on S3, adding conditional PUTs that succeed but answer 500 (the
# runtime must re-read to learn that it won).
if use_s3_store restart-faults; then
    write_spec "$WORK/faults-s3.json" "$WORK/in/*.jsonl" "$WORK/out-faults-s3" 6000 "$slow" '"lease_seconds": 5'
    DSPARK_FAULTS="op=any,error=503,rate=0.03;op=cput,error=cput500,rate=0.05" "$BIN" run \
        "$WORK/faults-s3.json" --store "$STORE" --workers 2 --allow-exec >"$WORK/faults-s3.log" 2>&1 ||
        { tail -30 "$WORK/faults-s3.log"; die "run on S3 with faults failed"; }
    same_output "$WORK/out-clean" "$WORK/out-faults-s3"
    echo "S3 run with faults matches"
fi
echo "ok"
