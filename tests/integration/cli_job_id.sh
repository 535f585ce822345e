#!/bin/bash
# Every command that takes a job id checks it on the command line, before
# it opens the store, and exits 2 with an error that names the option (or
# JOB) and the id. `worker --job --exit-when-finished` used to take the
# flag as the job id and wait for that job forever.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 50 4
write_spec "$WORK/spec.json" "$WORK/in/*.jsonl" "$WORK/out" 100000

# expect_usage_error NAME PATTERN COMMAND...: COMMAND exits 2 and its
# stderr matches PATTERN. timeout only keeps a regression from hanging.
expect_usage_error() {
    local name=$1 pattern=$2 rc
    shift 2
    timeout 60 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    [ "$rc" = 2 ] || { cat "$WORK/$name.err"; die "$name: exit code $rc, expected 2"; }
    grep -qF -- "$pattern" "$WORK/$name.err" ||
        die "$name: unclear message: $(cat "$WORK/$name.err")"
}

expect_usage_error worker-flag \
    "dspark worker: --job: invalid job id '--exit-when-finished': it must not start with '-' (is the job id after --job missing?)" \
    "$BIN" worker --store "$STORE" --job --exit-when-finished
expect_usage_error worker-slash "dspark worker: --job: invalid job id 'a/b': character '/' is not allowed" \
    "$BIN" worker --store "$STORE" --job a/b --exit-when-finished
for cmd in status wait cancel gc; do
    expect_usage_error "$cmd-space" "dspark $cmd: JOB: invalid job id 'bad id': character ' ' is not allowed" \
        "$BIN" "$cmd" "bad id" --store "$STORE"
    expect_usage_error "$cmd-dots" "dspark $cmd: JOB: invalid job id '../x': it must not start with '.'" \
        "$BIN" "$cmd" ../x --store "$STORE"
done
expect_usage_error submit-dash "dspark submit: --job-id: invalid job id '--store': it must not start with '-'" \
    "$BIN" submit "$WORK/spec.json" --job-id --store "$STORE"
expect_usage_error run-empty "dspark run: --job-id: invalid job id '': it must have 1 to 64 characters" \
    "$BIN" run "$WORK/spec.json" --store "$STORE" --job-id ""
[ -z "$(ls "$STORE")" ] || die "a rejected command wrote to the store: $(ls -R "$STORE" | head)"

# A valid id still works: the worker runs the submitted job and exits.
"$BIN" submit "$WORK/spec.json" --store "$STORE" --job-id good.id_1 >/dev/null 2>&1 || die "submit failed"
timeout 120 "$BIN" worker --store "$STORE" --job good.id_1 --exit-when-finished >"$WORK/worker.log" 2>&1 ||
    { tail -5 "$WORK/worker.log"; die "the worker for good.id_1 failed"; }
[ "$(job_state good.id_1)" = done ] || die "good.id_1 is $(job_state good.id_1)"
echo "ok"
