#!/bin/bash
# An output path that is an existing file is rejected at submit, before
# any task runs, and the file is left unchanged. A path below a file is
# rejected the same way. A file created there after the submission fails
# the job at publish with the same message.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 20 1
echo "not a directory" >"$WORK/taken"

# expect_rejected LABEL OUTPUT PATTERN: run and submit of a spec writing
# to OUTPUT exit 2, print PATTERN (a fixed string) and create no job.
expect_rejected() {
    local label=$1 output=$2 pattern=$3 cmd rc
    write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$output" 30000
    for cmd in run submit; do
        "$BIN" "$cmd" "$WORK/job.json" --store "$STORE" >"$WORK/$cmd.out" 2>"$WORK/$cmd.err"
        rc=$?
        [ "$rc" = 2 ] || { cat "$WORK/$cmd.err"; die "$label: $cmd exited $rc, expected 2"; }
        grep -qF "$pattern" "$WORK/$cmd.err" ||
            { cat "$WORK/$cmd.err"; die "$label: $cmd does not print: $pattern"; }
        ! grep -q "task_start" "$WORK/$cmd.err" || die "$label: $cmd ran a task"
    done
    [ -z "$(ls -A "$STORE/jobs" 2>/dev/null)" ] || die "$label: a job was left in the store"
    [ "$(cat "$WORK/taken")" = "not a directory" ] || die "$label: the file was changed"
}

expect_rejected "output is a file" "$WORK/taken" \
    "output $WORK/taken exists and is not a directory"
ln -s taken "$WORK/link"
expect_rejected "output is a symlink to a file" "$WORK/link" \
    "output $WORK/link exists and is not a directory"
expect_rejected "output below a file" "$WORK/taken/out" "$WORK/taken is a file, not a directory"

write_spec "$WORK/late.json" "$WORK/in/*.jsonl" "$WORK/late" 30000
"$BIN" submit "$WORK/late.json" --store "$STORE" --job-id late >"$WORK/late.out" 2>&1 ||
    { cat "$WORK/late.out"; die "submit of an output that does not exist yet failed"; }
echo "created after submit" >"$WORK/late"
start_worker "$WORK/late-worker.log" --idle-exit 2
"$BIN" wait late --store "$STORE" --timeout 60 >/dev/null 2>&1
rc=$?
[ "$rc" = 1 ] || { cat "$WORK/late-worker.log"; die "wait exited $rc for a job whose output became a file, expected 1"; }
"$BIN" status late --store "$STORE" --json >"$WORK/late.json.status"
grep -qF "output $WORK/late exists and is not a directory" "$WORK/late.json.status" ||
    { cat "$WORK/late.json.status"; die "the failed job's state does not name the output"; }
[ "$(cat "$WORK/late")" = "created after submit" ] || die "publish changed the file"
echo "ok"
