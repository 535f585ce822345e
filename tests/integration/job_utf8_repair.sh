#!/bin/bash
# Documents whose invalid UTF-8 the readers replace with U+FFFD are kept
# and counted: records_utf8_repaired in `status --json`, in the totals of
# _MANIFEST.json and in `dspark report`, and a line in the run summary.
# Covered: JSONL string values (a Latin-1 byte, a cut-off sequence, an
# overlong form, a lone high and a lone low surrogate escape, next to a
# valid surrogate pair that stays), a WET conversion record, and a
# dedup_exact job, whose
# filter stage reads the inputs a second time but must count them once.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/jsonl" "$WORK/wet"
# Five of eight JSONL records contain invalid UTF-8 or a lone surrogate
# escape inside the text value, and one of two WET conversion records
# contains invalid UTF-8.
python3 - "$WORK/jsonl/a.jsonl" "$WORK/wet/a.wet" <<'PY'
import sys
lines = [
    b'{"id": "1", "text": "caf\xe9 au lait is coffee with hot milk"}',
    b'{"id": "2", "text": "plain ascii text with enough words to keep"}',
    b'{"id": "3", "text": "the euro sign cut short \xe2\x82 in the middle"}',
    b'{"id": "4", "text": "an overlong slash \xc0\xaf is not valid either"}',
    b'{"id": "5", "text": "another valid line with \xc3\xa9 in it"}',
    b'{"id": "6", "text": "a lone high surrogate \\ud800 without its pair"}',
    b'{"id": "7", "text": "a lone low surrogate \\udc00 on its own"}',
    b'{"id": "8", "text": "a valid pair \\ud83d\\ude00 stays as it is"}',
]
with open(sys.argv[1], "wb") as f:
    f.write(b"\n".join(lines) + b"\n")

def conversion(n, body):
    head = ("WARC/1.0\r\nWARC-Type: conversion\r\n"
            "WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-00000000000%d>\r\n"
            "WARC-Target-URI: http://example.com/%d\r\n"
            "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (n, n, len(body))).encode()
    return head + body + b"\r\n\r\n"
with open(sys.argv[2], "wb") as f:
    f.write(conversion(1, b"a valid page of plain text"))
    f.write(conversion(2, b"a page with a stray \xff byte in it"))
PY

# check_repaired NAME SPEC_STEPS INPUT_GLOB WANT_REPAIRED WANT_OUT
check_repaired() {
    local name=$1 steps=$2 input=$3 want=$4 want_out=$5 job
    cat >"$WORK/$name.json" <<JSON
{
  "name": "utf8-$name",
  "input": ["$input"],
  "steps": [$steps],
  "output": {"uri": "$WORK/out-$name", "format": "jsonl.zst"}
}
JSON
    "$BIN" run "$WORK/$name.json" --store "$STORE" --job-id "$name" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
        { cat "$WORK/$name.err"; die "$name: the job failed"; }

    grep -q "repaired   $want documents had invalid UTF-8, replaced with U+FFFD" "$WORK/$name.out" ||
        { cat "$WORK/$name.out"; die "$name: the run summary does not report $want repaired documents"; }
    "$BIN" status "$name" --store "$STORE" --json >"$WORK/$name-status.json" || die "$name: status failed"
    jq -e --argjson want "$want" '.counters.records_utf8_repaired == $want' \
        "$WORK/$name-status.json" >/dev/null ||
        { jq .counters "$WORK/$name-status.json"; die "$name: status does not count $want repaired documents"; }
    jq -e --argjson want "$want" '.totals.records_utf8_repaired == $want' \
        "$WORK/out-$name/_MANIFEST.json" >/dev/null ||
        { jq .totals "$WORK/out-$name/_MANIFEST.json"; die "$name: the manifest does not count $want repaired documents"; }
    jq -e --argjson out "$want_out" '.totals.records_out == $out and .totals.records_rejected == 0' \
        "$WORK/out-$name/_MANIFEST.json" >/dev/null ||
        { jq .totals "$WORK/out-$name/_MANIFEST.json"; die "$name: repaired documents were dropped or rejected"; }
    "$BIN" report "$WORK/out-$name" --json >"$WORK/$name-report.json" || die "$name: report failed"
    jq -e --argjson want "$want" '.documents.utf8_repaired == $want' "$WORK/$name-report.json" >/dev/null ||
        { jq .documents "$WORK/$name-report.json"; die "$name: the report does not count $want repaired documents"; }

    local replaced
    replaced=$(zstdcat "$WORK/out-$name"/part-*.zst | grep -c $'\xef\xbf\xbd')
    [ "$replaced" = "$want" ] || die "$name: $replaced output documents contain U+FFFD, expected $want"
}

check_repaired jsonl '{"op": "normalize"}' "$WORK/jsonl/*.jsonl" 5 8
if zstdcat "$WORK/out-jsonl"/part-*.zst | grep -qiE '\\ud800|\\udc00'; then
    die "jsonl: a lone surrogate escape reached the output"
fi
zstdcat "$WORK/out-jsonl"/part-*.zst | jq -r .text | grep -q $'a valid pair \U0001F600 stays' ||
    die "jsonl: the valid surrogate pair did not survive as U+1F600"
echo "ok jsonl"
check_repaired wet '{"op": "normalize"}' "$WORK/wet/*.wet" 1 2
echo "ok wet"
check_repaired dedup '{"op": "dedup_exact"}' "$WORK/jsonl/*.jsonl" 5 8
echo "ok dedup"

# normalize itself finds nothing left to fix: the reader repaired it.
jq -e '.operators[0].extra.invalid_utf8 == 0' "$WORK/out-jsonl/_MANIFEST.json" >/dev/null ||
    { jq .operators "$WORK/out-jsonl/_MANIFEST.json"; die "normalize saw invalid UTF-8 that the reader should have repaired"; }
echo "ok"
