#!/bin/bash
# A user name and password in AWS_ENDPOINT_URL do not reach the log: debug
# lines (s3_open, s3_request url=) and errors show REDACTED in their place.
# The endpoint is a loopback port with no server, so each request fails at
# once with "connection refused".
set -u
export AWS_EC2_METADATA_DISABLED=true
BIN=${DSPARK_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/dspark}
LOG=$(mktemp /tmp/dsp-redact.XXXXXX)
trap 'rm -f "$LOG"' EXIT
die() {
    echo "FAIL: $*"
    exit 1
}

DSPARK_LOG_LEVEL=debug AWS_ACCESS_KEY_ID=AKIDREDACTTEST AWS_SECRET_ACCESS_KEY=redact-test \
    AWS_ENDPOINT_URL=http://dspuser:s3cretpw@127.0.0.1:9/ \
    timeout 120 "$BIN" ls s3://bucket/prefix >"$LOG" 2>&1
grep -q "event=s3_open .*endpoint=http://REDACTED@127.0.0.1:9" "$LOG" ||
    { cat "$LOG"; die "no s3_open line with the redacted endpoint"; }
grep -q 'event=s3_request .*url="http://REDACTED@127.0.0.1:9/' "$LOG" ||
    { cat "$LOG"; die "no s3_request line with the redacted url"; }
if grep -n "s3cretpw\|dspuser" "$LOG"; then
    die "the log shows the user name or password of AWS_ENDPOINT_URL"
fi
echo "ok"
