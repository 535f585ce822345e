#!/bin/bash
# An input file that the job's user cannot read, a dangling symlink or a
# FIFO that an input glob reaches fails planning with a message that names
# the file and the reason. None is left out of the job silently.
# Root reads mode 000 files, so as root the jobs run as the user nobody.
. "$(dirname "$0")/job_lib/common.bash"

# as_user CMD...: run CMD as the unprivileged user that owns the test files.
as_user() {
    if [ "$(id -u)" != 0 ]; then
        "$@"
    elif command -v runuser >/dev/null; then
        runuser -u nobody -- "$@"
    else
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    fi
}

if [ "$(id -u)" = 0 ]; then
    id nobody >/dev/null 2>&1 || { echo "SKIP: running as root and there is no user nobody"; exit 77; }
    command -v runuser >/dev/null || command -v setpriv >/dev/null ||
        { echo "SKIP: running as root and neither runuser nor setpriv is installed"; exit 77; }
fi

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 20 1
gen_jsonl "$WORK/in/b.jsonl" 20 2
chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown -R nobody "$WORK"
chmod 000 "$WORK/in/b.jsonl"

# expect_failure LABEL RC PATTERN SPEC: run and explain of SPEC both exit
# RC and print PATTERN (a fixed string), and run publishes nothing.
expect_failure() {
    local label=$1 rc=$2 pattern=$3 spec=$4 cmd got
    for cmd in run explain; do
        as_user "$BIN" "$cmd" "$spec" --store "$STORE" >"$WORK/$cmd.out" 2>"$WORK/$cmd.err"
        got=$?
        [ "$got" = "$rc" ] || { cat "$WORK/$cmd.err"; die "$label: $cmd exited $got, expected $rc"; }
        grep -qF "$pattern" "$WORK/$cmd.err" ||
            { cat "$WORK/$cmd.err"; die "$label: $cmd does not print: $pattern"; }
    done
    [ ! -e "$WORK/out" ] || die "$label: the job published an output"
}

write_spec "$WORK/glob.json" "$WORK/in/*.jsonl" "$WORK/out" 30000
expect_failure "unreadable file in a glob" 1 \
    "cannot open $WORK/in/b.jsonl: Permission denied" "$WORK/glob.json"

# Naming the file directly used to report "matches no object".
write_spec "$WORK/direct.json" "$WORK/in/b.jsonl" "$WORK/out" 30000
expect_failure "unreadable file named directly" 1 \
    "cannot open $WORK/in/b.jsonl: Permission denied" "$WORK/direct.json"

chmod 644 "$WORK/in/b.jsonl"
ln -s missing.jsonl "$WORK/in/c.jsonl"
expect_failure "dangling symlink in a glob" 2 \
    "$WORK/in/c.jsonl is a dangling symlink: its target missing.jsonl does not exist" \
    "$WORK/glob.json"

# A FIFO used to be left out of the listing, and so out of the job.
rm "$WORK/in/c.jsonl"
mkfifo "$WORK/in/d.jsonl"
[ "$(id -u)" = 0 ] && chown nobody "$WORK/in/d.jsonl"
expect_failure "FIFO in a glob" 2 \
    "key d.jsonl is a FIFO ($WORK/in/d.jsonl), not a regular file" "$WORK/glob.json"

# With the link and the FIFO gone, the job reads both files.
rm "$WORK/in/d.jsonl"
as_user "$BIN" run "$WORK/glob.json" --store "$STORE" >"$WORK/run.out" 2>"$WORK/run.err" ||
    { cat "$WORK/run.err"; die "the job failed once every input was readable"; }
for name in a.jsonl b.jsonl; do
    grep -qF "$WORK/in/$name" "$WORK/out/_MANIFEST.json" || die "the manifest does not list $name"
done
echo "ok"
