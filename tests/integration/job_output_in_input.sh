#!/bin/bash
# An output that the job's own input glob could match is rejected by
# explain and submit, and the message names both. An output beside the
# inputs is accepted.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/ov"
gen_jsonl "$WORK/ov/a.jsonl" 20 9

# reject_output SPEC LABEL OUTPUT INPUT: explain and submit both reject
# SPEC and name OUTPUT and INPUT, as absolute paths.
reject_output() {
    local spec=$1 label=$2 output=$3 input=$4 cmd
    for cmd in explain submit; do
        if "$BIN" "$cmd" "$spec" --store "$STORE" >"$WORK/$cmd.out" 2>"$WORK/$cmd.err"; then
            die "$label: $cmd accepted an output under its own input glob"
        fi
        grep -qF "output $output lies under input[0] \"$input\"" "$WORK/$cmd.err" ||
            { cat "$WORK/$cmd.err"; die "$label: $cmd message does not name output and input"; }
    done
}

write_spec "$WORK/nested.json" "$WORK/ov/**" "$WORK/ov/out" 4000
reject_output "$WORK/nested.json" "recursive glob" "$WORK/ov/out" "$WORK/ov/**"

write_spec "$WORK/parts.json" "$WORK/ov/out/part-*" "$WORK/ov/out/" 4000
reject_output "$WORK/parts.json" "glob of the output's parts" "$WORK/ov/out/" "$WORK/ov/out/part-*"

# Relative paths resolve against the working directory.
write_spec "$WORK/relative.json" "ov/**" "./ov/out" 4000
(cd "$WORK" && reject_output "$WORK/relative.json" "relative paths" "$WORK/ov/out" "$WORK/ov/**") ||
    exit 1

[ ! -e "$WORK/ov/out" ] || die "a rejected job wrote its output"
[ ! -d "$STORE/jobs" ] || [ -z "$(ls "$STORE/jobs")" ] || die "a rejected job left a job behind"

# A single-level glob cannot reach the output's files, so this job runs,
# and a second run reads the same input as the first.
write_spec "$WORK/flat.json" "$WORK/ov/*.jsonl" "$WORK/ov/out" 4000
"$BIN" run "$WORK/flat.json" --store "$STORE" --workers 1 >/dev/null 2>"$WORK/run1.err" ||
    { cat "$WORK/run1.err"; die "first run of a job beside its inputs failed"; }
"$BIN" run "$WORK/flat.json" --store "$STORE" --workers 1 --job-id second >/dev/null \
    2>"$WORK/run2.err" || { cat "$WORK/run2.err"; die "second run failed"; }
in1=$(jq .totals.records_in "$WORK/ov/out/_MANIFEST.json")
[ "$in1" = 20 ] || die "second run read $in1 records, expected the 20 input records"
echo "ok"
