#!/bin/bash
# Publishing never deletes files that DSpark did not write. A job whose
# output directory contains a user's own files is rejected at submit,
# before any task runs, and the error names the output and the files,
# which survive. A file that appears while the job runs fails the job at
# publish without changing the output. Once the file is removed, the spec
# runs again under a new job id. Under _dedup/clusters/ only the names
# DSpark writes are its own. A rerun into an earlier DSpark output
# replaces that output, removing its extra parts.
# A publish that keeps failing ends the job after max_attempts (at once
# for a permanent error) instead of being retried forever.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in" "$WORK/victim/sub"
gen_jsonl "$WORK/in/a.jsonl" 400 1
echo "keep me" >"$WORK/victim/notes.txt"
echo '{"text": "mine"}' >"$WORK/victim/sub/data.jsonl"
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/victim" 1000000

"$BIN" run "$WORK/job.json" --store "$STORE" >"$WORK/run1.log" 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/run1.log"; die "a job into a foreign directory exited $rc, expected 1"; }
grep -q "submit failed: output $WORK/victim contains 2 objects that DSpark did not write (notes.txt, sub/data.jsonl)" "$WORK/run1.log" ||
    { tail -5 "$WORK/run1.log"; die "the submit error does not name the output and the foreign files"; }
[ -z "$(ls "$STORE/jobs" 2>/dev/null)" ] || die "a job was created for a foreign output: $(ls "$STORE/jobs")"
[ "$(cat "$WORK/victim/notes.txt")" = "keep me" ] || die "notes.txt was changed or deleted"
[ -f "$WORK/victim/sub/data.jsonl" ] || die "sub/data.jsonl was deleted"
[ ! -e "$WORK/victim/_SUCCESS" ] || die "a _SUCCESS was written next to foreign files"
[ -z "$(find "$WORK/victim" -name 'part-*')" ] || die "parts were copied next to foreign files"

# A foreign file that appears after submit fails the job at publish.
rm -r "$WORK/victim"
write_spec "$WORK/late.json" "$WORK/in/*.jsonl" "$WORK/late" 1000000
job=$("$BIN" submit "$WORK/late.json" --store "$STORE" 2>"$WORK/late-submit.err") ||
    { cat "$WORK/late-submit.err"; die "submit into an empty output failed"; }
mkdir -p "$WORK/late"
echo "keep me" >"$WORK/late/notes.txt"
"$BIN" worker --store "$STORE" --job "$job" --exit-when-finished >"$WORK/late-worker.log" 2>&1 ||
    die "the worker of $job failed"
[ "$(job_state "$job")" = failed ] || die "job $job is $(job_state "$job"), expected failed"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/late-status.json"
jq -r .final.message "$WORK/late-status.json" |
    grep -q "contains 1 object that DSpark did not write (notes.txt).*new --job-id" ||
    die "the publish failure does not name the file and the retry: $(jq .final "$WORK/late-status.json")"
[ "$(cat "$WORK/late/notes.txt")" = "keep me" ] || die "notes.txt was changed or deleted at publish"

# Once the file is removed, submitting the same spec again names the failed
# job and prints how to rerun it, and a new job id publishes the output.
rm "$WORK/late/notes.txt"
again=$("$BIN" submit "$WORK/late.json" --store "$STORE" 2>"$WORK/late-again.err") ||
    { cat "$WORK/late-again.err"; die "a repeated submit of the failed job's spec failed"; }
[ "$again" = "$job" ] || die "a repeated submit named $again, expected $job"
grep -q "job $job already exists with this spec and is failed.*new --job-id" "$WORK/late-again.err" ||
    { cat "$WORK/late-again.err"; die "a repeated submit does not say how to rerun the failed job"; }
retry=$("$BIN" submit "$WORK/late.json" --store "$STORE" --job-id late-retry 2>"$WORK/late-retry.err") ||
    { cat "$WORK/late-retry.err"; die "the retry under a new job id was rejected"; }
"$BIN" worker --store "$STORE" --job "$retry" --exit-when-finished >"$WORK/late-retry.log" 2>&1 ||
    die "the worker of $retry failed"
[ "$(job_state "$retry")" = done ] || die "the retry $retry is $(job_state "$retry"), expected done"
[ "$(cat "$WORK/late/_SUCCESS")" = "$retry" ] || die "the retry did not publish _SUCCESS"

# An earlier DSpark output is replaced, and its extra parts go.
write_spec "$WORK/many.json" "$WORK/in/*.jsonl" "$WORK/out" 20000
"$BIN" run "$WORK/many.json" --store "$STORE" >"$WORK/run2.log" 2>&1 || die "the split job failed"
parts=$(find "$WORK/out" -name 'part-*' | wc -l)
[ "$parts" -gt 1 ] || die "expected several parts, got $parts"
write_spec "$WORK/one.json" "$WORK/in/*.jsonl" "$WORK/out" 1000000
"$BIN" run "$WORK/one.json" --store "$STORE" >"$WORK/run4.log" 2>&1 ||
    { tail -5 "$WORK/run4.log"; die "the rerun into an earlier output failed"; }
[ "$(find "$WORK/out" -name 'part-*' | wc -l)" = 1 ] || die "extra parts of the earlier output remain"
[ "$(jq -r .job "$WORK/out/_MANIFEST.json")" = "$(cat "$WORK/out/_SUCCESS")" ] ||
    die "_SUCCESS does not name the manifest's job"

