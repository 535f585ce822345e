#!/bin/bash
# Output claims: of two jobs submitted at the same moment to one output,
# exactly one is accepted and the other leaves no job behind; a claim left
# by a crashed submission is taken over only once it is old. A job that
# replaces another job's published output logs it, as a warning when the
# other job ran from another job store.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 20 5

pairs=12
for i in $(seq "$pairs"); do
    write_spec "$WORK/a$i.json" "$WORK/in/*.jsonl" "$WORK/out-$i" 4000
    sed "s/\"runtime-test\"/\"race-a-$i\"/" "$WORK/a$i.json" >"$WORK/kA$i.json"
    sed "s/\"runtime-test\"/\"race-b-$i\"/" "$WORK/a$i.json" >"$WORK/kB$i.json"
done

for i in $(seq "$pairs"); do
    "$BIN" submit "$WORK/kA$i.json" --store "$STORE" >"$WORK/a$i.out" 2>"$WORK/a$i.err" &
    pa=$!
    "$BIN" submit "$WORK/kB$i.json" --store "$STORE" >"$WORK/b$i.out" 2>"$WORK/b$i.err" &
    pb=$!
    wait $pa
    ra=$?
    wait $pb
    rb=$?
    if [ "$ra" = 0 ] && [ "$rb" = 0 ]; then
        die "pair $i: both concurrent submits to one output were accepted"
    fi
    if [ "$ra" != 0 ] && [ "$rb" != 0 ]; then
        cat "$WORK/a$i.err" "$WORK/b$i.err"
        die "pair $i: both concurrent submits were rejected"
    fi
    if [ "$ra" = 0 ]; then loser=b; else loser=a; fi
    grep -q "output of unfinished job" "$WORK/$loser$i.err" ||
        { cat "$WORK/$loser$i.err"; die "pair $i: unclear rejection message"; }
done

# Every job in the store is a winner and is still running: a loser left
# neither a job directory nor an active index entry.
njobs=$(ls "$STORE/jobs" | wc -l)
[ "$njobs" = "$pairs" ] || die "expected $pairs jobs after $pairs races, found $njobs: $(ls "$STORE/jobs")"
nactive=$(ls "$STORE/active" | wc -l)
[ "$nactive" = "$pairs" ] || die "expected $pairs active jobs, found $nactive"

# A claim whose job never wrote its spec: fresh, it blocks the output;
# older than the takeover age, it is a crashed submission and is replaced.
write_spec "$WORK/late.json" "$WORK/in/*.jsonl" "$WORK/out-late" 4000
hash=$(printf '%s' "$WORK/out-late" | sha256sum | cut -d' ' -f1)
now_ms=$(($(date +%s) * 1000))
printf '{"job":"ghost","output":"%s","claimed_ms":%d}' "$WORK/out-late" "$now_ms" \
    >"$STORE/outputs/$hash"
if "$BIN" submit "$WORK/late.json" --store "$STORE" 2>"$WORK/late1.err"; then
    die "a fresh claim of a submission in progress was taken over"
fi
grep -q "output of unfinished job ghost" "$WORK/late1.err" ||
    { cat "$WORK/late1.err"; die "unclear message for a claim in progress"; }

printf '{"job":"ghost","output":"%s","claimed_ms":%d}' "$WORK/out-late" $((now_ms - 600000)) \
    >"$STORE/outputs/$hash"
"$BIN" submit "$WORK/late.json" --store "$STORE" >/dev/null 2>"$WORK/late2.err" ||
    { cat "$WORK/late2.err"; die "a crashed submission's old claim was not taken over"; }

write_spec "$WORK/shared.json" "$WORK/in/*.jsonl" "$WORK/out-shared" 4000
run_shared() { # STORE LOG
    "$BIN" run "$WORK/shared.json" --store "$1" >"$2" 2>&1 || { cat "$2"; die "run in $1 failed"; }
}
run_shared "$WORK/store-a" "$WORK/shared-a.log"
first=$(cat "$WORK/out-shared/_SUCCESS")
grep -q "event=output_replaced" "$WORK/shared-a.log" && die "the first publish logged output_replaced"
run_shared "$WORK/store-b" "$WORK/shared-b.log"
second=$(cat "$WORK/out-shared/_SUCCESS")
grep -q "level=warn event=output_replaced .*previous_job=$first " "$WORK/shared-b.log" ||
    { cat "$WORK/shared-b.log"; die "a job of another job store replaced the output without a warning"; }
run_shared "$WORK/store-b" "$WORK/shared-c.log"
grep -q "level=info event=output_replaced .*previous_job=$second$" "$WORK/shared-c.log" ||
    { cat "$WORK/shared-c.log"; die "a rerun in the same job store did not log output_replaced at info"; }
echo "ok"
