#!/bin/bash
# Local errors that retrying cannot fix fail the job after one attempt,
# with a message that names the object and the cause:
# - a planned input deleted before its task reads it (ENOENT);
# - an output on a read-only file system (EROFS), from a read-only bind
#   mount: rejected at submit, or, when it turns read-only after submit,
#   failed at publish. That case needs root and mount(8), and is skipped
#   without them.
. "$(dirname "$0")/job_lib/common.bash"

RO_MOUNT=""
cleanup_mount() {
    [ -n "$RO_MOUNT" ] && umount "$RO_MOUNT"
    cleanup_job_test
}
trap cleanup_mount EXIT

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 300 1
gen_jsonl "$WORK/in/b.jsonl" 300 2

# ---- a planned input deleted before its task runs ----
write_spec "$WORK/gone.json" "$WORK/in/*.jsonl" "$WORK/out-gone" 1000000 "" '"max_attempts": 3'
job=$("$BIN" submit "$WORK/gone.json" --store "$STORE" --job-id input-deleted 2>"$WORK/gone-submit.err") ||
    { cat "$WORK/gone-submit.err"; die "submit failed"; }
rm "$WORK/in/b.jsonl"
start_worker "$WORK/gone.log" --job "$job" --exit-when-finished
"$BIN" wait "$job" --store "$STORE" --timeout 120 >/dev/null 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/gone.log"; die "a job with a deleted input exited $rc, expected 1"; }
[ "$(grep -c 'event=task_failed' "$WORK/gone.log")" = 1 ] ||
    { grep task_failed "$WORK/gone.log"; die "the deleted input was retried; expected one failed attempt"; }
grep -q 'event=task_failed.*permanent=1' "$WORK/gone.log" ||
    die "the deleted input was not reported as a permanent error"
"$BIN" status "$job" --store "$STORE" --json >"$WORK/gone-status.json" || die "status failed"
jq -e '.errors[0].message | contains("in/b.jsonl was deleted after the job was planned")' \
    "$WORK/gone-status.json" >/dev/null ||
    { jq .errors "$WORK/gone-status.json"; die "the error does not name the deleted input"; }
[ ! -e "$WORK/out-gone/_SUCCESS" ] || die "a job with a deleted input published _SUCCESS"

# ---- an output on a read-only file system ----
mkdir -p "$WORK/ro"
if [ "$(id -u)" != 0 ] || ! mount --bind "$WORK/ro" "$WORK/ro" 2>/dev/null; then
    echo "ok (read-only output skipped: needs root and mount)"
    exit 0
fi
RO_MOUNT="$WORK/ro"
gen_jsonl "$WORK/in/b.jsonl" 300 2

# Submit checks that the output directory is writable, so a job into an
# output that is read-only already is rejected before any task runs.
mount -o remount,ro,bind "$WORK/ro" || die "cannot remount $WORK/ro read-only"
write_spec "$WORK/ro-early.json" "$WORK/in/*.jsonl" "$WORK/ro/early" 1000000
if "$BIN" submit "$WORK/ro-early.json" --store "$STORE" >/dev/null 2>"$WORK/ro-early.err"; then
    die "submit accepted an output on a read-only file system"
fi
grep -q "Read-only file system" "$WORK/ro-early.err" ||
    { cat "$WORK/ro-early.err"; die "the submit error does not name the read-only file system"; }

# An output that becomes read-only after submit fails at publish, once.
mount -o remount,rw,bind "$WORK/ro" || die "cannot remount $WORK/ro read-write"
write_spec "$WORK/ro.json" "$WORK/in/*.jsonl" "$WORK/ro/out" 1000000 "" '"max_attempts": 3'
job=$("$BIN" submit "$WORK/ro.json" --store "$STORE" 2>"$WORK/ro-submit.err") ||
    { cat "$WORK/ro-submit.err"; die "submit into a writable output failed"; }
mount -o remount,ro,bind "$WORK/ro" || die "cannot remount $WORK/ro read-only"
start_worker "$WORK/ro.log" --job "$job" --exit-when-finished
"$BIN" wait "$job" --store "$STORE" --timeout 120 >/dev/null 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/ro.log"; die "a job into a read-only output exited $rc, expected 1"; }
[ "$(grep -c 'event=publish_failed' "$WORK/ro.log")" = 1 ] ||
    { grep publish_failed "$WORK/ro.log"; die "the read-only output was retried; expected one publish attempt"; }
grep -q 'event=publish_failed.*permanent=1.*Read-only file system' "$WORK/ro.log" ||
    { grep publish_failed "$WORK/ro.log"; die "the publish failure is not a permanent error naming the read-only file system"; }
echo "ok"
