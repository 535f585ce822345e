#!/bin/bash
# The DSpark steps of a CI pipeline or workflow orchestrator: submit a job,
# wait for it with a timeout, and turn the result into an exit code and a
# clear message. The GitHub Actions, Airflow and Argo examples beside this
# file all call it, and tests/integration/ci_exit_codes.sh tests it.
#
# usage: dspark-ci.sh submit SPEC.json        print the job id
#        dspark-ci.sh wait JOB [TIMEOUT_S]    wait; exit code as below
#        dspark-ci.sh run SPEC.json [TIMEOUT_S]  submit, then wait
#
# Environment:
#   DSPARK_STORE          job store URI (required), e.g. s3://bucket/dspark
#   DSPARK_BIN            dspark binary (default: dspark on PATH)
#   DSPARK_STATUS_FILE    where wait writes the final `status --json`
#                         document (default: none)
#   DSPARK_METRIC_POOL    when set, submit also publishes the backlog once
#                         with --dimension WorkerPool=$DSPARK_METRIC_POOL, so
#                         an autoscaling group at zero starts workers
#
# submit is idempotent: the job id is derived from the spec, so a retried
# step finds the job it already submitted and starts nothing new.
#
# Exit codes (those of `dspark wait`):
#   0 job done, 1 job failed (or dspark failed), 2 invalid command line or
#   spec, 3 job cancelled, 4 timed out before the job finished, 5 no such job
set -uo pipefail

BIN=${DSPARK_BIN:-dspark}

usage() {
    cat >&2 <<'USAGE'
usage: dspark-ci.sh submit SPEC.json           print the job id
       dspark-ci.sh wait JOB [TIMEOUT_S]       wait; exit code of dspark wait
       dspark-ci.sh run SPEC.json [TIMEOUT_S]  submit, then wait
USAGE
    exit 2
}

require_store() {
    if [ -z "${DSPARK_STORE:-}" ]; then
        echo "dspark-ci: DSPARK_STORE is not set; set it to the job store URI" >&2
        exit 2
    fi
}

ci_submit() {
    local spec=$1 job rc
    job=$("$BIN" submit "$spec" --store "$DSPARK_STORE")
    rc=$?
    if [ "$rc" != 0 ]; then
        echo "dspark-ci: submit of $spec failed with exit code $rc" >&2
        return "$rc"
    fi
    if [ -n "${DSPARK_METRIC_POOL:-}" ]; then
        # Best effort: a missing data point only delays the scale-out.
        "$BIN" metrics publish --store "$DSPARK_STORE" --dimension "WorkerPool=$DSPARK_METRIC_POOL" ||
            echo "dspark-ci: warning: publishing the backlog metric failed; workers may start late" >&2
    fi
    echo "$job"
}

# Print the recorded errors of a job, one line each, from status --json.
print_errors() {
    local status=$1
    if command -v jq >/dev/null; then
        jq -r '.errors[]? | "  \(.stage)/\(.task) attempt \(.attempt_number // .attempt): \(.message)"' \
            "$status" >&2
    fi
}

ci_wait() {
    local job=$1 timeout=${2:-} rc status
    local args=(wait "$job" --store "$DSPARK_STORE")
    [ -n "$timeout" ] && args+=(--timeout "$timeout")
    "$BIN" "${args[@]}"
    rc=$?

    status=${DSPARK_STATUS_FILE:-$(mktemp)}
    "$BIN" status "$job" --store "$DSPARK_STORE" --json >"$status" 2>/dev/null
    case "$rc" in
        0) echo "dspark-ci: job $job done" >&2 ;;
        1) echo "dspark-ci: job $job failed; errors:" >&2
           print_errors "$status" ;;
        3) echo "dspark-ci: job $job was cancelled" >&2 ;;
        4) echo "dspark-ci: timed out after ${timeout}s waiting for job $job; it keeps running" >&2 ;;
        5) echo "dspark-ci: job $job not found in $DSPARK_STORE" >&2 ;;
        *) echo "dspark-ci: dspark wait exited $rc for job $job" >&2 ;;
    esac
    [ -z "${DSPARK_STATUS_FILE:-}" ] && rm -f "$status"
    return "$rc"
}

[ $# -ge 2 ] || usage
require_store
command=$1
shift
case "$command" in
    submit) [ $# = 1 ] || usage; ci_submit "$1" ;;
    wait) [ $# -le 2 ] || usage; ci_wait "$@" ;;
    run)
        [ $# -le 2 ] || usage
        job=$(ci_submit "$1") || exit $?
        ci_wait "$job" "${2:-}" ;;
    *) usage ;;
esac
