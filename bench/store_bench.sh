#!/bin/bash
# Storage benchmark: the DSpark S3 client against curl --aws-sigv4 on the
# same server in the same run.
#   - one 1 GiB object: PUT with `dspark cp FILE s3://...` and GET with
#     `dspark cp s3://... -` (multipart upload and ranged read-ahead), against
#     one curl process uploading and downloading the same object;
#   - 2,000 objects of 4 KiB: PUT and GET through one store handle shared by
#     THREADS threads (bench/store_bench_driver.c), against one curl process
#     per object, run one after another.
# Each measurement runs REPEAT times; the report gives medians.
#
# Usage: bench/store_bench.sh [REPEAT] [THREADS]
# Needs AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# DSPARK_TEST_S3_BUCKET, e.g. from
#   RGW_DIR=/tmp/rgw-bench RGW_PORT=18100 RGW_MON_PORT=14100 scripts/rgw-up.sh
#   . /tmp/rgw-bench/env
# and a build directory (BUILD, default build) holding dspark and libdspark.a.
# The endpoint must take path-style URLs (RGW and MinIO do).
set -euo pipefail
export AWS_EC2_METADATA_DISABLED=true
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/dspark
REPEAT=${1:-3}
THREADS=${2:-16}
LARGE_MIB=${LARGE_MIB:-1024}
SMALL_COUNT=${SMALL_COUNT:-2000}
SMALL_SIZE=${SMALL_SIZE:-4096}
: "${AWS_ENDPOINT_URL:?set AWS_ENDPOINT_URL (see the usage above)}"
: "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID}"
: "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY}"
: "${DSPARK_TEST_S3_BUCKET:?set DSPARK_TEST_S3_BUCKET (see the usage above)}"
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
bucket=$DSPARK_TEST_S3_BUCKET
endpoint=${AWS_ENDPOINT_URL%/}

if [ ! -x "$BIN" ] || [ ! -f "$BUILD/libdspark.a" ]; then
    echo "store_bench: $BIN or $BUILD/libdspark.a missing; run make BUILD=$BUILD first" >&2
    exit 1
fi

work=$(mktemp -d /tmp/dsp-store-bench.XXXXXX)
run="storebench-$(date -u +%Y%m%dT%H%M%S)-$$"
trap 'rm -rf "$work"' EXIT

driver=$work/store_bench_driver
# shellcheck disable=SC2046
gcc -std=c11 -D_GNU_SOURCE -O2 -pthread -I. $(pkg-config --cflags libcurl libcjson) \
    bench/store_bench_driver.c "$BUILD/libdspark.a" -o "$driver" \
    $(pkg-config --libs libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash) \
    -lcld2 -lstdc++ -lpthread -lm

