#!/bin/bash
# An output claim is valid only while its job's spec writes that output.
# Concurrent submits of two specs under one --job-id all claim their own
# outputs, but only one spec.json is created. A losing submit's claim then
# names a job that writes another output, so it must not block a later job
# that writes the loser's output.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 20 5
write_spec "$WORK/a.json" "$WORK/in/*.jsonl" "$WORK/out/race3a" 4000
write_spec "$WORK/b.json" "$WORK/in/*.jsonl" "$WORK/out/race3b" 4000
write_spec "$WORK/c.json" "$WORK/in/*.jsonl" "$WORK/out/race3a" 4000 '{"op": "normalize"}'
write_spec "$WORK/d.json" "$WORK/in/*.jsonl" "$WORK/out/race3b" 4000 '{"op": "normalize"}'

# claim_key OUTPUT: the claim's key in the job store, outputs/<sha256 of the URI>.
claim_key() {
    printf 'outputs/%s' "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"
}

# ---- concurrent submits of two specs under one job id ----
pids=()
for i in 1 2 3; do
    "$BIN" submit "$WORK/a.json" --job-id samejob2 --store "$STORE" >"$WORK/a$i.out" 2>"$WORK/a$i.err" &
    pids+=($!)
    "$BIN" submit "$WORK/b.json" --job-id samejob2 --store "$STORE" >"$WORK/b$i.out" 2>"$WORK/b$i.err" &
    pids+=($!)
done
accepted=0
for pid in "${pids[@]}"; do
    wait "$pid" && accepted=$((accepted + 1))
done
[ "$accepted" -ge 1 ] || { cat "$WORK"/[ab]?.err; die "every concurrent submit was rejected"; }
winner_output=$(jq -r .output.uri "$STORE/jobs/samejob2/spec.json")
case "$winner_output" in
    "$WORK/out/race3a") loser=b; loser_output="$WORK/out/race3b"; third="$WORK/d.json"; same="$WORK/c.json" ;;
    "$WORK/out/race3b") loser=a; loser_output="$WORK/out/race3a"; third="$WORK/c.json"; same="$WORK/d.json" ;;
    *) die "job samejob2 writes $winner_output, expected one of the two outputs" ;;
esac
for i in 1 2 3; do
    if [ -s "$WORK/$loser$i.out" ]; then
        die "submit $i of the losing spec printed a job id: $(cat "$WORK/$loser$i.out")"
    fi
    grep -q "job samejob2 \(was submitted at the same time with a\|already exists with a\) different spec" \
        "$WORK/$loser$i.err" ||
        { cat "$WORK/$loser$i.err"; die "submit $i of the losing spec failed with an unclear message"; }
done
echo "concurrent submits: samejob2 writes $winner_output;" \
    "losing claim left: $([ -e "$STORE/$(claim_key "$loser_output")" ] && echo yes || echo no)"

# A third job that writes the losing spec's output is accepted and owns
# that output's claim.
"$BIN" submit "$third" --job-id thirdjob --store "$STORE" >"$WORK/third.out" 2>"$WORK/third.err" ||
    { cat "$WORK/third.err"; die "a job writing $loser_output was rejected after the race"; }
[ "$(jq -r .job "$STORE/$(claim_key "$loser_output")")" = thirdjob ] ||
    die "the claim of $loser_output does not name thirdjob"

# ---- a claim whose job writes another output, written directly ----
# The race above does not always leave a losing claim behind, so this case
# creates one: samejob2's claim on an output that its spec does not write.
stale_output="$WORK/out/stale"
now_ms=$(($(date +%s) * 1000))
printf '{"job":"samejob2","output":"%s","claimed_ms":%d}' "$stale_output" "$now_ms" \
    >"$STORE/$(claim_key "$stale_output")"
write_spec "$WORK/e.json" "$WORK/in/*.jsonl" "$stale_output" 4000
"$BIN" submit "$WORK/e.json" --job-id stalejob --store "$STORE" >"$WORK/e.out" 2>"$WORK/e.err" ||
    { cat "$WORK/e.err"; die "a claim of samejob2, which writes $winner_output, blocked $stale_output"; }
[ "$(jq -r .job "$STORE/$(claim_key "$stale_output")")" = stalejob ] ||
    die "the claim of $stale_output does not name stalejob"
grep -q "event=output_claim_replaced .*previous_job=samejob2" "$WORK/e.err" ||
    { cat "$WORK/e.err"; die "replacing the stale claim is not logged"; }

# A valid claim still blocks: samejob2 runs and writes $winner_output.
if "$BIN" submit "$same" --job-id blocked --store "$STORE" >/dev/null 2>"$WORK/blocked.err"; then
    die "a job writing $winner_output was accepted while samejob2 runs"
fi
grep -q "is the output of unfinished job samejob2" "$WORK/blocked.err" ||
    { cat "$WORK/blocked.err"; die "the rejection does not name samejob2"; }
echo "ok"
