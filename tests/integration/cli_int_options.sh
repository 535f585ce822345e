#!/bin/bash
# Integer command-line options reject values outside their range, such as
# 1e30, with exit code 2 and an error naming the option, the value and the
# allowed range, before the command does anything. So is an empty
# --store. A worker that accepted an option would run, so --idle-exit 1
# and a timeout keep such a failure short.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 20 3
write_spec "$WORK/job.json" "$WORK/in/*.jsonl" "$WORK/out" 100000

# check_rejected EXPECTED_MESSAGE ARGS...: dspark ARGS exits 2 and prints
# EXPECTED_MESSAGE.
check_rejected() {
    local want=$1 rc
    shift
    timeout 120 "$BIN" "$@" >"$WORK/out.log" 2>"$WORK/err.log"
    rc=$?
    [ "$rc" = 2 ] || { cat "$WORK/err.log"; die "dspark $*: exit code $rc, expected 2"; }
    grep -qF -- "$want" "$WORK/err.log" ||
        die "dspark $*: message '$(cat "$WORK/err.log")' lacks '$want'"
}

check_rejected "invalid --slots '1e30': expected an integer from 1 to 256" \
    worker --store "$STORE" --idle-exit 1 --slots 1e30
check_rejected "invalid --slots '0': expected an integer from 1 to 256" \
    worker --store "$STORE" --idle-exit 1 --slots 0
check_rejected "invalid --idle-exit '99999999999999999999': expected an integer from 0 to 2147483647" \
    worker --store "$STORE" --idle-exit 99999999999999999999
check_rejected "invalid --workers '1e30': expected an integer from 1 to 1024" \
    run "$WORK/job.json" --store "$STORE" --workers 1e30
check_rejected "invalid --workers '2000': expected an integer from 1 to 1024" \
    run "$WORK/job.json" --store "$STORE" --workers 2000
check_rejected "invalid --temp-older-than '1e30': expected an integer from 0 to 2147483647" \
    gc --store "$STORE" --temp-older-than 1e30
check_rejected "invalid --interval '1e30': expected an integer from 1 to 86400" \
    metrics publish --store "$STORE" --interval 1e30
check_rejected "invalid --timeout '1e30': expected seconds from 0 to 1000000000" \
    wait some-job --store "$STORE" --timeout 1e30
# An empty --store is rejected, not replaced by ./.dspark.
(cd "$WORK" && check_rejected "missing store URI" run "$WORK/job.json" --store '') ||
    die "run with an empty --store was not rejected"
[ ! -e "$WORK/.dspark" ] || die "run with an empty --store used ./.dspark"
check_rejected "missing store URI" status some-job --store ''
[ ! -e "$STORE/jobs" ] || die "a rejected command created a job: $(ls "$STORE/jobs")"
[ ! -e "$WORK/out" ] || die "a rejected command wrote the output"
echo "ok"
