#!/bin/bash
# Publishing never deletes files that DSpark did not write. A job whose
# output directory contains a user's own files fails before it changes
# anything there, and the error names the files, which survive. A rerun
# into an earlier DSpark output replaces that output, removing its extra
# parts.
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
grep -q "contains 2 objects that DSpark did not write (notes.txt, sub/data.jsonl)" "$WORK/run1.log" ||
    { tail -5 "$WORK/run1.log"; die "the failure does not name the foreign files"; }
[ "$(cat "$WORK/victim/notes.txt")" = "keep me" ] || die "notes.txt was changed or deleted"
[ -f "$WORK/victim/sub/data.jsonl" ] || die "sub/data.jsonl was deleted"
[ ! -e "$WORK/victim/_SUCCESS" ] || die "a _SUCCESS was written next to foreign files"
[ -z "$(find "$WORK/victim" -name 'part-*')" ] || die "parts were copied next to foreign files"

# An earlier DSpark output is replaced, and its extra parts go.
rm -r "$WORK/victim"
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
