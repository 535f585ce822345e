#!/bin/bash
# The same job run with 1, 2 and 4 workers publishes byte-identical output
# on the local store. With an S3 server configured, a 2-worker run with the
# job store and the output on S3 must match too.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
for i in 0 1 2 3 4 5; do gen_jsonl "$WORK/in/part-$i.jsonl" 300 "$i"; done

for n in 1 2 4; do
    write_spec "$WORK/spec-$n.json" "$WORK/in/*.jsonl" "$WORK/out-$n" 20000
    "$BIN" run "$WORK/spec-$n.json" --store "$STORE" --workers "$n" >"$WORK/run-$n.log" 2>&1 ||
        { tail -20 "$WORK/run-$n.log"; die "run with $n workers failed"; }
done
grep -q "documents  in 1800" "$WORK/run-1.log" || { cat "$WORK/run-1.log"; die "summary lacks the input count"; }
ntasks=$(jq '.stages[0].tasks' <("$BIN" status "$(ls "$STORE/jobs" | head -1)" --store "$STORE" --json))
[ "$ntasks" -ge 10 ] || die "expected at least 10 tasks, got $ntasks"
same_output "$WORK/out-1" "$WORK/out-2"
same_output "$WORK/out-1" "$WORK/out-4"

# Record counts reconcile: out + removed by length = in.
jq -e '.totals.records_in == 1800 and .totals.records_out + .operators[0].removed.too_few_words == .totals.records_in' \
    "$WORK/out-1/_MANIFEST.json" >/dev/null || {
    jq '.totals, .operators' "$WORK/out-1/_MANIFEST.json"; die "record counts do not reconcile"; }

if use_s3_store workers-identical; then
    out="s3://$DSPARK_TEST_S3_BUCKET/out-identical-$$-$RANDOM"
    write_spec "$WORK/spec-s3.json" "$WORK/in/*.jsonl" "$out" 20000
    "$BIN" run "$WORK/spec-s3.json" --store "$STORE" --workers 2 >"$WORK/run-s3.log" 2>&1 ||
        { tail -20 "$WORK/run-s3.log"; die "run on S3 failed"; }
    fetch_output "$out" "$WORK/out-s3" || die "cannot download $out"
    same_output "$WORK/out-1" "$WORK/out-s3"
    echo "S3 run matches"
fi
echo "ok"
