#!/bin/bash
# `dspark jobs` lists the jobs of a store: a done, a failed, a cancelled and
# a running job (submitted with no worker), newest submission first, as text
# and as JSON, with --state filtering them. An empty store lists nothing and
# exits 0, and a store that does not exist exits 5. The same runs on S3 when
# a server is configured.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in" "$WORK/bad"
gen_jsonl "$WORK/in/a.jsonl" 60 5
gen_jsonl "$WORK/full.jsonl" 2000 3
gzip -c "$WORK/full.jsonl" >"$WORK/full.gz"
head -c $(($(stat -c %s "$WORK/full.gz") / 2)) "$WORK/full.gz" >"$WORK/bad/broken.jsonl.gz"

# make_jobs OUTPUT_BASE: create the jobs done-job, failed-job, cancelled-job
# and running-job in $STORE, in this order, with outputs under OUTPUT_BASE.
make_jobs() {
    local base=$1
    write_spec "$WORK/done.json" "$WORK/in/*.jsonl" "$base/done" 1000000
    "$BIN" run "$WORK/done.json" --store "$STORE" --workers 1 --job-id done-job \
        >"$WORK/run-done.log" 2>&1 || { tail -20 "$WORK/run-done.log"; die "the done job failed"; }

    write_spec "$WORK/failed.json" "$WORK/bad/*.gz" "$base/failed" 1000000 "" '"max_attempts": 1'
    "$BIN" run "$WORK/failed.json" --store "$STORE" --workers 1 --job-id failed-job \
        >"$WORK/run-failed.log" 2>&1
    [ "$(job_state failed-job)" = failed ] || { tail -20 "$WORK/run-failed.log"; die "failed-job did not fail"; }

    write_spec "$WORK/cancelled.json" "$WORK/in/*.jsonl" "$base/cancelled" 1000000
    "$BIN" submit "$WORK/cancelled.json" --store "$STORE" --job-id cancelled-job >/dev/null ||
        die "submit of cancelled-job failed"
    "$BIN" cancel cancelled-job --store "$STORE" 2>/dev/null || die "cancel failed"

    write_spec "$WORK/running.json" "$WORK/in/*.jsonl" "$base/running" 1000000
    "$BIN" submit "$WORK/running.json" --store "$STORE" --job-id running-job >/dev/null ||
        die "submit of running-job failed"
}

# check_jobs_json FILE OUTPUT_BASE: FILE is `jobs --json` of the four jobs.
check_jobs_json() {
    local file=$1 base=$2 records
    jq -e '.schema_version == 1 and .state_filter == null' "$file" >/dev/null ||
        { cat "$file"; die "jobs --json is not schema_version 1 without a filter"; }
    [ "$(jq -r '.store' "$file")" != null ] || die "jobs --json lacks the store"
    [ "$(jq -r '[.jobs[].job] | sort | join(" ")' "$file")" = \
      "cancelled-job done-job failed-job running-job" ] || { cat "$file"; die "jobs are missing"; }
    jq -e '[.jobs[].submitted_ms] as $t | $t == ($t | sort | reverse)' "$file" >/dev/null ||
        { jq '[.jobs[] | {job, submitted}]' "$file"; die "jobs are not listed newest first"; }
    for state in done failed cancelled running; do
        jq -e --arg s "$state" --arg out "$base/$state" \
            '.jobs[] | select(.job == $s + "-job") | .state == $s and .output == $out' \
            "$file" >/dev/null || { cat "$file"; die "$state-job has the wrong state or output"; }
    done
    jq -e '[.jobs[] | .submitted | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")] | all' \
        "$file" >/dev/null || { cat "$file"; die "a submit time is not ISO-8601 UTC"; }
    jq -e '[.jobs[] | .submitted_ms | type == "number"] | all' "$file" >/dev/null ||
        die "a submitted_ms is not a number"
    jq -e '.jobs[] | select(.job == "running-job") | .finished == null and .finished_ms == null and .records_out == null' \
        "$file" >/dev/null || { cat "$file"; die "the running job has a finish time or records out"; }
    jq -e '[.jobs[] | select(.state != "running") | .finished_ms >= .submitted_ms and (.finished | endswith("Z"))] | all' \
        "$file" >/dev/null || { cat "$file"; die "a finished job lacks its finish time"; }
    records=$("$BIN" status done-job --store "$STORE" --json | jq '.final.records_out')
    [ "$records" -gt 0 ] || die "status reports no records out for done-job"
    jq -e --argjson n "$records" '.jobs[] | select(.job == "done-job") | .records_out == $n' \
        "$file" >/dev/null || { cat "$file"; die "records_out of done-job is not $records"; }
    jq -e '[.jobs[] | select(.job == "failed-job" or .job == "cancelled-job") | .records_out == null] | all' \
        "$file" >/dev/null || { cat "$file"; die "a failed or cancelled job has records_out"; }
    jq -e '.jobs[] | select(.job == "failed-job") | .message | length > 0' "$file" >/dev/null ||
        { cat "$file"; die "failed-job lacks its error message"; }
}

