#!/bin/bash
# Worker user data, run for real: render terraform/aws/user_data.sh.tftpl
# with test variables (with the small renderer, and compared with Terraform's
# own templatefile() when terraform is installed), run shellcheck on it,
# run it against a temporary directory standing in for the
# instance's root with the freshly built binary, then start the worker from
# the unit's ExecStart and Environment lines, against the S3 server.
# A submitted job must succeed and the worker must exit when idle. The
# metrics unit must publish the backlog to a fake CloudWatch endpoint, and
# the idle hook is run with stub aws and systemctl commands.
. "$(dirname "$0")/job_lib/common.bash"

if ! use_s3_store userdata; then
    echo "SKIP: needs an S3 server (AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET)"
    exit 77
fi
command -v shellcheck >/dev/null || { echo "SKIP: shellcheck is not installed"; exit 77; }

DEPLOY_LIB="$(dirname "$0")/deploy_lib"
TEMPLATE="$(cd "$(dirname "$0")/../../terraform/aws" && pwd)/user_data.sh.tftpl"
ROOT="$WORK/root"
IDLE_EXIT=3

# The variables Terraform passes (compute.tf), with the endpoint of the test
# server given the way worker_environment renders it.
jq -n --arg store "$STORE" --arg endpoint "$AWS_ENDPOINT_URL" --arg region "${AWS_REGION:-us-east-1}" \
    --argjson idle "$IDLE_EXIT" '{
    store_uri: $store, idle_exit_seconds: $idle, worker_slots: 2,
    binary_url: "https://downloads.invalid/dspark", binary_sha256: "",
    pool_name: "test-pool", metrics_namespace: "DSparkTest", metrics_interval_seconds: 10,
    region: $region, log_level: "info",
    environment_lines: ("Environment=AWS_ENDPOINT_URL=" + $endpoint)
}' >"$WORK/vars.json"

python3 "$DEPLOY_LIB/render_template.py" "$TEMPLATE" "$WORK/vars.json" >"$WORK/user-data.sh" ||
    die "rendering the user data failed"

if command -v terraform >/dev/null; then
    # terraform console evaluates templatefile() without providers or state.
    mkdir -p "$WORK/tf"
    (cd "$WORK/tf" && echo "base64encode(templatefile(\"$TEMPLATE\", jsondecode(file(\"$WORK/vars.json\"))))" |
        CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null terraform console -no-color 2>"$WORK/tf.err") |
        tail -n 1 | tr -d '"' | base64 -d >"$WORK/user-data.tf.sh" ||
        { cat "$WORK/tf.err"; die "terraform console failed to render the template"; }
    cmp "$WORK/user-data.sh" "$WORK/user-data.tf.sh" ||
        die "the test renderer and Terraform's templatefile() disagree: diff $WORK/user-data.sh $WORK/user-data.tf.sh"
else
    echo "note: terraform not installed; the renderer is not compared with templatefile()"
fi

shellcheck "$WORK/user-data.sh" || die "shellcheck failed on the rendered user data"

# Run it against the stand-in root.
DSPARK_ROOT_DIR="$ROOT" DSPARK_BINARY_FILE="$BIN" bash "$WORK/user-data.sh" >"$WORK/user-data.log" 2>&1 ||
    { cat "$WORK/user-data.log"; die "user data failed"; }
cmp "$BIN" "$ROOT/usr/local/bin/dspark" || die "installed binary differs from the build"
[ -x "$ROOT/usr/local/bin/dspark" ] || die "installed binary is not executable"
UNIT="$ROOT/etc/systemd/system/dspark-worker.service"
for f in "$UNIT" "$ROOT/etc/systemd/system/dspark-metrics.service" \
    "$ROOT/etc/systemd/system/dspark-idle.service"; do
    [ -f "$f" ] || die "user data did not write $f"
done
[ -x "$ROOT/usr/local/lib/dspark/idle-exit" ] || die "idle hook missing or not executable"
grep -qx "Restart=on-failure" "$UNIT" || die "worker unit does not restart on failure"
grep -qx "StandardError=journal" "$UNIT" || die "worker unit does not log to the journal"
grep -qx "OnSuccess=dspark-idle.service" "$UNIT" || die "worker unit does not start the idle hook"
grep -q "^ExecStart=.* metrics publish .*--dimension WorkerPool=test-pool" \
    "$ROOT/etc/systemd/system/dspark-metrics.service" || die "metrics unit lacks the WorkerPool dimension"

# Start the worker as systemd would: Environment= lines, then ExecStart with
# the binary under the stand-in root. The test's AWS keys stand in for the
# instance role.
mapfile -t unit_env < <(sed -n 's/^Environment=//p' "$UNIT")
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
[ "$(grep -c '^ExecStart=' "$UNIT")" = 1 ] || die "worker unit must have exactly one ExecStart"
read -r -a argv <<<"$exec_start"
[ "${argv[0]}" = /usr/local/bin/dspark ] || die "ExecStart runs ${argv[0]}, expected /usr/local/bin/dspark"
argv[0]="$ROOT/usr/local/bin/dspark"
printf '%s\n' "${unit_env[@]}" | grep -qx "DSPARK_LOG_FORMAT=json" || die "unit does not set DSPARK_LOG_FORMAT=json"
printf '%s\n' "${unit_env[@]}" | grep -qx "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" ||
    die "environment_lines did not reach the unit"

(cd "$ROOT/var/lib/dspark" && exec env "${unit_env[@]}" "${argv[@]}") >"$WORK/worker.log" 2>&1 &
worker=$!
STARTED_PIDS+=("$worker")

