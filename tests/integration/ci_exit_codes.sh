#!/bin/bash
# The CI steps of examples/ci/dspark-ci.sh, which the GitHub Actions,
# Airflow and Argo examples call. A retried submit names the same job. wait
# exits 0 for a finished job, 1 for a failed one (listing its errors), 3 for
# a cancelled one, 4 on timeout and 5 for an unknown job. The final
# `status --json` document goes to DSPARK_STATUS_FILE. Also checks the
# global --log-format json option and the DSPARK_LOG_FORMAT variable.
. "$(dirname "$0")/job_lib/common.bash"

CI="$(dirname "$0")/../../examples/ci/dspark-ci.sh"
export DSPARK_BIN="$BIN" DSPARK_STORE="$STORE"

# expect_exit CODE NAME COMMAND...: run COMMAND, check its exit code.
expect_exit() {
    local want=$1 name=$2 rc
    shift 2
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    [ "$rc" = "$want" ] || { cat "$WORK/$name.err"; die "$name: exit code $rc, expected $want"; }
}

mkdir -p "$WORK/in" "$WORK/bad"
gen_jsonl "$WORK/in/a.jsonl" 300 21

# Success, with a retried submit.
write_spec "$WORK/ok.json" "$WORK/in/*.jsonl" "$WORK/out-ok" 20000
expect_exit 0 submit1 "$CI" submit "$WORK/ok.json"
expect_exit 0 submit2 "$CI" submit "$WORK/ok.json"
job=$(cat "$WORK/submit1.out")
[ -n "$job" ] || die "submit printed no job id"
[ "$(cat "$WORK/submit2.out")" = "$job" ] || die "a retried submit named another job: $(cat "$WORK/submit2.out")"
[ "$(ls "$STORE/jobs")" = "$job" ] || die "a retried submit created a second job: $(ls "$STORE/jobs")"
start_worker "$WORK/worker.log"
DSPARK_STATUS_FILE="$WORK/ok-status.json" expect_exit 0 wait-ok "$CI" wait "$job" 60
grep -q "job $job done" "$WORK/wait-ok.err" || die "no success message: $(cat "$WORK/wait-ok.err")"
jq -e '.schema_version == 1 and .state == "done"' "$WORK/ok-status.json" >/dev/null ||
    die "status file is not schema 1 / done: $(head -c 300 "$WORK/ok-status.json")"

# Failure: a truncated .gz input fails its only attempt.
gzip -c "$WORK/in/a.jsonl" | head -c 2000 >"$WORK/bad/broken.jsonl.gz"
write_spec "$WORK/bad.json" "$WORK/bad/*.gz" "$WORK/out-bad" 1000000 "" '"max_attempts": 1'
DSPARK_STATUS_FILE="$WORK/bad-status.json" expect_exit 1 run-bad "$CI" run "$WORK/bad.json" 60
grep -q "failed; errors:" "$WORK/run-bad.err" || die "no failure message: $(cat "$WORK/run-bad.err")"
grep -q "broken.jsonl.gz" "$WORK/run-bad.err" || die "failure message does not name the input: $(cat "$WORK/run-bad.err")"
jq -e '.state == "failed" and (.errors | length >= 1)' "$WORK/bad-status.json" >/dev/null ||
    die "status file of the failed job: $(head -c 300 "$WORK/bad-status.json")"

# Timeout: no worker runs the job, because the worker is stopped first.
kill "$LAST_PID" 2>/dev/null
wait "$LAST_PID" 2>/dev/null
write_spec "$WORK/slow.json" "$WORK/in/*.jsonl" "$WORK/out-slow" 20000
expect_exit 0 submit-slow "$CI" submit "$WORK/slow.json"
slow=$(cat "$WORK/submit-slow.out")
start=$(date +%s)
expect_exit 4 wait-timeout "$CI" wait "$slow" 2
elapsed=$(($(date +%s) - start))
[ "$elapsed" -le 10 ] || die "wait --timeout 2 took ${elapsed}s"
grep -q "timed out after 2s" "$WORK/wait-timeout.err" || die "no timeout message: $(cat "$WORK/wait-timeout.err")"