# check_state_filter: --state keeps exactly the job in that state.
check_state_filter() {
    local state
    for state in done failed cancelled running; do
        "$BIN" jobs --store "$STORE" --json --state "$state" >"$WORK/filter.json" ||
            die "jobs --state $state --json failed"
        jq -e --arg s "$state" '.state_filter == $s and ([.jobs[].job] == [$s + "-job"])' \
            "$WORK/filter.json" >/dev/null || { cat "$WORK/filter.json"; die "--state $state --json listed other jobs"; }
        "$BIN" jobs --store "$STORE" --state "$state" >"$WORK/filter.txt" ||
            die "jobs --state $state failed"
        [ "$(tail -n +2 "$WORK/filter.txt" | awk '{print $1 "/" $2}')" = "$state-job/$state" ] ||
            { cat "$WORK/filter.txt"; die "--state $state listed other jobs"; }
    done
}

# A store directory without jobs.
"$BIN" jobs --store "$STORE" >"$WORK/empty.txt" 2>"$WORK/empty.err" ||
    { cat "$WORK/empty.err"; die "jobs on an empty store failed"; }
[ ! -s "$WORK/empty.txt" ] || { cat "$WORK/empty.txt"; die "jobs printed lines for an empty store"; }
grep -q "no jobs in file://$STORE" "$WORK/empty.err" || { cat "$WORK/empty.err"; die "no message for an empty store"; }
"$BIN" jobs --store "$STORE" --json >"$WORK/empty.json" || die "jobs --json on an empty store failed"
jq -e '.schema_version == 1 and .jobs == []' "$WORK/empty.json" >/dev/null ||
    { cat "$WORK/empty.json"; die "jobs --json of an empty store is not an empty list"; }

# A store that does not exist.
"$BIN" jobs --store "$WORK/no-such-store" >/dev/null 2>"$WORK/missing.err"
rc=$?
[ "$rc" = 5 ] || { cat "$WORK/missing.err"; die "jobs on a missing store exited $rc, expected 5"; }
grep -q "$WORK/no-such-store does not exist" "$WORK/missing.err" ||
    { cat "$WORK/missing.err"; die "the error does not name the missing store"; }
[ ! -e "$WORK/no-such-store" ] || die "jobs created the missing store"

# Invalid command lines.
"$BIN" jobs --store "$STORE" --state finished 2>"$WORK/usage.err"
rc=$?
[ "$rc" = 2 ] || die "an invalid --state exited $rc, expected 2"
grep -q "invalid --state 'finished'" "$WORK/usage.err" || { cat "$WORK/usage.err"; die "unclear --state error"; }
"$BIN" jobs some-job --store "$STORE" 2>/dev/null
rc=$?
[ "$rc" = 2 ] || die "a job id argument exited $rc, expected 2"

make_jobs "$WORK/out"
# Fixed submit times (the mtime of spec.json), so the order and the text
# do not depend on how fast the jobs above were created.
touch -d '2024-03-01 10:00:01 UTC' "$STORE/jobs/done-job/spec.json"
touch -d '2024-03-01 10:00:02 UTC' "$STORE/jobs/failed-job/spec.json"
touch -d '2024-03-01 10:00:03 UTC' "$STORE/jobs/cancelled-job/spec.json"
touch -d '2024-03-01 10:00:04 UTC' "$STORE/jobs/running-job/spec.json"

"$BIN" jobs --store "$STORE" --json >"$WORK/jobs.json" || die "jobs --json failed"
check_jobs_json "$WORK/jobs.json" "$WORK/out"
[ "$(jq -r '[.jobs[].job] | join(" ")' "$WORK/jobs.json")" = "running-job cancelled-job failed-job done-job" ] ||
    { jq '[.jobs[] | {job, submitted}]' "$WORK/jobs.json"; die "jobs are not listed newest first"; }
jq -e '.jobs[0].submitted == "2024-03-01T10:00:04.000Z" and .jobs[0].submitted_ms == 1709287204000' \
    "$WORK/jobs.json" >/dev/null || { jq '.jobs[0]' "$WORK/jobs.json"; die "wrong submit time of running-job"; }
check_state_filter

