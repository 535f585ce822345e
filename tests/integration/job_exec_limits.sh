#!/bin/bash
# Commands of exec steps that write without end: one writes endless short
# lines, one an endless single line. The task fails, and the command is
# stopped, as soon as it has written more lines than it was given
# documents or a line longer than the job's max_record_bytes. So the job
# fails at once and its peak RSS stays small. Without these checks
# the output was buffered until the command exited (600 s by default),
# and `yes` grew a worker to 9 GB in 12 s. The peak is /usr/bin/time's
# maximum RSS of `dspark run --workers 1`, which includes its worker.
. "$(dirname "$0")/job_lib/common.bash"
LIMIT_KIB=$((256 * 1024))

[ -x /usr/bin/time ] || { echo "SKIP: /usr/bin/time (GNU time) is not installed"; exit 77; }

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/part-0.jsonl" 200 0

# run_endless NAME COMMAND_JSON OPTIONS_JSON: run a job whose exec step
# runs COMMAND_JSON, expect it to fail, and check its peak RSS. The
# output of dspark run is left in $WORK/NAME.log.
run_endless() {
    local name=$1 command=$2 options=$3
    cat >"$WORK/$name.json" <<JSON
{
  "name": "$name",
  "input": ["$WORK/in/*.jsonl"],
  "steps": [{"op": "exec", "command": $command}],
  "output": {"uri": "$WORK/out-$name", "format": "jsonl.zst"},
  "options": {"max_attempts": 1, $options}
}
JSON
    /usr/bin/time -f "%M" -o "$WORK/$name.rss" "$BIN" run "$WORK/$name.json" \
        --store "$STORE" --workers 1 --allow-exec >"$WORK/$name.log" 2>&1 &&
        { tail -20 "$WORK/$name.log"; die "$name: the job succeeded"; }
    [ -f "$WORK/out-$name/_SUCCESS" ] && die "$name: the job published its output"
    local rss
    rss=$(tail -1 "$WORK/$name.rss")
    echo "$name: peak RSS $((rss / 1024)) MiB"
    [ "$rss" -le "$LIMIT_KIB" ] ||
        { tail -5 "$WORK/$name.log"; die "$name: peak RSS $rss KiB is above $LIMIT_KIB KiB"; }
}

# expect_error NAME TEXT: the output of dspark run contains TEXT.
expect_error() {
    grep -qF -- "$2" "$WORK/$1.log" || { tail -20 "$WORK/$1.log"; die "$1: no error with: $2"; }
}

run_endless lines '["sh", "-c", "yes {\\\"text\\\":\\\"x\\\"}"]' '"target_task_bytes": 1000000'
expect_error lines "step 0 (exec)"
expect_error lines "exec sh: wrote more lines than the 200 documents it was given"

run_endless long-line '["sh", "-c", "exec tr \\\"\\\\\\\\0\\\" a </dev/zero"]' \
    '"max_record_bytes": "1MiB"'
expect_error long-line "step 0 (exec)"
expect_error long-line "exec sh: output line 1 is longer than 1048576 bytes (options.max_record_bytes"

echo "ok"