# Cancelled.
"$BIN" cancel "$slow" --store "$STORE" >/dev/null 2>&1 || die "cancel failed"
expect_exit 3 wait-cancelled "$CI" wait "$slow" 10
grep -q "was cancelled" "$WORK/wait-cancelled.err" || die "no cancel message"

# status exits 0 whenever it prints the status, for a failed or cancelled
# job too, and its help states this instead of listing wait's exit codes.
expect_exit 0 status-cancelled "$BIN" status "$slow" --json
jq -e '.state == "cancelled"' "$WORK/status-cancelled.out" >/dev/null ||
    die "status of the cancelled job: $(head -c 300 "$WORK/status-cancelled.out")"
expect_exit 5 status-unknown "$BIN" status no-such-job
expect_exit 0 status-help "$BIN" status --help
grep -q "exit codes: 0 the status was printed, whatever the job's state" "$WORK/status-help.out" ||
    die "status --help does not say that it exits 0 for every state: $(cat "$WORK/status-help.out")"
grep -q "3 job cancelled" "$WORK/status-help.out" &&
    die "status --help lists exit code 3, which status never uses"

# Unknown job, and invalid use.
expect_exit 5 wait-unknown "$CI" wait no-such-job 5
expect_exit 2 bad-usage "$CI" frobnicate x
DSPARK_STORE="" expect_exit 2 no-store "$CI" wait "$job"
grep -q "DSPARK_STORE is not set" "$WORK/no-store.err" || die "unclear message without a store"

# --log-format json before the command: every log line is a JSON object
# with the job id.
write_spec "$WORK/log.json" "$WORK/in/*.jsonl" "$WORK/out-log" 20000
"$BIN" --log-format json submit "$WORK/log.json" --store "$STORE" --job-id logjob >/dev/null 2>"$WORK/log.err" ||
    die "submit with --log-format json failed"
[ -s "$WORK/log.err" ] || die "submit logged nothing"
jq -e -s 'length >= 1 and all(.event != null)' "$WORK/log.err" >/dev/null ||
    die "log lines are not JSON objects with an event: $(head -n 3 "$WORK/log.err")"
jq -e -s 'any(.event == "job_submitted" and .job == "logjob")' "$WORK/log.err" >/dev/null ||
    die "no job_submitted line with the job id: $(cat "$WORK/log.err")"
# Integers are JSON numbers, and ids stay strings even when they are digits.
write_spec "$WORK/log-num.json" "$WORK/in/*.jsonl" "$WORK/out-log-num" 20000
"$BIN" --log-format json submit "$WORK/log-num.json" --store "$STORE" --job-id 2024 >/dev/null 2>"$WORK/log-num.err" ||
    die "submit with a numeric job id failed"
jq -e -s 'any(.event == "job_submitted" and .job == "2024" and (.tasks | type) == "number"
              and (.bytes | type) == "number" and (.pid | type) == "number")' \
    "$WORK/log-num.err" >/dev/null ||
    die "job_submitted does not write integers as numbers and the id as a string: $(cat "$WORK/log-num.err")"
expect_exit 2 bad-format "$BIN" --log-format xml version
# An unknown DSPARK_LOG_FORMAT is rejected like an unknown --log-format,
# and the option overrides the variable.
DSPARK_LOG_FORMAT=yaml expect_exit 2 bad-format-variable "$BIN" version
grep -q "invalid DSPARK_LOG_FORMAT 'yaml': expected text or json" "$WORK/bad-format-variable.err" ||
    die "unclear message for DSPARK_LOG_FORMAT=yaml: $(cat "$WORK/bad-format-variable.err")"
DSPARK_LOG_FORMAT=yaml expect_exit 0 format-option-wins "$BIN" --log-format json version
echo "ci_exit_codes: ok"
