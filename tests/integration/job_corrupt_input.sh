#!/bin/bash
# Corrupt input fails its task and the job at the first attempt, because
# corrupt bytes read the same on every retry. A truncated zstd stream, a
# truncated gzip stream and a WARC record with a wrong Content-Length each
# leave one recorded attempt with code "corrupt". The error names the
# input and the byte offset. A transient store error on an input read is
# still retried up to max_attempts.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 3000 5

# Truncated zstd: the stream ends inside a frame at the file's last byte.
mkdir -p "$WORK/zst"
zstd -q -c "$WORK/in/a.jsonl" | head -c 20000 >"$WORK/zst/a.jsonl.zst"

# Truncated gzip: the stream ends inside a member.
mkdir -p "$WORK/gz"
gzip -c "$WORK/in/a.jsonl" | head -c 20000 >"$WORK/gz/a.jsonl.gz"

# WARC whose second record's Content-Length is 5 bytes short, so the
# CRLF CRLF that ends a record is not at the offset the length gives.
mkdir -p "$WORK/warc"
warc_bad_offset=$(python3 - "$WORK/warc/a.warc" <<'PY'
import sys
def record(n, body, length_error=0):
    body = body.encode()
    head = ("WARC/1.0\r\nWARC-Type: conversion\r\n"
            "WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-00000000000%d>\r\n"
            "WARC-Target-URI: http://example.com/%d\r\n"
            "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
            % (n, n, len(body) - length_error)).encode()
    return head + body + b"\r\n\r\n"
first = record(1, "the first document has enough words to pass every filter here")
second = record(2, "the second document has a Content-Length five bytes short", 5)
with open(sys.argv[1], "wb") as f:
    f.write(first + second)
print(len(first))
PY
)

# run_corrupt NAME INPUT_GLOB EXPECTED_TEXT: the job over INPUT_GLOB fails
# after one attempt with an error that contains EXPECTED_TEXT.
run_corrupt() {
    local name=$1 input=$2 want=$3 job rc
    write_spec "$WORK/$name.json" "$input" "$WORK/out-$name" 1000000 "" '"max_attempts": 4'
    job=$("$BIN" submit "$WORK/$name.json" --store "$STORE" --job-id "$name") ||
        die "$name: submit failed"
    start_worker "$WORK/$name.log" --job "$job" --exit-when-finished
    "$BIN" wait "$job" --store "$STORE" --timeout 60 >/dev/null 2>&1
    rc=$?
    [ $rc = 1 ] || { tail -5 "$WORK/$name.log"; die "$name: wait exited $rc, expected 1"; }

    [ "$(grep -c 'event=task_failed' "$WORK/$name.log")" = 1 ] ||
        { grep event=task_failed "$WORK/$name.log"; die "$name: corrupt input was retried"; }
    grep -q 'event=task_failed.*permanent=1 error=corrupt' "$WORK/$name.log" ||
        { grep event=task_failed "$WORK/$name.log"; die "$name: the failure is not a permanent corrupt error"; }

    "$BIN" status "$job" --store "$STORE" --json >"$WORK/$name-status.json" ||
        die "$name: status failed"
    jq -e '.state == "failed"' "$WORK/$name-status.json" >/dev/null ||
        die "$name: the job state is not failed"
    jq -e '.errors | length == 1' "$WORK/$name-status.json" >/dev/null ||
        { jq .errors "$WORK/$name-status.json"; die "$name: expected 1 recorded attempt"; }
    jq -e '.errors[0].attempt_number == 1 and .errors[0].code == "corrupt"' \
        "$WORK/$name-status.json" >/dev/null ||
        { jq .errors "$WORK/$name-status.json"; die "$name: expected attempt 1 with code corrupt"; }
    jq -e --arg want "$want" '.errors[0].message | contains($want)' \
        "$WORK/$name-status.json" >/dev/null ||
        { jq .errors "$WORK/$name-status.json"; die "$name: the error does not contain '$want'"; }
    jq -e '.final.message | contains("not retried")' "$WORK/$name-status.json" >/dev/null ||
        { jq .final "$WORK/$name-status.json"; die "$name: the final error does not say it was not retried"; }
    [ ! -e "$WORK/out-$name/_SUCCESS" ] || die "$name: a failed job published _SUCCESS"
}

run_corrupt zst "$WORK/zst/*.zst" \
    "truncated zstd stream in $WORK/zst/a.jsonl.zst: input ends inside a frame at byte 20000"
echo "ok zstd"
run_corrupt gz "$WORK/gz/*.gz" \
    "truncated gzip stream in $WORK/gz/a.jsonl.gz: input ends inside a member at byte 20000"
echo "ok gzip"
run_corrupt warc "$WORK/warc/*.warc" \
    "invalid WARC record in $WORK/warc/a.warc at byte $warc_bad_offset: expected CRLF CRLF"
echo "ok warc"

# A transient error: every GET of the input fails with 503, and the store
# gives up after 2 attempts. The task is retried until max_attempts (2).
mkdir -p "$WORK/flaky"
cp "$WORK/in/a.jsonl" "$WORK/flaky/transient-input.jsonl"
write_spec "$WORK/flaky.json" "$WORK/flaky/*.jsonl" "$WORK/out-flaky" 100000000 "" '"max_attempts": 2'
job=$("$BIN" submit "$WORK/flaky.json" --store "$STORE" --job-id retried) || die "submit failed"
DSPARK_RETRY_MAX_ATTEMPTS=2 DSPARK_FAULTS="op=get,error=503,rate=1,key=transient-input" \
    start_worker "$WORK/flaky.log" --job "$job" --exit-when-finished
"$BIN" wait "$job" --store "$STORE" --timeout 60 >/dev/null 2>&1
rc=$?
[ $rc = 1 ] || { tail -5 "$WORK/flaky.log"; die "the job with a failing input read exited $rc, expected 1"; }
[ "$(grep -c 'event=task_failed.*permanent=0 error=transient' "$WORK/flaky.log")" = 2 ] ||
    { grep event=task_failed "$WORK/flaky.log"; die "a transient error was not retried up to max_attempts"; }
"$BIN" status "$job" --store "$STORE" --json >"$WORK/flaky-status.json" || die "status failed"
jq -e '[.errors[] | select(.code == "transient")] | length == 2' "$WORK/flaky-status.json" >/dev/null ||
    { jq .errors "$WORK/flaky-status.json"; die "expected 2 recorded transient attempts"; }
echo "ok transient"
echo "ok"
