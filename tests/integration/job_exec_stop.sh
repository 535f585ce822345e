#!/bin/bash
# The commands of exec steps end with their worker. A worker killed with
# SIGKILL takes its running command with it, and the processes that the
# command started in its process group. A worker stopped with SIGTERM
# or SIGINT stops its command (SIGTERM, then SIGKILL), releases the task
# and exits. Another worker then runs the task at once, and the job
# finishes with the same output as an undisturbed run. A command that
# exits and leaves a background process that keeps its stdout open ends
# its batch at once, and the background process is stopped.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
for i in 0 1; do gen_jsonl "$WORK/in/part-$i.jsonl" 200 "$i"; done

# While $WORK/hang exists, the command starts a background sleep (its
# own child, which records its pid in $WORK/child.pids), records its pid
# and sleeps for much longer than the test runs. It ignores SIGTERM, so
# only the SIGKILL after the grace period stops it. Otherwise it passes
# the input through.
cat >"$WORK/cmd.sh" <<SH
#!/bin/sh
if [ -e "$WORK/hang" ]; then
    trap '' TERM
    sleep 600 &
    echo \$! >>"$WORK/child.pids"
    echo \$\$ >>"$WORK/cmd.pids"
    exec sleep 600
fi
exec cat
SH
chmod +x "$WORK/cmd.sh"
step="{\"op\": \"exec\", \"command\": [\"$WORK/cmd.sh\"]}"
# Long leases: a task whose lease was not released would wait this long.
options='"lease_seconds": 300'

# alive PID: the process exists and is not a zombie (in a container, PID 1
# may never reap an orphan).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# count_commands: the number of commands started while $WORK/hang existed.
count_commands() {
    if [ -f "$WORK/cmd.pids" ]; then wc -l <"$WORK/cmd.pids"; else echo 0; fi
}

