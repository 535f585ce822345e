#!/bin/bash
# A job that rejects every input record fails with the top reject reasons
# and a hint, and publishes nothing. A job that rejects only some records
# succeeds.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in" "$WORK/bin" "$WORK/mixed"
gen_jsonl "$WORK/in/a.jsonl" 13 4

# expect_all_rejected SPEC OUTPUT REASON COUNT LABEL
expect_all_rejected() {
    local spec=$1 output=$2 reason=$3 count=$4 label=$5 rc id
    "$BIN" run "$spec" --store "$STORE" --workers 1 --job-id "$label" >"$WORK/$label.out" \
        2>"$WORK/$label.err"
    rc=$?
    [ "$rc" = 1 ] || { cat "$WORK/$label.err"; die "$label: run exited $rc, expected 1 (job failed)"; }
    grep -q "every input record was rejected ($count of $count)" "$WORK/$label.err" ||
        { cat "$WORK/$label.err"; die "$label: run output lacks the all-rejected message"; }
    grep -q "top reasons: $reason $count" "$WORK/$label.err" ||
        { cat "$WORK/$label.err"; die "$label: run output lacks the top reason $reason"; }
    grep -q "check text_field" "$WORK/$label.err" ||
        die "$label: run output lacks the text_field hint"
    "$BIN" status "$label" --store "$STORE" --json >"$WORK/$label.json" || die "$label: status failed"
    [ "$(jq -r .state "$WORK/$label.json")" = failed ] || die "$label: status state is not failed"
    [ "$(jq -r ".final.reject_reasons.$reason" "$WORK/$label.json")" = "$count" ] ||
        die "$label: final.reject_reasons.$reason is not $count"
    jq -r .final.message "$WORK/$label.json" | grep -q "top reasons: $reason $count" ||
        die "$label: final.message lacks the top reason"
    [ ! -e "$output/_SUCCESS" ] || die "$label: an all-rejected job published _SUCCESS"
    [ ! -e "$output/_MANIFEST.json" ] || die "$label: an all-rejected job published a manifest"
}

# A typo in text_field: every record lacks the field.
write_spec "$WORK/typo.json" "$WORK/in/*.jsonl" "$WORK/out-typo" 4000
jq '.text_field = "body"' "$WORK/typo.json" >"$WORK/typo2.json"
expect_all_rejected "$WORK/typo2.json" "$WORK/out-typo" missing_text 13 typo

# Binary input: no line is JSON. Newlines are removed from the random bytes
# so the record count is known.
head -c 4000 /dev/urandom | tr -d '\n' >"$WORK/bin/garbage.jsonl"
printf '\n' >>"$WORK/bin/garbage.jsonl"
write_spec "$WORK/binary.json" "$WORK/bin/*.jsonl" "$WORK/out-binary" 4000
expect_all_rejected "$WORK/binary.json" "$WORK/out-binary" invalid_json 1 binary

# Some rejected records: the job succeeds.
cp "$WORK/in/a.jsonl" "$WORK/mixed/a.jsonl"
printf '{"id": "x"}\nnot json\n[1,2,3]\n42\n"s"\n' >>"$WORK/mixed/a.jsonl"
write_spec "$WORK/mixed.json" "$WORK/mixed/*.jsonl" "$WORK/out-mixed" 4000
"$BIN" run "$WORK/mixed.json" --store "$STORE" --workers 1 --job-id mixed >/dev/null \
    2>"$WORK/mixed.err" || { cat "$WORK/mixed.err"; die "a job with some rejected records failed"; }
[ "$(job_state mixed)" = done ] || die "a job with some rejected records is not done"
[ "$(jq .totals.records_rejected "$WORK/out-mixed/_MANIFEST.json")" = 5 ] ||
    die "the mixed job's manifest does not count 5 rejects"
# Valid JSON that is not an object has its own reason, apart from invalid JSON.
"$BIN" report --json "$WORK/out-mixed" >"$WORK/mixed-report.json" || die "report of the mixed job failed"
[ "$(jq '.reject_reasons.not_object' "$WORK/mixed-report.json")" = 3 ] ||
    die "the report does not count 3 not_object rejects: $(jq -c .reject_reasons "$WORK/mixed-report.json")"
[ "$(jq '.reject_reasons.invalid_json' "$WORK/mixed-report.json")" = 1 ] ||
    die "the report does not count 1 invalid_json reject: $(jq -c .reject_reasons "$WORK/mixed-report.json")"
[ "$(zstdcat "$WORK"/out-mixed/_rejects/part-*.zst | jq -r 'select(.reason == "not_object") | .offset' | wc -l)" = 3 ] ||
    die "the _rejects files do not hold 3 not_object records"
echo "ok"