# A republish that fails after it copied some parts leaves neither the
# earlier _SUCCESS nor the earlier _MANIFEST.json, whose sizes and SHA-256s
# no longer match the parts. The injected 403 is permanent, so the job
# fails at its first failed copy. With seed 1 the first two draws are
# above 0.5, so the first two copies succeed and the third fails.
"$BIN" run "$WORK/many.json" --store "$STORE" >"$WORK/run5.log" 2>&1 || die "the split job failed"
old_job=$(cat "$WORK/out/_SUCCESS")
[ "$(jq -r .job "$WORK/out/_MANIFEST.json")" = "$old_job" ] || die "the manifest does not name the split job $old_job"
cp "$WORK/out/_MANIFEST.json" "$WORK/old-manifest.json"
write_spec "$WORK/half.json" "$WORK/in/*.jsonl" "$WORK/out" 20000 '{"op": "length", "min_words": 60}'
DSPARK_FAULTS="op=copy,error=403,rate=0.5,seed=1" "$BIN" run "$WORK/half.json" --store "$STORE" \
    >"$WORK/half.log" 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/half.log"; die "a republish failing with 403 exited $rc, expected 1"; }
grep -q "injected 403" "$WORK/half.log" ||
    { tail -5 "$WORK/half.log"; die "the republish did not fail on an injected 403"; }
[ ! -e "$WORK/out/_SUCCESS" ] || die "the failed republish left _SUCCESS ($(cat "$WORK/out/_SUCCESS"))"
[ ! -e "$WORK/out/_MANIFEST.json" ] ||
    die "the failed republish left the manifest of job $(jq -r .job "$WORK/out/_MANIFEST.json")"
changed=0
for f in "$WORK"/out/part-*; do
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    jq -e --arg n "$(basename "$f")" --arg s "$sum" \
        '.files[] | select(.name == $n and .sha256 == $s)' "$WORK/old-manifest.json" >/dev/null ||
        changed=$((changed + 1))
done
[ "$changed" -gt 0 ] || die "the failed republish replaced no part, so it did not fail midway"
grep -q "event=output_manifest_removed.*previous_job=$old_job" "$WORK/half.log" ||
    die "the removal of the earlier manifest is not logged"
"$BIN" run "$WORK/half.json" --store "$STORE" >"$WORK/half2.log" 2>&1 ||
    { tail -5 "$WORK/half2.log"; die "the republish without faults failed"; }
[ "$(jq -r .job "$WORK/out/_MANIFEST.json")" = "$(cat "$WORK/out/_SUCCESS")" ] ||
    die "after the republish, _SUCCESS does not name the manifest's job"

# Only _dedup/clusters/stepN.jsonl is DSpark's: another file there is
# foreign, both at submit and when it appears before publish.
mkdir -p "$WORK/clu/_dedup/clusters"
echo "keep me" >"$WORK/clu/_dedup/clusters/mine.txt"
write_spec "$WORK/clu.json" "$WORK/in/*.jsonl" "$WORK/clu" 1000000
"$BIN" run "$WORK/clu.json" --store "$STORE" >"$WORK/clu.log" 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/clu.log"; die "a job into an output with _dedup/clusters/mine.txt exited $rc, expected 1"; }
grep -q "contains 1 object that DSpark did not write (_dedup/clusters/mine.txt)" "$WORK/clu.log" ||
    { tail -5 "$WORK/clu.log"; die "the submit error does not name _dedup/clusters/mine.txt"; }
[ "$(cat "$WORK/clu/_dedup/clusters/mine.txt")" = "keep me" ] || die "_dedup/clusters/mine.txt was changed or deleted"
rm -r "$WORK/clu"
job=$("$BIN" submit "$WORK/clu.json" --store "$STORE" --job-id clu-late 2>"$WORK/clu-submit.err") ||
    { cat "$WORK/clu-submit.err"; die "submit into an empty output failed"; }
mkdir -p "$WORK/clu/_dedup/clusters"
echo "keep me" >"$WORK/clu/_dedup/clusters/mine.txt"
"$BIN" worker --store "$STORE" --job "$job" --exit-when-finished >"$WORK/clu-worker.log" 2>&1 ||
    die "the worker of $job failed"
[ "$(job_state "$job")" = failed ] || die "job $job is $(job_state "$job"), expected failed"
[ "$(cat "$WORK/clu/_dedup/clusters/mine.txt")" = "keep me" ] ||
    die "_dedup/clusters/mine.txt was changed or deleted at publish"
[ ! -e "$WORK/clu/_SUCCESS" ] || die "a _SUCCESS was written next to _dedup/clusters/mine.txt"

# ---- publishing that cannot succeed ----
write_spec "$WORK/pub.json" "$WORK/in/*.jsonl" "$WORK/out-pub" 1000000 "" '"max_attempts": 2'
DSPARK_FAULTS="op=copy,error=500,rate=1" timeout 120 "$BIN" run "$WORK/pub.json" --store "$STORE" \
    >"$WORK/pub500.log" 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/pub500.log"; die "a publish failing with 500 exited $rc, expected 1"; }
[ "$(grep -c 'event=publish_failed' "$WORK/pub500.log")" = 2 ] ||
    { grep publish_failed "$WORK/pub500.log"; die "expected 2 publish attempts with max_attempts 2"; }
grep -q "failed: task _publish .*injected 500" "$WORK/pub500.log" ||
    { tail -3 "$WORK/pub500.log"; die "the job's error does not name the publish failure"; }

DSPARK_FAULTS="op=copy,error=403,rate=1" timeout 120 "$BIN" run "$WORK/pub.json" --store "$STORE" \
    >"$WORK/pub403.log" 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/pub403.log"; die "a publish failing with 403 exited $rc, expected 1"; }
[ "$(grep -c 'event=publish_failed' "$WORK/pub403.log")" = 1 ] ||
    die "a permanent publish error was retried"
echo "ok"
