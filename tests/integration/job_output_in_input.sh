#!/bin/bash
# An output that the job's own input glob could match is rejected by
# explain and submit, and the message names both. So are a job store that
# an input glob could match and a job store and output that overlap. An
# output beside the inputs is accepted.
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

# The same holds for the job store: a run from the data directory with the
# default store ./.dspark and a recursive glob read the store's part files
# of earlier jobs back as input, so its output grew with every run.
# reject_store SPEC LABEL MESSAGE [--store S]: explain and submit both
# reject SPEC, run from $WORK/ov, with MESSAGE (a fixed string).
reject_store() {
    local spec=$1 label=$2 message=$3 cmd
    shift 3
    for cmd in explain submit; do
        if (cd "$WORK/ov" && "$BIN" "$cmd" "$spec" "$@") >"$WORK/$cmd.out" 2>"$WORK/$cmd.err"; then
            die "$label: $cmd accepted the spec"
        fi
        grep -qF "$message" "$WORK/$cmd.err" ||
            { cat "$WORK/$cmd.err"; die "$label: $cmd does not print: $message"; }
    done
    if (cd "$WORK/ov" && "$BIN" run "$spec" "$@") >"$WORK/run.out" 2>"$WORK/run.err"; then
        die "$label: run accepted the spec"
    fi
    grep -qF "$message" "$WORK/run.err" || { cat "$WORK/run.err"; die "$label: run does not print: $message"; }
}
write_spec "$WORK/store-glob.json" "./**/*.jsonl*" "$WORK/out-store" 4000
reject_store "$WORK/store-glob.json" "default store under the glob" \
    'lies under input[0] "'"$WORK"'/ov/**/*.jsonl*": the input glob can match the store'
reject_store "$WORK/store-glob.json" "--store under the glob" \
    "job store $WORK/ov/st lies under input[0]" --store "$WORK/ov/st"
write_spec "$WORK/store-out.json" "$WORK/ov/*.jsonl" "$WORK/st/jobs/out" 4000
reject_store "$WORK/store-out.json" "output under the store's keys" \
    "output $WORK/st/jobs/out and job store $WORK/st overlap" --store "$WORK/st"
write_spec "$WORK/store-same.json" "$WORK/ov/*.jsonl" "$WORK/st" 4000
reject_store "$WORK/store-same.json" "output is the store" \
    "output $WORK/st and job store $WORK/st overlap" --store "$WORK/st"
write_spec "$WORK/out-store.json" "$WORK/ov/*.jsonl" "$WORK/o2" 4000
reject_store "$WORK/out-store.json" "store under the output" \
    "output $WORK/o2 and job store $WORK/o2/st overlap" --store "$WORK/o2/st"
# The store's directory may exist, because run creates a missing store.
[ ! -e "$WORK/out-store" ] && [ ! -e "$WORK/o2/_SUCCESS" ] || die "a rejected job wrote its output"
[ ! -d "$WORK/ov/.dspark/jobs" ] || [ -z "$(ls "$WORK/ov/.dspark/jobs")" ] ||
    die "a rejected job left a job in the default store"

# Doubled slashes, ".." and symbolic links do not hide an overlap.
ln -s "$WORK/ov" "$WORK/ov-link"
write_spec "$WORK/store-dots.json" "$WORK//x/../ov/**" "$WORK/out-dots" 4000
reject_store "$WORK/store-dots.json" "glob with // and .." \
    "job store $WORK/ov/st lies under input[0]" --store "$WORK/ov/st"
write_spec "$WORK/store-link.json" "$WORK/ov-link/**" "$WORK/out-link" 4000
reject_store "$WORK/store-link.json" "glob through a symlink" \
    "job store $WORK/ov/st lies under input[0]" --store "$WORK/ov/st"
write_spec "$WORK/out-link.json" "$WORK/ov/*.jsonl" "$WORK/ov-link/st/jobs/o" 4000
reject_store "$WORK/out-link.json" "output through a symlink" \
    "and job store $WORK/ov/st overlap" --store "$WORK//ov/./st"

# A store in the input directory is fine when no glob reaches its keys,
# and so is an output beside the store's keys.
write_spec "$WORK/store-beside.json" "$WORK/ov/*.jsonl" "$WORK/ov/st-out" 4000
"$BIN" run "$WORK/store-beside.json" --store "$WORK/ov" --workers 1 >/dev/null 2>"$WORK/beside.err" ||
    { cat "$WORK/beside.err"; die "a store beside a single-level glob was rejected"; }

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
