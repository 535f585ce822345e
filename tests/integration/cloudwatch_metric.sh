#!/bin/bash
# Backlog metric: `dspark metrics show` counts the runnable tasks of the
# active jobs, and `dspark metrics publish` sends them with PutMetricData to
# a fake CloudWatch endpoint on 127.0.0.1 that checks the SigV4 signature
# itself and records the metrics. Covers: the count before and after a job
# runs, dimensions and namespace, a session token, a wrong secret key
# (rejected, exit 1), retries after HTTP 503, and --interval with SIGTERM.
. "$(dirname "$0")/job_lib/common.bash"

LIB="$(dirname "$0")/deploy_lib"
RECORD="$WORK/metrics.jsonl"
touch "$RECORD"

# The S3 server's settings, restored for the S3 part at the end.
S3_ENV=$(export -p | grep -E ' (AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_REGION|AWS_DEFAULT_REGION|AWS_SESSION_TOKEN)=')
export AWS_ACCESS_KEY_ID=AKIDFAKECLOUDWATCH AWS_SECRET_ACCESS_KEY=fake-cw-secret-key
export AWS_REGION=eu-west-3 AWS_DEFAULT_REGION=eu-west-3
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL_CLOUDWATCH

# start_fake NAME [ARGS...]: start a fake endpoint; sets FAKE_PID and
# exports AWS_ENDPOINT_URL_CLOUDWATCH.
start_fake() {
    local name=$1
    shift
    FAKE_CW_ACCESS_KEY=$AWS_ACCESS_KEY_ID FAKE_CW_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
        FAKE_CW_REGION=$AWS_REGION python3 "$LIB/fake_cloudwatch.py" \
        --port-file "$WORK/$name.port" --record "$RECORD" "$@" 2>>"$WORK/$name.log" &
    FAKE_PID=$!
    STARTED_PIDS+=("$FAKE_PID")
    for _ in $(seq 50); do
        [ -s "$WORK/$name.port" ] && break
        sleep 0.1
    done
    [ -s "$WORK/$name.port" ] || die "fake CloudWatch $name did not start: $(cat "$WORK/$name.log")"
    AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$(cat "$WORK/$name.port")"
    export AWS_ENDPOINT_URL_CLOUDWATCH
}

stop_fake() {
    kill "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
}

# A job with several map tasks and no worker: every task is runnable.
mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 600 5
write_spec "$WORK/a.json" "$WORK/in/*.jsonl" "$WORK/out-a" 8000
"$BIN" submit "$WORK/a.json" --store "$STORE" --job-id backlog >/dev/null || die "submit failed"
tasks=$("$BIN" status backlog --store "$STORE" --json | jq '.stages[0].tasks')
[ "$tasks" -ge 3 ] || die "expected at least 3 tasks in stage 0, planned $tasks"

"$BIN" metrics show --store "$STORE" --json >"$WORK/show.json" || die "metrics show failed"
jq -e '.schema_version == 1' "$WORK/show.json" >/dev/null || die "metrics show lacks schema_version 1"
[ "$(jq .runnable_tasks "$WORK/show.json")" = "$tasks" ] ||
    die "runnable_tasks $(jq .runnable_tasks "$WORK/show.json"), expected $tasks"
[ "$(jq .active_jobs "$WORK/show.json")" = 1 ] || die "active_jobs is not 1: $(cat "$WORK/show.json")"

# Publish once, with dimensions.
start_fake ok
"$BIN" metrics publish --store "$STORE" --namespace DSparkTest --dimension WorkerPool=pool-a \
    --dimension Env=ci 2>"$WORK/publish.err" || { cat "$WORK/publish.err"; die "publish failed"; }
runnable=$(jq -s '[.[] | select(.name == "RunnableTasks")] | last' "$RECORD")
[ "$(jq -r .namespace <<<"$runnable")" = DSparkTest ] || die "wrong namespace: $runnable"
[ "$(jq .value <<<"$runnable")" = "$tasks" ] || die "published RunnableTasks is not $tasks: $runnable"
[ "$(jq -r .unit <<<"$runnable")" = Count ] || die "unit is not Count: $runnable"
[ "$(jq -c .dimensions <<<"$runnable")" = '{"Env":"ci","WorkerPool":"pool-a"}' ] ||
    die "dimensions not recorded as given: $runnable"
jq -s -e '[.[] | select(.name == "ActiveJobs" and .value == 1)] | length == 1' "$RECORD" >/dev/null ||
    die "ActiveJobs=1 not recorded"
if jq -s -e '[.[] | select(.rejected)] | length > 0' "$RECORD" >/dev/null; then
    die "the fake rejected a request: $(grep rejected "$RECORD")"
fi

# A session token is sent and signed.
AWS_SESSION_TOKEN=fake-session-token "$BIN" metrics publish --store "$STORE" 2>"$WORK/token.err" ||
    { cat "$WORK/token.err"; die "publish with a session token failed"; }
[ "$(tail -n 1 "$RECORD" | jq -r .session_token)" = fake-session-token ] ||
    die "session token not received: $(tail -n 1 "$RECORD")"
[ "$(tail -n 1 "$RECORD" | jq -r .namespace)" = DSpark ] || die "default namespace is not DSpark"

# An endpoint with a trailing slash names the same root path.
AWS_ENDPOINT_URL_CLOUDWATCH="$AWS_ENDPOINT_URL_CLOUDWATCH/" "$BIN" metrics publish --store "$STORE" \
    2>"$WORK/slash.err" || { cat "$WORK/slash.err"; die "publish to an endpoint with a trailing slash failed"; }

