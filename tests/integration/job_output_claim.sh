#!/bin/bash
# Output claims: of two jobs submitted at the same moment to one output,
# exactly one is accepted and the other leaves no job behind; a claim left
# by a crashed submission is taken over only once it is old. A job that
# replaces another job's published output logs it, as a warning when the
# other job ran from another job store. Jobs of two job stores never
# publish to one output at once: the publishing lock makes the second fail
# before it changes anything, so every output matches its _MANIFEST.json.
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

# ---- the publishing lock ----
# A fresh lock of another job fails the publish before anything under the
# output changes.
write_spec "$WORK/locked.json" "$WORK/in/*.jsonl" "$WORK/out-locked" 4000
mkdir -p "$WORK/out-locked"
now_ms=$(($(date +%s) * 1000))
printf '{"job":"other-job","job_store":"file:///elsewhere","time_ms":%d}' "$now_ms" \
    >"$WORK/out-locked/_PUBLISHING"
"$BIN" run "$WORK/locked.json" --store "$WORK/store-l" >"$WORK/locked1.log" 2>&1
rc=$?
[ "$rc" = 1 ] || { cat "$WORK/locked1.log"; die "a job whose output another job locks exited $rc, expected 1"; }
grep -q "being published by job other-job of job store file:///elsewhere" "$WORK/locked1.log" ||
    { cat "$WORK/locked1.log"; die "unclear message for an output locked by another job"; }
[ -e "$WORK/out-locked/_SUCCESS" ] && die "a job published beside another job's lock"
ls "$WORK/out-locked" | grep -q '^part-' && die "a job wrote parts beside another job's lock"
# A lock not renewed for 10 minutes is a crashed publisher's: taken over.
printf '{"job":"other-job","job_store":"file:///elsewhere","time_ms":%d}' $((now_ms - 660000)) \
    >"$WORK/out-locked/_PUBLISHING"
"$BIN" run "$WORK/locked.json" --store "$WORK/store-l2" >"$WORK/locked2.log" 2>&1 ||
    { cat "$WORK/locked2.log"; die "a stale publishing lock was not taken over"; }
grep -q "level=warn event=output_lock_taken_over .*previous_job=other-job" "$WORK/locked2.log" ||
    { cat "$WORK/locked2.log"; die "taking over a stale lock was not logged"; }
[ -e "$WORK/out-locked/_PUBLISHING" ] && die "the publisher left its lock behind"
"$BIN" report --verify "$WORK/out-locked" >/dev/null || die "the output after a lock takeover does not verify"

# A file named like a part but with another extension is the user's: the
# output is rejected at submit and the file stays.
mkdir -p "$WORK/out-userfile"
echo keep >"$WORK/out-userfile/part-00099.jsonl.zst.bak"
write_spec "$WORK/userfile.json" "$WORK/in/*.jsonl" "$WORK/out-userfile" 4000
"$BIN" run "$WORK/userfile.json" --store "$WORK/store-u" >"$WORK/userfile.log" 2>&1 &&
    die "an output with a user's part-00099.jsonl.zst.bak was accepted"
grep -q "part-00099.jsonl.zst.bak" "$WORK/userfile.log" ||
    { cat "$WORK/userfile.log"; die "the rejection does not name the user's file"; }
[ "$(cat "$WORK/out-userfile/part-00099.jsonl.zst.bak")" = keep ] || die "the user's file changed"

# Two job stores run different jobs to one output at the same time, many
# times. Either both publish one after the other (the later output wins)
# or the later one fails on the lock; the output always verifies.
gen_jsonl "$WORK/in-race.jsonl" 3000 11
for seed in 1 2; do
    write_spec "$WORK/race$seed.json" "$WORK/in-race.jsonl" "$WORK/out-race" 20000 \
        "{\"op\": \"sample\", \"rate\": 0.5, \"seed\": $seed}"
