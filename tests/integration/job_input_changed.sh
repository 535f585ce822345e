#!/bin/bash
# An input that changes between submit and the task that reads it fails
# the job at once (a permanent error), naming the input, both sizes and
# both ETags, instead of publishing output from other bytes than the plan
# listed. A truncated input and a rewrite that keeps the size are both
# caught, on the local store and, with an S3 server, on S3. An unchanged
# input still runs.
. "$(dirname "$0")/job_lib/common.bash"

# etag_of URI_DIR KEY: the ETag that `dspark ls` lists for KEY.
etag_of() {
    "$BIN" ls "$1/" --json | jq -r --arg key "$2" '.objects[] | select(.key == $key) | .etag'
}

# planned_etag JOB KEY: the ETag the job's plan recorded for input KEY.
planned_etag() {
    "$BIN" cat "jobs/$1/plan.json" --store "$STORE" |
        jq -r --arg key "$2" '[.stages[0].tasks[].inputs[] | select(.[1] == $key) | .[5]][0]'
}

# put_input LOCAL_FILE: copy a local file to $IN/a.jsonl (a no-op for a
# local input directory).
put_input() {
    [ "$IN" = "$WORK/in" ] || "$BIN" cp "$1" "$IN/a.jsonl" >/dev/null || die "cannot upload $1"
}

# expect_changed_failure JOB WHAT: run a worker on JOB and check that the
# job failed after one attempt with an error that names the input and
# both versions. WHAT describes the change for messages.
expect_changed_failure() {
    local job=$1 what=$2 planned_tag now_tag rc
    planned_tag=$(planned_etag "$job" a.jsonl)
    now_tag=$(etag_of "$IN" a.jsonl)
    [ -n "$planned_tag" ] && [ "$planned_tag" != null ] || die "the plan records no ETag for a.jsonl"
    [ "$planned_tag" != "$now_tag" ] || die "$what kept the ETag $now_tag"

    : >"$WORK/worker.log"
    start_worker "$WORK/worker.log" --job "$job" --exit-when-finished
    "$BIN" wait "$job" --store "$STORE" --timeout 60 >/dev/null 2>&1
    rc=$?
    [ $rc = 1 ] || { tail -5 "$WORK/worker.log"; die "a job with $what exited $rc, expected 1"; }
    [ "$(grep -c 'event=task_failed' "$WORK/worker.log")" = 1 ] ||
        die "$what was retried; a permanent error should fail the job at once"
    "$BIN" status "$job" --store "$STORE" --json >"$WORK/status.json" || die "status failed"
    jq -e '.errors[0].message | contains("in/a.jsonl changed after the job was planned")' \
        "$WORK/status.json" >/dev/null ||
        { jq .errors "$WORK/status.json"; die "the error for $what does not name the input"; }
    jq -e --arg want "was $planned_size bytes with ETag $planned_tag when the job was planned" \
        '.errors[0].message | contains($want)' "$WORK/status.json" >/dev/null ||
        { jq .errors "$WORK/status.json"; die "the error for $what does not name the planned version"; }
    jq -e --arg want "it is now $now_size bytes with ETag $now_tag" \
        '.errors[0].message | contains($want)' "$WORK/status.json" >/dev/null ||
        { jq .errors "$WORK/status.json"; die "the error for $what does not name the current version"; }
    ! "$BIN" cat "$OUT/_SUCCESS" >/dev/null 2>&1 || die "output was published from $what"
}

# run_case NAME: submit, change a.jsonl in two ways, then run on unchanged
# inputs. IN and OUT name the input directory and output for this store.
run_case() {
    local name=$1 job
    mkdir -p "$WORK/in"
    gen_jsonl "$WORK/in/a.jsonl" 300 3
    gen_jsonl "$WORK/in/b.jsonl" 300 4
    cp "$WORK/in/a.jsonl" "$WORK/a.orig"
    if [ "$IN" != "$WORK/in" ]; then
        "$BIN" cp "$WORK/in/a.jsonl" "$IN/a.jsonl" >/dev/null || die "cannot upload a.jsonl"
        "$BIN" cp "$WORK/in/b.jsonl" "$IN/b.jsonl" >/dev/null || die "cannot upload b.jsonl"
    fi
    planned_size=$(stat -c %s "$WORK/in/a.jsonl")
    write_spec "$WORK/job.json" "$IN/*.jsonl" "$OUT" 1000000

    # Truncated after submit.
    job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id "$name-truncated") ||
        die "submit failed"
    truncate -s 3000 "$WORK/in/a.jsonl"
    put_input "$WORK/in/a.jsonl"
    now_size=3000
    expect_changed_failure "$job" "a truncated input"

    # Rewritten with the same size after submit: only the ETag differs.
    cp "$WORK/a.orig" "$WORK/in/a.jsonl"
    put_input "$WORK/in/a.jsonl"
    job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id "$name-same-size") ||
        die "submit failed"
    sed -i 's/"text": "data/"text": "DATA/' "$WORK/in/a.jsonl"
    cmp -s "$WORK/a.orig" "$WORK/in/a.jsonl" && die "the rewrite changed nothing"
    [ "$(stat -c %s "$WORK/in/a.jsonl")" = "$planned_size" ] || die "the rewrite changed the size"
    put_input "$WORK/in/a.jsonl"
    now_size=$planned_size
    expect_changed_failure "$job" "an input rewritten with the same size"

    # The same spec on unchanged inputs runs.
    "$BIN" run "$WORK/job.json" --store "$STORE" >"$WORK/run.log" 2>&1 ||
        { tail -5 "$WORK/run.log"; die "the job on unchanged inputs failed"; }
}

IN="$WORK/in"
OUT="$WORK/out"
run_case local
echo "ok local"

if use_s3_store input-changed; then
    rm -rf "$WORK/in"
    IN="$STORE-inputs/in"
    OUT="$STORE-out"
    run_case s3
    echo "ok s3"
else
    echo "skipped s3: no S3 server configured"
fi
echo "ok"