# curl signs with --aws-sigv4; RGW also needs x-amz-content-sha256, which
# curl 7.88 does not send by itself. (An empty "Expect:" header would be
# signed but not sent, so curl keeps its 100-continue default.)
curl_s3=(curl -sS --fail --aws-sigv4 "aws:amz:$REGION:s3"
         --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
         -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "store_bench: generating a ${LARGE_MIB} MiB file" >&2
head -c $((LARGE_MIB * 1024 * 1024)) /dev/urandom >"$work/large.bin"
large_bytes=$(stat -c %s "$work/large.bin")

declare -A times
for rep in $(seq 1 "$REPEAT"); do
    echo "store_bench: round $rep of $REPEAT" >&2
    # Large object.
    t0=$(now); "$BIN" cp "$work/large.bin" "s3://$bucket/$run/large-dspark.bin" >/dev/null; t1=$(now)
    times[large_put_dspark]+="$(elapsed "$t0" "$t1") "
    t0=$(now); "$BIN" cp "s3://$bucket/$run/large-dspark.bin" - >"$work/large.back"; t1=$(now)
    times[large_get_dspark]+="$(elapsed "$t0" "$t1") "
    cmp -s "$work/large.bin" "$work/large.back" || { echo "store_bench: dspark GET returned other bytes" >&2; exit 1; }
    rm -f "$work/large.back"

    t0=$(now); "${curl_s3[@]}" -o /dev/null -T "$work/large.bin" "$endpoint/$bucket/$run/large-curl.bin"; t1=$(now)
    times[large_put_curl]+="$(elapsed "$t0" "$t1") "
    t0=$(now); "${curl_s3[@]}" -o "$work/large.back" "$endpoint/$bucket/$run/large-curl.bin"; t1=$(now)
    times[large_get_curl]+="$(elapsed "$t0" "$t1") "
    cmp -s "$work/large.bin" "$work/large.back" || { echo "store_bench: curl GET returned other bytes" >&2; exit 1; }
    rm -f "$work/large.back"

    # Small objects.
    out=$("$driver" put "s3://$bucket/$run" "small-dspark-$rep" "$SMALL_COUNT" "$SMALL_SIZE" "$THREADS")
    out=${out#seconds=}
    times[small_put_dspark]+="${out%% *} "
    out=$("$driver" get "s3://$bucket/$run" "small-dspark-$rep" "$SMALL_COUNT" "$THREADS")
    out=${out#seconds=}
    times[small_get_dspark]+="${out%% *} "

    head -c "$SMALL_SIZE" /dev/zero | tr '\0' x >"$work/small.bin"
    t0=$(now)
    for i in $(seq -f %06g 0 $((SMALL_COUNT - 1))); do
        "${curl_s3[@]}" -o /dev/null -T "$work/small.bin" "$endpoint/$bucket/$run/small-curl-$rep/obj-$i"
    done
    t1=$(now)
    times[small_put_curl]+="$(elapsed "$t0" "$t1") "
    t0=$(now)
    for i in $(seq -f %06g 0 $((SMALL_COUNT - 1))); do
        "${curl_s3[@]}" -o /dev/null "$endpoint/$bucket/$run/small-curl-$rep/obj-$i"
    done
    t1=$(now)
    times[small_get_curl]+="$(elapsed "$t0" "$t1") "
done

echo "store_bench: deleting s3://$bucket/$run/" >&2
"$BIN" rm -r "s3://$bucket/$run/" >/dev/null 2>&1 || echo "store_bench: cleanup of s3://$bucket/$run/ failed; remove it by hand" >&2

med() { echo "${times[$1]}" | tr ' ' '\n' | grep -v '^$' | median; }
mbps() { echo "$large_bytes / 1048576 / $1" | bc -l | xargs printf '%.1f'; }
ops() { echo "$SMALL_COUNT / $1" | bc -l | xargs printf '%.0f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

lpd=$(med large_put_dspark); lpc=$(med large_put_curl)
lgd=$(med large_get_dspark); lgc=$(med large_get_curl)
spd=$(med small_put_dspark); spc=$(med small_put_curl)
sgd=$(med small_get_dspark); sgc=$(med small_get_curl)

cat <<REPORT
Storage benchmark ($(date -u +%Y-%m-%d), $REPEAT rounds, medians)
endpoint: $endpoint   machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')

| measurement | dspark | curl | dspark / curl |
|---|---|---|---|
| PUT ${LARGE_MIB} MiB object, MiB/s | $(mbps "$lpd") | $(mbps "$lpc") | $(ratio "$(mbps "$lpd")" "$(mbps "$lpc")") |
| GET ${LARGE_MIB} MiB object, MiB/s | $(mbps "$lgd") | $(mbps "$lgc") | $(ratio "$(mbps "$lgd")" "$(mbps "$lgc")") |
| PUT $SMALL_COUNT x $SMALL_SIZE B, objects/s | $(ops "$spd") | $(ops "$spc") | $(ratio "$(ops "$spd")" "$(ops "$spc")") |
| GET $SMALL_COUNT x $SMALL_SIZE B, objects/s | $(ops "$sgd") | $(ops "$sgc") | $(ratio "$(ops "$sgd")" "$(ops "$sgc")") |

dspark: large objects through \`dspark cp\` (8 MiB parts, 8 in flight), small
objects through one store handle shared by $THREADS threads. curl: one
process for the large object, one process per small object.
REPORT
