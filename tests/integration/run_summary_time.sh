#!/bin/bash
# The summary of `dspark run` counts planning in its total time and shows
# plan and run time separately. Every LIST is delayed by 300 ms, and
# planning lists the inputs at least once, so the plan time is at least
# 0.3 s and the total is the sum of both parts. The throughput of this
# small job (tens of KiB) is printed in a unit that shows a nonzero rate.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 200 7
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 1000000

DSPARK_FAULTS="op=list,error=delay,delay_ms=300,rate=1" \
    "$BIN" run "$WORK/job.json" --store "$STORE" --workers 1 >"$WORK/run.out" 2>"$WORK/run.err" ||
    { tail -5 "$WORK/run.err"; die "the job failed"; }

line=$(grep -E '^job .*: done in ' "$WORK/run.out") || { cat "$WORK/run.out"; die "no summary line"; }
re='done in ([0-9.]+) s \(plan ([0-9.]+) s, run ([0-9.]+) s\)$'
[[ $line =~ $re ]] || die "the summary does not show plan and run time: $line"
total=${BASH_REMATCH[1]} plan=${BASH_REMATCH[2]} run=${BASH_REMATCH[3]}

python3 - "$total" "$plan" "$run" <<'PY' || die "inconsistent times in: $line"
import sys
total, plan, run = map(float, sys.argv[1:])
assert plan >= 0.3, "plan %.1f s is shorter than one delayed LIST" % plan
assert run > 0, "run time is %.1f s" % run
# Each figure is rounded to 0.1 s on its own.
assert abs(total - (plan + run)) <= 0.11, "%.1f s is not plan + run" % total
PY

tp=$(grep -E '^  throughput ' "$WORK/run.out") || { cat "$WORK/run.out"; die "no throughput line"; }
re='^  throughput ([0-9.]+) (B|KiB|MiB|GiB)/s, ([0-9.]+) documents/s of input while running$'
[[ $tp =~ $re ]] || die "unexpected throughput line: $tp"
python3 -c 'import sys; assert float(sys.argv[1]) > 0 and float(sys.argv[2]) > 0' \
    "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}" || die "the throughput of a small job shows zero: $tp"
echo "ok"
