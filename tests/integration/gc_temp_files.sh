#!/bin/bash
# `dspark gc --temp-older-than SECONDS` on a local store removes the hidden
# temporary file of a put whose writer was killed with SIGKILL, keeps the
# temporary file of a writer that still runs (which then completes its put)
# and keeps files younger than SECONDS.
. "$(dirname "$0")/job_lib/common.bash"

# start_slow_put NAME FD: a `dspark cp` from a FIFO into the store. The
# writer side of the FIFO stays open on FD, so the put waits for more data
# after the first 3 MB. Sets PUT_PID.
start_slow_put() {
    local name=$1 fd=$2
    mkfifo "$WORK/$name.fifo"
    "$BIN" cp - "file://$STORE/data/$name.bin" <"$WORK/$name.fifo" >"$WORK/$name.log" 2>&1 &
    PUT_PID=$!
    STARTED_PIDS+=("$PUT_PID")
    eval "exec $fd>\"$WORK/$name.fifo\""
    head -c 3000000 /dev/urandom >&"$fd"
}

# temp_files: the store's temporary files, one path a line.
temp_files() {
    find "$STORE" -name '.dsp-tmp.*' -type f | sort
}

start_slow_put dead 3
dead_pid=$PUT_PID
start_slow_put live 4
live_pid=$PUT_PID
for _ in $(seq 50); do
    [ "$(temp_files | wc -l)" -ge 2 ] && break
    sleep 0.1
done
[ "$(temp_files | wc -l)" = 2 ] || { temp_files; die "expected 2 temporary files during the puts"; }

kill -KILL "$dead_pid"
wait "$dead_pid" 2>/dev/null
exec 3>&-
dead_temp=$(temp_files | grep "/.dsp-tmp.$dead_pid.") || die "no temporary file of the killed writer"
live_temp=$(temp_files | grep "/.dsp-tmp.$live_pid.") || die "no temporary file of the live writer"
[ -s "$dead_temp" ] || die "the killed writer's temporary file is empty; the kill came too early"

# Too young: nothing is removed.
"$BIN" gc --store "$STORE" --temp-older-than 3600 2>"$WORK/gc-young.err" ||
    { cat "$WORK/gc-young.err"; die "gc --temp-older-than 3600 failed"; }
[ -f "$dead_temp" ] || die "gc removed a temporary file younger than --temp-older-than"
grep -q "removed 0 temporary files" "$WORK/gc-young.err" || die "unexpected gc output: $(cat "$WORK/gc-young.err")"

# Old enough: the dead writer's file goes, the live writer's stays.
"$BIN" gc --store "$STORE" --temp-older-than 0 2>"$WORK/gc.err" ||
    { cat "$WORK/gc.err"; die "gc --temp-older-than 0 failed"; }
[ ! -e "$dead_temp" ] || die "gc kept the temporary file of a killed writer"
[ -f "$live_temp" ] || die "gc removed the temporary file of a running writer"
grep -q "removed 1 temporary files" "$WORK/gc.err" || die "unexpected gc output: $(cat "$WORK/gc.err")"
grep -q "1 whose writer still runs" "$WORK/gc.err" || die "unexpected gc output: $(cat "$WORK/gc.err")"

# The live put still completes with all its bytes.
head -c 1000000 /dev/urandom >&4
exec 4>&-
wait "$live_pid" || { cat "$WORK/live.log"; die "the live put failed after the sweep"; }
[ "$(stat -c %s "$STORE/data/live.bin")" = 4000000 ] || die "the live put stored $(stat -c %s "$STORE/data/live.bin") bytes"
[ -z "$(temp_files)" ] || die "temporary files left after the live put: $(temp_files)"
[ ! -e "$STORE/data/dead.bin" ] || die "the killed put published an object"

# Invalid uses.
"$BIN" gc --store "$STORE" --temp-older-than -5 2>/dev/null && die "gc accepted a negative age"
"$BIN" gc --store "s3://bucket/prefix" --temp-older-than 10 2>"$WORK/gc-s3.err" &&
    die "gc accepted an S3 store for the temporary file sweep"
grep -q "lifecycle" "$WORK/gc-s3.err" || die "unclear message for an S3 store: $(cat "$WORK/gc-s3.err")"
echo "ok"