# Text: a header, then one line per job with id, state, submit time, finish
# time, records out and output.
"$BIN" jobs --store "$STORE" >"$WORK/jobs.txt" || die "jobs failed"
[ "$(wc -l <"$WORK/jobs.txt")" = 5 ] || { cat "$WORK/jobs.txt"; die "expected a header and 4 lines"; }
head -1 "$WORK/jobs.txt" | grep -qE '^JOB +STATE +SUBMITTED +FINISHED +RECORDS_OUT +OUTPUT$' ||
    { cat "$WORK/jobs.txt"; die "unexpected header"; }
[ "$(tail -n +2 "$WORK/jobs.txt" | awk '{print $1, $2}' | tr '\n' ' ')" = \
  "running-job running cancelled-job cancelled failed-job failed done-job done " ] ||
    { cat "$WORK/jobs.txt"; die "text lines are not newest first with their states"; }
records=$(jq '.jobs[] | select(.job == "done-job") | .records_out' "$WORK/jobs.json")
finished=$(jq -r '.jobs[] | select(.job == "done-job") | .finished' "$WORK/jobs.json")
grep -qE "^done-job +done +2024-03-01T10:00:01.000Z +$finished +$records +$WORK/out/done$" "$WORK/jobs.txt" ||
    { cat "$WORK/jobs.txt"; die "the line of done-job is wrong"; }
grep -qE "^running-job +running +2024-03-01T10:00:04.000Z +- +- +$WORK/out/running$" "$WORK/jobs.txt" ||
    { cat "$WORK/jobs.txt"; die "the line of running-job is wrong"; }
grep -qE "^failed-job +failed +2024-03-01T10:00:02.000Z +[0-9-]+T[0-9:.]+Z +- +$WORK/out/failed$" "$WORK/jobs.txt" ||
    { cat "$WORK/jobs.txt"; die "the line of failed-job is wrong"; }

# A prefix under jobs/ that is not a job id is skipped with a warning, and
# a job without spec.json is listed with an unknown submit time and output.
mkdir -p "$STORE/jobs/not a job" "$STORE/jobs/no-spec-job"
echo '{}' >"$STORE/jobs/not a job/x.json"
echo '{}' >"$STORE/jobs/no-spec-job/plan.json"
"$BIN" jobs --store "$STORE" --json >"$WORK/odd.json" 2>"$WORK/odd.err" || die "jobs with odd prefixes failed"
grep -q "job_prefix_skipped.*not a job" "$WORK/odd.err" || { cat "$WORK/odd.err"; die "no warning for an invalid prefix"; }
grep -q "job_spec_missing.*no-spec-job" "$WORK/odd.err" || { cat "$WORK/odd.err"; die "no warning for a missing spec.json"; }
jq -e '.jobs | length == 5 and .[-1].job == "no-spec-job" and .[-1].state == "running" and .[-1].output == null and .[-1].submitted == null' \
    "$WORK/odd.json" >/dev/null || { cat "$WORK/odd.json"; die "wrong listing of a job without spec.json"; }
rm -rf "$STORE/jobs/not a job" "$STORE/jobs/no-spec-job"

if use_s3_store jobs-list; then
    # An S3 prefix without objects is an empty store.
    "$BIN" jobs --store "$STORE" --json >"$WORK/s3-empty.json" || die "jobs on an empty S3 prefix failed"
    jq -e '.jobs == []' "$WORK/s3-empty.json" >/dev/null || die "an empty S3 prefix listed jobs"

    make_jobs "$STORE-out"
    "$BIN" jobs --store "$STORE" --json >"$WORK/s3.json" || die "jobs --json on S3 failed"
    # S3 keeps whole seconds, so jobs created within one second tie and are
    # listed by id. check_jobs_json therefore checks only that times descend.
    check_jobs_json "$WORK/s3.json" "$STORE-out"
    jq -e '[.jobs[] | .submitted | endswith(".000Z")] | all' "$WORK/s3.json" >/dev/null ||
        { cat "$WORK/s3.json"; die "S3 submit times are not whole seconds in UTC"; }
    check_state_filter

    bucket="no-such-bucket-$$-$RANDOM"
    "$BIN" jobs --store "s3://$bucket/x" >/dev/null 2>"$WORK/s3-missing.err"
    rc=$?
    [ "$rc" = 5 ] || { cat "$WORK/s3-missing.err"; die "jobs in a missing bucket exited $rc, expected 5"; }
    grep -q "bucket '$bucket' does not exist" "$WORK/s3-missing.err" ||
        { cat "$WORK/s3-missing.err"; die "the error does not name the missing bucket"; }
    echo "S3 listing ok"
fi
echo "ok"