# wait_for_command COUNT: wait until more than COUNT commands have
# started, and print the pid of the last one.
wait_for_command() {
    local before=$1
    for _ in $(seq 300); do
        if [ "$(count_commands)" -gt "$before" ]; then
            tail -1 "$WORK/cmd.pids"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# wait_gone PID SECONDS: wait until the process has ended.
wait_gone() {
    for _ in $(seq $(($2 * 10))); do
        alive "$1" || return 0
        sleep 0.1
    done
    return 1
}

write_spec "$WORK/clean.json" "$WORK/in/*.jsonl" "$WORK/out-clean" 1000000 "$step" "$options"
"$BIN" run "$WORK/clean.json" --store "$STORE" --workers 1 --allow-exec >"$WORK/clean.log" 2>&1 ||
    { tail -20 "$WORK/clean.log"; die "undisturbed run failed"; }
touch "$WORK/hang"

# SIGKILL to the worker: its command gets SIGKILL from the kernel.
write_spec "$WORK/killed.json" "$WORK/in/*.jsonl" "$WORK/out-killed" 1000000 "$step" "$options"
"$BIN" submit "$WORK/killed.json" --store "$STORE" --job-id killed >/dev/null || die "submit failed"
start_worker "$WORK/killed.log" --allow-exec --job killed
worker=$LAST_PID
cmd=$(wait_for_command "$(count_commands)") || { cat "$WORK/killed.log"; die "the exec command did not start"; }
STARTED_PIDS+=("$cmd")
grandchild=$(tail -1 "$WORK/child.pids")
STARTED_PIDS+=("$grandchild")
alive "$grandchild" || die "the command's background process $grandchild did not start"
kill -KILL "$worker"
wait "$worker" 2>/dev/null
wait_gone "$cmd" 20 || die "exec command $cmd still runs 20 s after its worker got SIGKILL"
wait_gone "$grandchild" 20 ||
    die "process $grandchild, started by the exec command, still runs 20 s after the worker got SIGKILL"
echo "SIGKILL: the command and its child ended with their worker"

# SIGTERM and SIGINT: the worker stops its command, releases the task and
# exits 0; a second worker then finishes the job.
for sig in TERM INT; do
    touch "$WORK/hang"
    job="stopped-$sig"
    write_spec "$WORK/$job.json" "$WORK/in/*.jsonl" "$WORK/out-$job" 1000000 "$step" "$options"
    "$BIN" submit "$WORK/$job.json" --store "$STORE" --job-id "$job" >/dev/null || die "submit failed"
    start_worker "$WORK/$job-first.log" --allow-exec --job "$job"
    worker=$LAST_PID
    cmd=$(wait_for_command "$(count_commands)") ||
        { cat "$WORK/$job-first.log"; die "the exec command did not start"; }
    STARTED_PIDS+=("$cmd")
    kill "-$sig" "$worker"
    wait_gone "$worker" 30 ||
        { tail -5 "$WORK/$job-first.log"; die "worker still runs 30 s after SIG$sig"; }
    wait "$worker"
    rc=$?
    [ "$rc" = 0 ] || { tail -20 "$WORK/$job-first.log"; die "worker exited $rc after SIG$sig"; }
    wait_gone "$cmd" 10 || die "exec command $cmd still runs after its worker exited on SIG$sig"
    grep -q "event=task_abandoned.*reason=worker_stopping" "$WORK/$job-first.log" ||
        { cat "$WORK/$job-first.log"; die "the worker did not log the abandoned task"; }
    running=$("$BIN" status "$job" --store "$STORE" --json | jq '.stages[0].running')
    [ "$running" = 0 ] || die "$running tasks still have a lease after the worker stopped"

    rm "$WORK/hang"
    start_worker "$WORK/$job-second.log" --allow-exec --job "$job" --exit-when-finished
    # Far below lease_seconds, so the task must have been released.
    "$BIN" wait "$job" --store "$STORE" --timeout 120 ||
        { tail -20 "$WORK/$job-second.log"; die "job $job did not finish after SIG$sig"; }
    same_output "$WORK/out-clean" "$WORK/out-$job"
    echo "SIG$sig: the command was stopped and the job finished"
done

# The command's exit ends the batch. Each command starts a background
# sleep that keeps its stdout and stderr open, records the sleep's pid in
# $WORK/background.pids, and runs its arguments (cat without any). Each
# job must end far below timeout_seconds, with its background processes
# stopped. `timeout 90` ends `dspark run` (SIGTERM) should a batch wait
# for timeout_seconds.
cat >"$WORK/background.sh" <<SH
#!/bin/sh
sleep 300 &
echo \$! >>"$WORK/background.pids"
[ \$# -gt 0 ] || set -- cat
exec "\$@"
SH
chmod +x "$WORK/background.sh"

# run_background NAME COMMAND_JSON: run a job whose exec step runs
# COMMAND_JSON with a timeout of 120 s, and check that it ends within
# 30 s and leaves no background process running. Sets RUN_RC and
# COMMANDS, the number of commands that started.
run_background() {
    local name=$1 command=$2 start elapsed pid
    rm -f "$WORK/background.pids"
    write_spec "$WORK/$name.json" "$WORK/in/*.jsonl" "$WORK/out-$name" 1000000 \
        "{\"op\": \"exec\", \"command\": $command, \"timeout_seconds\": 120}" \
        '"max_attempts": 1'
    start=$SECONDS
    timeout 90 "$BIN" run "$WORK/$name.json" --store "$STORE" --job-id "$name" --workers 1 \
        --allow-exec >"$WORK/$name.log" 2>&1
    RUN_RC=$?
    elapsed=$((SECONDS - start))
    echo "$name: dspark run exited $RUN_RC after $elapsed s"
    [ "$elapsed" -lt 30 ] ||
        { tail -5 "$WORK/$name.log"; die "$name: the job took $elapsed s (timeout_seconds is 120)"; }
    [ -s "$WORK/background.pids" ] || die "$name: no background process started"
    COMMANDS=$(wc -l <"$WORK/background.pids")
    for pid in $(cat "$WORK/background.pids"); do
        STARTED_PIDS+=("$pid")
        wait_gone "$pid" 10 ||
            die "$name: background process $pid still runs 10 s after the job ended"
    done
}

run_background background "[\"$WORK/background.sh\"]"
[ "$RUN_RC" = 0 ] || { tail -20 "$WORK/background.log"; die "background: the job failed"; }
same_output "$WORK/out-clean" "$WORK/out-background"
# Both input files go to one task, whose two batches each start a
# command, so "once per task" means fewer warnings than commands.
tasks=$("$BIN" status background --store "$STORE" --json | jq '.stages[0].tasks')
[ "$COMMANDS" -gt "$tasks" ] || die "background: $COMMANDS commands for $tasks tasks, expected more"
warnings=$(grep -c "event=exec_processes_stopped" "$WORK/background.log")
[ "$warnings" = "$tasks" ] ||
    { cat "$WORK/background.log"; die "$warnings exec_processes_stopped warnings for $tasks tasks"; }
grep -q "event=exec_processes_stopped.*command=$WORK/background.sh processes=1 pids=[0-9]" \
    "$WORK/background.log" || { cat "$WORK/background.log"; die "the warning lacks the command or pid"; }
echo "background process: the job finished with the same output, and the process was stopped"

# The command writes one line and exits: the job fails at once and names
# the stopped process.
run_background background-head "[\"$WORK/background.sh\", \"head\", \"-n\", \"1\"]"
[ "$RUN_RC" = 1 ] || { tail -20 "$WORK/background-head.log"; die "background-head: exit $RUN_RC, expected 1"; }
grep -qE "exec $WORK/background.sh: wrote 1 lines for [0-9]+ documents \(expected one line per input line\); it exited and left 1 process running \(pid [0-9]+\), which was stopped" \
    "$WORK/background-head.log" ||
    { tail -20 "$WORK/background-head.log"; die "background-head: no error about the missing lines"; }
echo "background process and missing lines: the job failed at once"
echo "ok"
