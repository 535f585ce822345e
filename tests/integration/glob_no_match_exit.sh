#!/bin/bash
# An input glob that matches no object makes the spec invalid: run, submit
# and explain all exit 2 and name the input, and no job is left behind.
. "$(dirname "$0")/job_lib/common.bash"

write_spec "$WORK/job.json" "$WORK/none/*.jsonl" "$WORK/out" 30000
for cmd in run submit explain; do
    args=("$WORK/job.json")
    [ "$cmd" = explain ] || args+=(--store "$STORE")
    "$BIN" "$cmd" "${args[@]}" >"$WORK/$cmd.log" 2>&1
    rc=$?
    [ "$rc" = 2 ] || { cat "$WORK/$cmd.log"; die "$cmd exited $rc for an input that matches nothing, expected 2"; }
    grep -q 'input\[0\]: ".*/none/\*.jsonl" matches no object' "$WORK/$cmd.log" ||
        { cat "$WORK/$cmd.log"; die "$cmd does not name the input"; }
done
[ -z "$(ls -A "$STORE/jobs" 2>/dev/null)" ] || die "a job was left in the store: $(ls "$STORE/jobs")"
echo "ok"
