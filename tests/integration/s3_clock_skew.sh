#!/bin/bash
# A machine whose clock is two minutes ahead of the S3 server's logs one
# clock_skew warning that gives the skew, because workers compare lease
# expiry times that other machines wrote. With the real clock there is no
# warning. The skew comes from libfaketime (Debian package faketime).
set -u
export AWS_EC2_METADATA_DISABLED=true
BIN=${DSPARK_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/dspark}
if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ -z "${DSPARK_TEST_S3_BUCKET:-}" ]; then
    echo "SKIP: no S3 server (AWS_ENDPOINT_URL, DSPARK_TEST_S3_BUCKET)"
    exit 77
fi
command -v faketime >/dev/null || { echo "SKIP: faketime is not installed"; exit 77; }
LOG=$(mktemp /tmp/dsp-skew.XXXXXX)
trap 'rm -f "$LOG"' EXIT
die() {
    echo "FAIL: $*"
    exit 1
}

DSPARK_LOG_LEVEL=warn "$BIN" ls "s3://$DSPARK_TEST_S3_BUCKET/" >/dev/null 2>"$LOG" ||
    { cat "$LOG"; die "ls with the real clock failed"; }
! grep -q "event=clock_skew" "$LOG" || { cat "$LOG"; die "a clock_skew warning with the real clock"; }

# Signatures carry the local time, and S3 accepts up to 15 minutes of skew.
DSPARK_LOG_LEVEL=warn faketime -f '+120s' "$BIN" ls "s3://$DSPARK_TEST_S3_BUCKET/" >/dev/null 2>"$LOG" ||
    { cat "$LOG"; die "ls with the clock 2 minutes ahead failed"; }
[ "$(grep -c "event=clock_skew" "$LOG")" = 1 ] || { cat "$LOG"; die "expected one clock_skew warning"; }
skew=$(sed -n 's/.*event=clock_skew.* skew_s=\([0-9-]*\) .*/\1/p' "$LOG")
[ -n "$skew" ] && [ "$skew" -ge 110 ] && [ "$skew" -le 130 ] ||
    { cat "$LOG"; die "skew_s=$skew, expected about 120"; }
grep -q "ahead of the S3 server's" "$LOG" || { cat "$LOG"; die "the warning does not say ahead"; }
echo "ok"