# A job whose inputs and outputs live in the bucket, as on an instance.
mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 300 11
"$BIN" cp "$WORK/in/a.jsonl" "$STORE-data/in/a.jsonl" >/dev/null || die "upload of the input failed"
write_spec "$WORK/job.json" "$STORE-data/in/*.jsonl" "$STORE-data/out" 6000
job=$("$BIN" submit "$WORK/job.json" --store "$STORE" --job-id userdata) || die "submit failed"

# The metrics unit, started from its ExecStart and Environment lines, sends
# the backlog to a fake CloudWatch endpoint that checks the signature.
METRICS_UNIT="$ROOT/etc/systemd/system/dspark-metrics.service"
mapfile -t metrics_env < <(sed -n 's/^Environment=//p' "$METRICS_UNIT")
read -r -a metrics_argv <<<"$(sed -n 's/^ExecStart=//p' "$METRICS_UNIT")"
metrics_argv[0]="$ROOT/usr/local/bin/dspark"
FAKE_CW_ACCESS_KEY=$AWS_ACCESS_KEY_ID FAKE_CW_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
    FAKE_CW_REGION=${AWS_REGION:-us-east-1} python3 "$DEPLOY_LIB/fake_cloudwatch.py" \
    --port-file "$WORK/cw.port" --record "$WORK/cw.jsonl" 2>"$WORK/cw.log" &
STARTED_PIDS+=("$!")
for _ in $(seq 50); do
    [ -s "$WORK/cw.port" ] && break
    sleep 0.1
done
[ -s "$WORK/cw.port" ] || die "fake CloudWatch did not start: $(cat "$WORK/cw.log")"
env "${metrics_env[@]}" AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$(cat "$WORK/cw.port")" \
    "${metrics_argv[@]}" >"$WORK/metrics.log" 2>&1 &
publisher=$!
STARTED_PIDS+=("$publisher")
"$BIN" wait "$job" --store "$STORE" --timeout 60
rc=$?
[ "$rc" = 0 ] || { tail -n 20 "$WORK/worker.log"; die "wait exited $rc, expected 0"; }
"$BIN" ls "$STORE-data/out/" | grep -q _SUCCESS || die "the job published no _SUCCESS"
for _ in $(seq 50); do
    grep -q RunnableTasks "$WORK/cw.jsonl" 2>/dev/null && break
    sleep 0.1
done
kill -TERM "$publisher"
wait "$publisher" || { cat "$WORK/metrics.log"; die "metrics publisher did not stop cleanly on SIGTERM"; }
jq -s -e 'map(select(.name == "RunnableTasks")) | length >= 1 and all(.namespace == "DSparkTest" and .dimensions.WorkerPool == "test-pool")' \
    "$WORK/cw.jsonl" >/dev/null || { cat "$WORK/cw.jsonl" "$WORK/metrics.log"; die "metrics unit did not publish RunnableTasks for test-pool"; }
if grep -q rejected "$WORK/cw.jsonl"; then
    die "fake CloudWatch rejected a request of the metrics unit: $(grep rejected "$WORK/cw.jsonl")"
fi

grep -q '"event":"task_committed"' "$WORK/worker.log" || { head "$WORK/worker.log"; die "worker log has no JSON task_committed line"; }
grep '"event":"task_committed"' "$WORK/worker.log" | head -n 1 | jq -e '.job == "userdata" and .stage and .task and .attempt' >/dev/null ||
    die "task_committed lines lack job, stage, task and attempt ids"

# The worker exits 0 once it has been idle for IDLE_EXIT seconds.
for _ in $(seq 150); do
    kill -0 "$worker" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$worker" 2>/dev/null; then
    die "worker still running 30 s after the job finished (--idle-exit $IDLE_EXIT)"
fi
wait "$worker"
rc=$?
[ "$rc" = 0 ] || { tail "$WORK/worker.log"; die "idle worker exited $rc, expected 0"; }

# The idle hook, with stub aws and systemctl commands that record their
# arguments. SYSTEM_STATE and AWS_RC choose what the stubs return.
mkdir -p "$WORK/stubs"
cat >"$WORK/stubs/aws" <<'STUB'
#!/bin/sh
echo "aws $*" >>"$STUB_LOG"
exit "${AWS_RC:-0}"
STUB
cat >"$WORK/stubs/systemctl" <<'STUB'
#!/bin/sh
echo "systemctl $*" >>"$STUB_LOG"
[ "$1" = is-system-running ] && echo "${SYSTEM_STATE:-running}"
exit 0
STUB
chmod +x "$WORK/stubs/aws" "$WORK/stubs/systemctl"
run_hook() {
    : >"$WORK/stub.log"
    PATH="$WORK/stubs:$PATH" STUB_LOG="$WORK/stub.log" DSPARK_INSTANCE_ID=i-0123456789abcdef0 \
        "$@" "$ROOT/usr/local/lib/dspark/idle-exit" >"$WORK/hook.out" 2>&1
}
run_hook env
grep -qx "aws autoscaling terminate-instance-in-auto-scaling-group --instance-id i-0123456789abcdef0 --should-decrement-desired-capacity" \
    "$WORK/stub.log" || { cat "$WORK/stub.log"; die "idle hook did not terminate its instance"; }
run_hook env SYSTEM_STATE=stopping
if grep -q "^aws" "$WORK/stub.log"; then
    die "idle hook terminated the instance while the system was stopping"
fi
run_hook env AWS_RC=1
grep -qx "systemctl --no-block restart dspark-worker.service" "$WORK/stub.log" ||
    { cat "$WORK/stub.log"; die "idle hook did not restart the worker after a failed termination"; }

"$BIN" rm --recursive "$STORE/" >/dev/null 2>&1
"$BIN" rm --recursive "$STORE-data/" >/dev/null 2>&1
echo "deploy_userdata: ok"