done
locked=0
for round in $(seq 8); do
    rm -rf "$WORK/out-race" "$WORK"/store-r*
    "$BIN" run "$WORK/race1.json" --store "$WORK/store-r1" --workers 2 >"$WORK/race1.log" 2>&1 &
    p1=$!
    "$BIN" run "$WORK/race2.json" --store "$WORK/store-r2" --workers 2 >"$WORK/race2.log" 2>&1 &
    p2=$!
    wait $p1
    r1=$?
    wait $p2
    r2=$?
    for k in 1 2; do
        rc=$r1
        [ $k = 2 ] && rc=$r2
        case $rc in
        0) ;;
        1) grep -q "is being published by job" "$WORK/race$k.log" ||
               { cat "$WORK/race$k.log"; die "round $round: job $k failed for another reason"; }
           locked=$((locked + 1)) ;;
        *) cat "$WORK/race$k.log"; die "round $round: job $k exited $rc" ;;
        esac
    done
    [ "$r1" = 0 ] || [ "$r2" = 0 ] || die "round $round: both jobs failed"
    "$BIN" report --verify "$WORK/out-race" >"$WORK/race-report.txt" 2>&1 ||
        { cat "$WORK/race-report.txt"; die "round $round: the output does not match its manifest"; }
    winner=$(cat "$WORK/out-race/_SUCCESS")
    [ "$(jq -r .job "$WORK/out-race/_MANIFEST.json")" = "$winner" ] ||
        die "round $round: _SUCCESS and _MANIFEST.json name different jobs"
done
echo "publishing lock: 8 rounds verified, $locked publishes stopped by the lock"

# ---- a publisher that stalls past the stale age (S3) ----
# Job A's worker is stopped with SIGSTOP while it publishes thousands of
# parts, its lock is aged past 10 minutes, and job B takes the output over
# and finishes. A then resumes. It must not leave B's _SUCCESS vouching for
# parts that A replaced: in the end the output verifies and _SUCCESS names
# the job of the manifest. On a local store the output directory's flock
# blocks B while A is stopped, so this runs on S3 only.
if use_s3_store stall; then
    base="s3://$DSPARK_TEST_S3_BUCKET/stall-$$-$RANDOM"
    out="$base/out"
    gen_jsonl "$WORK/in-stall.jsonl" 6000 13
    for job in A B; do
        seed=1
        [ $job = B ] && seed=2
        cat >"$WORK/stall$job.json" <<JSON
{"name": "stall-$job", "input": ["$WORK/in-stall.jsonl"],
 "steps": [{"op": "sample", "rate": 0.5, "seed": $seed}],
 "output": {"uri": "$out", "target_shard_bytes": "1"},
 "options": {"target_task_bytes": 100000000}}
JSON
    done
    "$BIN" run "$WORK/stallA.json" --store "$base/store-a" --workers 1 >"$WORK/stallA.log" 2>&1 &
    run_a=$!
    STARTED_PIDS+=("$run_a")
    for _ in $(seq 1200); do
        "$BIN" cat "$out/_PUBLISHING" >"$WORK/lockA.json" 2>/dev/null && break
        sleep 0.05
    done
    [ -s "$WORK/lockA.json" ] || { cat "$WORK/stallA.log"; die "job A never took the publishing lock"; }
    worker_a=$(pgrep -P "$run_a" | head -1)
    [ -n "$worker_a" ] || die "no worker process of job A"
    STARTED_PIDS+=("$worker_a")
    kill -STOP "$worker_a"
    "$BIN" cat "$out/_SUCCESS" >/dev/null 2>&1 &&
        { kill -CONT "$worker_a"; die "job A published everything before it could be stopped"; }
    python3 - "$WORK/lockA.json" >"$WORK/lockA-old.json" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
lock["time_ms"] -= 11 * 60 * 1000
print(json.dumps(lock))
PY
    "$BIN" cp "$WORK/lockA-old.json" "$out/_PUBLISHING" >/dev/null || die "cannot age job A's lock"
    "$BIN" run "$WORK/stallB.json" --store "$base/store-b" --workers 1 >"$WORK/stallB.log" 2>&1 ||
        { kill -CONT "$worker_a"; cat "$WORK/stallB.log"; die "job B failed beside a stale lock"; }
    grep -q "event=output_lock_taken_over" "$WORK/stallB.log" ||
        { kill -CONT "$worker_a"; die "job B did not take the stale lock over"; }
    kill -CONT "$worker_a"
    wait "$run_a"
    rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || { tail -20 "$WORK/stallA.log"; die "job A exited $rc after it resumed"; }
    "$BIN" report --verify "$out" >"$WORK/stall-report.txt" 2>&1 ||
        { cat "$WORK/stall-report.txt"; tail -20 "$WORK/stallA.log"; die "the output after a stalled publisher does not verify"; }
    winner=$("$BIN" cat "$out/_SUCCESS")
    "$BIN" cat "$out/_MANIFEST.json" >"$WORK/stall-manifest.json"
    [ "$(jq -r .job "$WORK/stall-manifest.json")" = "$winner" ] ||
        die "after a stalled publisher, _SUCCESS and _MANIFEST.json name different jobs"
    echo "stalled publisher: job A exited $rc, the output verifies as job $winner's"
fi
echo "ok"
