#!/bin/bash
# A local output that the submitting user cannot write is rejected at
# submit, before any task runs, and the error names the directory: the
# output directory itself, or its nearest existing parent when it does not
# exist yet. Root ignores permission bits, so as root the dspark commands
# run as the user nobody, uid 65534 (setpriv).
. "$(dirname "$0")/job_lib/common.bash"

as_user=()
if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || { echo "SKIP: running as root without setpriv"; exit 77; }
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chmod 755 "$WORK"
fi
# dspark_user ARGS...: run dspark as the test user.
dspark_user() {
    "${as_user[@]}" "$BIN" "$@"
}

mkdir -p "$WORK/in" "$WORK/ro/existing" "$WORK/rw"
gen_jsonl "$WORK/in/a.jsonl" 50 3
echo "not a directory" >"$WORK/file"
if [ "${#as_user[@]}" -gt 0 ]; then
    chown -R 65534:65534 "$STORE" "$WORK/rw"
    chmod -R a+rX "$WORK/in"
fi
chmod 555 "$WORK/ro" "$WORK/ro/existing"
# A user other than root can remove $WORK only once it is writable again.
trap 'chmod -R u+w "$WORK/ro"; cleanup_job_test' EXIT

# check_rejected NAME OUTPUT DIRECTORY MESSAGE EXIT: a submit to OUTPUT
# exits EXIT with an error that names OUTPUT, DIRECTORY and MESSAGE.
check_rejected() {
    local name=$1 output=$2 dir=$3 message=$4 expected=$5
    write_spec "$WORK/$name.json" "$WORK/in/*.jsonl" "$output" 4000
    chmod 644 "$WORK/$name.json"
    dspark_user submit "$WORK/$name.json" --store "$STORE" >"$WORK/$name.out" 2>"$WORK/$name.err"
    local rc=$?
    [ "$rc" = "$expected" ] ||
        { cat "$WORK/$name.err"; die "$name: submit exited $rc, expected $expected"; }
    grep -qF "output $output" "$WORK/$name.err" ||
        { cat "$WORK/$name.err"; die "$name: the error does not name the output $output"; }
    grep -qF "$dir" "$WORK/$name.err" ||
        { cat "$WORK/$name.err"; die "$name: the error does not name the directory $dir"; }
    grep -qF "$message" "$WORK/$name.err" ||
        { cat "$WORK/$name.err"; die "$name: the error does not say \"$message\""; }
    [ -z "$(ls "$STORE/jobs" 2>/dev/null)" ] || die "$name: a job was created: $(ls "$STORE/jobs")"
}

check_rejected missing "$WORK/ro/out" "cannot create a file in $WORK/ro:" "is not writable" 1
check_rejected nested "$WORK/ro/a/b/out" "cannot create a file in $WORK/ro:" "is not writable" 1
check_rejected existing "$WORK/ro/existing" "cannot create a file in $WORK/ro/existing:" \
    "is not writable" 1
# A file two levels up: opening the output's store (its parent directory)
# succeeds because that directory does not exist yet.
check_rejected under_file "$WORK/file/sub/out" "$WORK/file is not a directory" \
    "cannot be created" 2

# A writable output is accepted, runs, and the check leaves no file behind.
write_spec "$WORK/ok.json" "$WORK/in/*.jsonl" "$WORK/rw/out" 4000
chmod 644 "$WORK/ok.json"
dspark_user run "$WORK/ok.json" --store "$STORE" --workers 1 >"$WORK/ok.log" 2>&1 ||
    { tail -5 "$WORK/ok.log"; die "a job into a writable output failed"; }
[ -f "$WORK/rw/out/_SUCCESS" ] || die "the job into a writable output has no _SUCCESS"
leftover=$(find "$WORK/rw" -name '.dsp-*')
[ -z "$leftover" ] || die "the writability check left files behind: $leftover"
echo "ok"
