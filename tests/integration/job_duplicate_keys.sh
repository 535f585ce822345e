#!/bin/bash
# Records with a member that the job reads twice are rejected as
# duplicate_key, because operators see the first value and most JSON
# parsers the last. Members that operators add occur once in the output.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 20 7
cat >>"$WORK/in/a.jsonl" <<'JSONL'
{"id":"p1","text":"harmless text","text":"Call 555-123-4567 or a@example.com"}
{"id":"u1","text":"one url too many for this record to be kept by the job","url":"a","url":"b"}
{"id":"l1","lang":"xx","l\u0061ng_score":7,"url":"c","text":"The quick brown fox jumps over the lazy dog and keeps running through the forest."}
JSONL

# added_once FILE...: lang and lang_score occur once on every output line.
added_once() {
    zstdcat "$@" | python3 -c '
import json, sys
for n, line in enumerate(sys.stdin, 1):
    names = [k for k, _ in json.loads(line, object_pairs_hook=lambda p: p)]
    for name in ("lang", "lang_score"):
        if names.count(name) != 1:
            sys.exit("line %d has %s %d times: %s" % (n, name, names.count(name), line.strip()))
'
}

# 1. pii_redact: the record with two text members is rejected, not passed
# on with the unredacted second value.
cat >"$WORK/pii.json" <<JSON
{"name": "dup-pii", "input": ["$WORK/in/*.jsonl"],
 "steps": [{"op": "pii_redact"}],
 "output": {"uri": "$WORK/out-pii"}}
JSON
"$BIN" run "$WORK/pii.json" --store "$STORE" --workers 1 --job-id pii >/dev/null 2>"$WORK/pii.err" ||
    { cat "$WORK/pii.err"; die "the pii job failed"; }
if zstdcat "$WORK"/out-pii/part-*.zst | grep -q '555-123-4567'; then
    die "the output contains the unredacted phone number of the duplicate text member"
fi
zstdcat "$WORK"/out-pii/part-*.zst | grep -q '"id":"u1"' ||
    die "record u1 was rejected although this job does not read url"
rejects=$(zstdcat "$WORK"/out-pii/_rejects/part-*.zst)
[ "$(echo "$rejects" | jq -r 'select(.reason == "duplicate_key") | .member')" = text ] ||
    die "_rejects lacks a duplicate_key record naming member text: $rejects"
[ "$(jq .totals.records_rejected "$WORK/out-pii/_MANIFEST.json")" = 1 ] ||
    die "the manifest does not count 1 rejected record"
"$BIN" report --json "$WORK/out-pii" >"$WORK/pii-report.json" || die "report failed"
[ "$(jq '.reject_reasons.duplicate_key' "$WORK/pii-report.json")" = 1 ] ||
    die "the report does not count 1 duplicate_key reject: $(jq -c .reject_reasons "$WORK/pii-report.json")"

# 2. Two langid steps, on input that has lang and lang_score (the latter
# written with an escape): each occurs once per output line.
cat >"$WORK/langid.json" <<JSON
{"name": "dup-langid", "input": ["$WORK/in/*.jsonl"],
 "steps": [{"op": "langid"}, {"op": "langid"}],
 "output": {"uri": "$WORK/out-langid"}}
JSON
"$BIN" run "$WORK/langid.json" --store "$STORE" --workers 1 --job-id langid >/dev/null \
    2>"$WORK/langid.err" || { cat "$WORK/langid.err"; die "the langid job failed"; }
added_once "$WORK"/out-langid/part-*.zst || die "an output line repeats an added member"

# 3. dedup_exact on url: the map stage rejects the record with two url
# members, and the stage that re-reads the inputs skips it the same way.
cat >"$WORK/dedup.json" <<JSON
{"name": "dup-url", "input": ["$WORK/in/*.jsonl"],
 "steps": [{"op": "length", "min_words": 1}, {"op": "dedup_exact", "field": "url"}],
 "output": {"uri": "$WORK/out-dedup"}}
JSON
"$BIN" run "$WORK/dedup.json" --store "$STORE" --workers 1 --job-id dedup >/dev/null \
    2>"$WORK/dedup.err" || { cat "$WORK/dedup.err"; die "the dedup job failed"; }
members=$(zstdcat "$WORK"/out-dedup/_rejects/part-*.zst | jq -r .member | sort | tr '\n' ' ')
[ "$members" = "text url " ] || die "dedup rejects name members '$members', expected 'text url '"
if zstdcat "$WORK"/out-dedup/part-*.zst | grep -q '"id":"u1"'; then
    die "record u1 with two url members reached the dedup output"
fi
[ "$(jq .totals.records_in "$WORK/out-dedup/_MANIFEST.json")" = 23 ] ||
    die "the dedup manifest does not count 23 input records"
[ "$(jq .totals.records_rejected "$WORK/out-dedup/_MANIFEST.json")" = 2 ] ||
    die "the dedup manifest does not count 2 rejected records"

# 4. A stats member named like the text field would repeat it: the spec
# is invalid.
cat >"$WORK/stats.json" <<JSON
{"name": "dup-stats", "input": ["$WORK/in/*.jsonl"],
 "steps": [{"op": "stats", "add_field": true, "field": "text"}],
 "output": {"uri": "$WORK/out-stats"}}
JSON
"$BIN" run "$WORK/stats.json" --store "$STORE" --workers 1 >/dev/null 2>"$WORK/stats.err"
rc=$?
[ "$rc" = 2 ] || { cat "$WORK/stats.err"; die "a stats field named text exited $rc, expected 2"; }
grep -q 'text_field' "$WORK/stats.err" || { cat "$WORK/stats.err"; die "the error does not name text_field"; }
echo "ok"
