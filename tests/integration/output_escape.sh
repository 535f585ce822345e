#!/bin/bash
# Human-readable output escapes control characters in names that come from
# input files and specs. An input file whose name contains a newline and a
# terminal escape code fails its job as corrupt input. run's "failed:"
# message and the `status` text name that file, but no line of theirs may
# start with the forged log line or contain the ESC byte. A spec whose output.uri
# contains a control character is rejected, naming output.uri.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/a.jsonl" 3000 5
bad=$(printf 'tr\nlevel=error event=forged \033[2J.jsonl.gz')
gzip -c "$WORK/a.jsonl" | head -c 20000 >"$WORK/in/$bad"
write_spec "$WORK/job.json" "$WORK/in/*.jsonl.gz" "$WORK/out" 30000

# check_no_forged_line FILE WHAT: FILE has no line that starts with the
# forged log line and no ESC byte.
check_no_forged_line() {
    if grep -n "^level=error event=forged" "$1"; then
        die "$2 printed the newline of a file name unescaped"
    fi
    if grep -n $'\033' "$1"; then
        die "$2 printed the ESC byte of a file name unescaped"
    fi
}

"$BIN" run "$WORK/job.json" --store "$STORE" --workers 1 --job-id bad >"$WORK/run.log" 2>&1
rc=$?
[ "$rc" = 1 ] || { cat "$WORK/run.log"; die "run exited $rc for corrupt input, expected 1"; }
# The failed: message keeps its newlines (an exec step's stderr has many
# lines) and indents the lines after the first, so no line of it can pass
# for a log line. Other control characters are escaped.
grep -qF '  level=error event=forged \x1b[2J.jsonl.gz' "$WORK/run.log" ||
    { cat "$WORK/run.log"; die "run's failed: message does not name the file escaped"; }
# Worker log lines escape the name by themselves; check only run's lines.
grep -v "^ts=" "$WORK/run.log" >"$WORK/run-lines.log"
check_no_forged_line "$WORK/run-lines.log" "run"

"$BIN" status bad --store "$STORE" >"$WORK/status.txt" 2>&1 || die "status failed"
grep -qF 'tr\nlevel=error event=forged \x1b[2J.jsonl.gz' "$WORK/status.txt" ||
    { cat "$WORK/status.txt"; die "status does not name the file escaped"; }
check_no_forged_line "$WORK/status.txt" "status"

# A control character in output.uri: rejected at parse, by run and explain.
uri=$(printf '%s/out\\u001b[2J' "$WORK")
write_spec "$WORK/esc.json" "$WORK/in/*.jsonl.gz" "$uri" 30000
"$BIN" run "$WORK/esc.json" --store "$STORE" --workers 1 >"$WORK/esc.log" 2>&1
rc=$?
[ "$rc" = 2 ] || { cat "$WORK/esc.log"; die "run exited $rc for a control character in output.uri, expected 2"; }
grep -q 'output.uri: .*out\\x1b\[2J" contains a control character' "$WORK/esc.log" ||
    { cat "$WORK/esc.log"; die "the error does not name output.uri"; }
check_no_forged_line "$WORK/esc.log" "run"
"$BIN" explain "$WORK/esc.json" >"$WORK/explain.log" 2>&1
rc=$?
[ "$rc" = 2 ] || { cat "$WORK/explain.log"; die "explain exited $rc, expected 2"; }
grep -q "output.uri" "$WORK/explain.log" || { cat "$WORK/explain.log"; die "explain does not name output.uri"; }
echo "ok"