# An endpoint that is not http or https is rejected before any request.
AWS_ENDPOINT_URL_CLOUDWATCH=ftp://127.0.0.1:1 "$BIN" metrics publish --store "$STORE" 2>"$WORK/ftp.err"
rc=$?
[ "$rc" = 1 ] || die "publish to an ftp:// endpoint exited $rc, expected 1"
grep -q "invalid CloudWatch endpoint 'ftp://127.0.0.1:1'" "$WORK/ftp.err" ||
    die "unclear message for an invalid endpoint: $(cat "$WORK/ftp.err")"

# A wrong secret key: the fake rejects the signature and publish exits 1.
lines=$(wc -l <"$RECORD")
AWS_SECRET_ACCESS_KEY=wrong-secret "$BIN" metrics publish --store "$STORE" 2>"$WORK/bad.err"
rc=$?
[ "$rc" = 1 ] || die "publish with a wrong key exited $rc, expected 1"
grep -q "SignatureDoesNotMatch" "$WORK/bad.err" || { cat "$WORK/bad.err"; die "error lacks the code"; }
[ "$(tail -n +"$((lines + 1))" "$RECORD" | jq -r .rejected)" = SignatureDoesNotMatch ] ||
    die "the fake did not record exactly one rejected signature"
stop_fake

# HTTP 503 twice, then success: the client retries.
start_fake retry --fail-first 2
lines=$(wc -l <"$RECORD")
"$BIN" metrics publish --store "$STORE" 2>"$WORK/retry.err" || { cat "$WORK/retry.err"; die "publish did not retry"; }
new=$(tail -n +"$((lines + 1))" "$RECORD")
[ "$(jq -s '[.[] | select(.rejected == "ServiceUnavailable")] | length' <<<"$new")" = 2 ] ||
    die "expected 2 injected 503s: $new"
[ "$(jq -s '[.[] | select(.name == "RunnableTasks")] | length' <<<"$new")" = 1 ] ||
    die "expected one metric after the retries: $new"
stop_fake

# Run the job; the backlog drops to zero and the job leaves the count.
start_worker "$WORK/worker.log" --idle-exit 2
"$BIN" wait backlog --store "$STORE" --timeout 60 || die "job did not finish"
"$BIN" metrics show --store "$STORE" --json >"$WORK/after.json" || die "metrics show failed"
jq -e '.runnable_tasks == 0 and .active_jobs == 0' "$WORK/after.json" >/dev/null ||
    die "backlog after the job: $(cat "$WORK/after.json")"

# --interval publishes repeatedly until SIGTERM, then exits 0.
start_fake loop
lines=$(wc -l <"$RECORD")
"$BIN" metrics publish --store "$STORE" --interval 1 2>"$WORK/loop.err" &
loop=$!
STARTED_PIDS+=("$loop")
for _ in $(seq 60); do
    [ "$(tail -n +"$((lines + 1))" "$RECORD" | grep -c RunnableTasks)" -ge 2 ] && break
    sleep 0.1
done
kill -TERM "$loop"
wait "$loop"
rc=$?
[ "$rc" = 0 ] || { cat "$WORK/loop.err"; die "publish --interval exited $rc after SIGTERM"; }
count=$(tail -n +"$((lines + 1))" "$RECORD" | grep -c RunnableTasks)
[ "$count" -ge 2 ] || die "publish --interval 1 sent $count data points in 6 s"
tail -n +"$((lines + 1))" "$RECORD" | jq -s -e 'map(select(.name == "RunnableTasks") | .value) | all(. == 0)' >/dev/null ||
    die "an idle store published a non-zero backlog"
grep -q "metrics_stop" "$WORK/loop.err" || die "publish --interval did not log its stop"
stop_fake

# Invalid command lines.
"$BIN" metrics publish --store "$STORE" --dimension novalue 2>/dev/null
[ $? = 2 ] || die "--dimension without '=' was accepted"
"$BIN" metrics publish --store "$STORE" --namespace AWS/EC2 2>"$WORK/ns.err"
[ $? = 1 ] || die "a reserved namespace was accepted"
grep -q "reserved" "$WORK/ns.err" || die "unclear message for a reserved namespace: $(cat "$WORK/ns.err")"
"$BIN" metrics show 2>/dev/null
[ $? = 2 ] || die "metrics show without a store was accepted"
# The same count on an S3 store, when a server is configured.
if use_s3_store metrics; then
    (
        . /dev/stdin <<<"$S3_ENV"
        "$BIN" submit "$WORK/a.json" --store "$STORE" --job-id backlog-s3 >/dev/null 2>&1 ||
            die "submit to $STORE failed"
        s3_count=$("$BIN" metrics show --store "$STORE" --json | jq .runnable_tasks)
        [ "$s3_count" = "$tasks" ] || die "runnable_tasks on S3 is $s3_count, expected $tasks"
        "$BIN" cancel backlog-s3 --store "$STORE" >/dev/null 2>&1
        after=$("$BIN" metrics show --store "$STORE" --json | jq -c '[.active_jobs, .runnable_tasks]')
        [ "$after" = "[0,0]" ] || die "a cancelled job still counts on S3: $after"
        "$BIN" rm --recursive "$STORE/" >/dev/null 2>&1
    ) || exit 1
fi
echo "cloudwatch_metric: ok ($tasks runnable tasks published and verified)"
