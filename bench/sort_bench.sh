#!/bin/bash
# GraySort-style sort benchmark: RECORDS records of exactly 100 bytes (a
# 10-byte printable key, JSONL, see bench/sort_records.c) in zstd input
# files, sorted by the key with a `repartition` step ("by": "sort") and
# `dspark run --workers 2`, against a local directory store and against S3.
# GNU sort of the same decompressed lines (one thread, 256 MiB of memory,
# LC_ALL=C) is the baseline in the same run.
#
# Usage: bench/sort_bench.sh [RECORDS] [RUNS]
#   RECORDS  number of records (default 10000000, 1 GB of records)
#   RUNS     runs of each case; the table shows medians (default 3)
# Environment:
#   DSPARK_BIN   dspark binary (default build/dspark)
#   SORT_SHARDS  output shards (default 8)
#   SORT_S3=0    skip the S3 case
#   S3: with AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET set, that server is
#   used, and RGW_DIR (its scripts/rgw-up.sh state directory) adds request
#   counts from its access log, which assume no other client uses it. Without them the script starts Ceph RGW
#   with scripts/rgw-up.sh on RGW_PORT and RGW_MON_PORT (default 7480 and
#   3300) and stops it at exit; when it cannot start, the S3 case is skipped.
#
# Every run's output is checked: the shards in order hold keys in
# non-decreasing byte order, and the record count and two order-independent
# checksums equal those of the input. A failed check ends the script with
# exit status 1.
#
# CPU seconds are user + system of `dspark run` and its worker processes
# (from wait4 through /usr/bin/time); S3 server CPU is not included. Peak
# RSS is that of the largest single process. MB/s per core = input records
# bytes (10^6) / CPU seconds.
set -euo pipefail
export AWS_EC2_METADATA_DISABLED=true
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${DSPARK_BIN:-build/dspark}
RECORDS=${1:-10000000}
RUNS=${2:-3}
SHARDS=${SORT_SHARDS:-8}
SEED=42
# One input file per 1.25 million records (125 MB), at least one.
FILES=$(( (RECORDS + 1249999) / 1250000 ))
[ "$FILES" -ge 1 ] || FILES=1

die() {
    echo "sort_bench: $*" >&2
    exit 1
}
[ -x "$BIN" ] || die "dspark binary not found at $BIN; build first or set DSPARK_BIN"
[ "$RECORDS" -ge 1 ] 2>/dev/null || die "invalid RECORDS '$RECORDS': expected a positive integer"
[ "$RUNS" -ge 1 ] 2>/dev/null || die "invalid RUNS '$RUNS': expected a positive integer"

work=$(mktemp -d "${TMPDIR:-/tmp}/sort-bench.XXXXXX")
started_rgw=""
cleanup() {
    if [ -n "$started_rgw" ]; then
        RGW_DIR=$started_rgw scripts/rgw-down.sh >/dev/null 2>&1 || true
    fi
    [ "${KEEP_WORK:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

gcc -std=c11 -Wall -Wextra -Werror -O2 bench/sort_records.c $(pkg-config --cflags --libs libxxhash) \
    -o "$work/sort_records"
tool=$work/sort_records

# ---- input ----
mkdir -p "$work/in"
per_file=$(( (RECORDS + FILES - 1) / FILES ))
largest=0
for ((i = 0; i < FILES; i++)); do
    start=$(( i * per_file ))
    count=$(( RECORDS - start < per_file ? RECORDS - start : per_file ))
    f=$(printf '%s/in/part-%03d.jsonl.zst' "$work" "$i")
    "$tool" gen "$SEED" "$start" "$count" | zstd -q -3 -T1 -o "$f"
    size=$(stat -c %s "$f")
    [ "$size" -gt "$largest" ] && largest=$size
done
expect=$("$tool" gen "$SEED" 0 "$RECORDS" | "$tool" sum)
in_zst=$(cat "$work"/in/*.zst | wc -c)
echo "input: $RECORDS records ($(( RECORDS * 100 )) bytes) in $FILES files, $in_zst bytes zstd"
echo "input summary: $expect"

# write_spec FILE INPUT_GLOB OUTPUT: one map task per input file.
write_spec() {
    cat >"$1" <<JSON
{
  "name": "sort-bench",
  "input": ["$2"],
  "steps": [{"op": "repartition", "by": "sort", "field": "key", "shards": $SHARDS}],
  "output": {"uri": "$3", "format": "jsonl.zst"},
  "options": {"target_task_bytes": $largest}
}
JSON
}

# check_output CASE RUN: stdin is the concatenated decompressed shards.
check_output() {
    local got
    got=$("$tool" check) || die "$1 run $2: the output is not sorted or malformed (see above)"
    [ "$got" = "$expect" ] || die "$1 run $2: output summary '$got' differs from the input's '$expect'"
}

# worker_requests LOG: "requests coord_requests" summed over the workers.
worker_requests() {
    awk '/event=worker_stop/ {
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^requests=/) { sub(/^requests=/, "", $i); r += $i }
            if ($i ~ /^coord_requests=/) { sub(/^coord_requests=/, "", $i); c += $i }
        }
    } END { print r + 0, c + 0 }' "$1"
}

# rgw_log_lines: lines in the server's log, or -1 when the script cannot
# read it (no RGW_DIR for a server it did not start).
rgw_log_lines() {
    local log=${rgw_dir:-/nonexistent}/log/client.rgw.a.log
    if [ -r "$log" ]; then
        wc -l <"$log"
    else
        echo -1
    fi
}

# rgw_classify FIRST_LINE: "data_get data_put coord" from the access log
# lines (beast frontend, debug_rgw 1) after FIRST_LINE. Data requests name
# an input object, a task file under attempts/ (shards, shuffle, sample,
# boundaries) or an output part. Everything else is coordination: listings,
# leases, commits, seals, job state, batch deletes, _SUCCESS and
# _MANIFEST.json. GET and HEAD count as data_get, PUT, POST and DELETE as
# data_put.
rgw_classify() {
    sleep 2 # RGW writes its log asynchronously.
    tail -n "+$(( $1 + 1 ))" "$rgw_dir/log/client.rgw.a.log" | python3 -c '
import re, sys
get = put = coord = 0
for line in sys.stdin:
    m = re.search(r"beast: \S+ .*\"([A-Z]+) (\S+) HTTP/", line)
    if not m:
        continue
    method, path = m.group(1), m.group(2).split("?")[0]
    if re.search(r"/in/|/attempts/|/out-[0-9]+/part-", path):
        if method in ("GET", "HEAD"):
            get += 1
        else:
            put += 1
    else:
        coord += 1
print(get, put, coord)'
}

cpu_sum() {
    awk -v u="$1" -v s="$2" 'BEGIN { printf "%.2f", u + s }'
}

rows=$work/rows.jsonl
: >"$rows"
timefmt='%U %S %e %M'

# ---- baseline: GNU sort, one thread, bounded memory ----
zstdcat "$work"/in/*.zst >"$work/all.jsonl"
mkdir -p "$work/tmp"
for ((r = 1; r <= RUNS; r++)); do
    LC_ALL=C /usr/bin/time -o "$work/time" -f "$timefmt" \
        sort -S 256M --parallel=1 -T "$work/tmp" -o "$work/sorted.jsonl" "$work/all.jsonl"
    check_output "gnu_sort" "$r" <"$work/sorted.jsonl"
    read -r user sys wall rss <"$work/time"
    echo "{\"case\": \"gnu_sort\", \"cpu\": $(cpu_sum "$user" "$sys"), \"wall\": $wall," \
        "\"rss_kb\": $rss}" >>"$rows"
    echo "gnu_sort run $r: cpu $user+$sys s, wall $wall s, rss $rss KiB, output checked"
done
rm -f "$work/all.jsonl" "$work/sorted.jsonl"

# run_case CASE STORE INPUT_GLOB OUTPUT RUN: one dspark run, its numbers
# appended to $rows.
run_case() {
    local name=$1 store=$2 input=$3 out=$4 r=$5 first=-1
    write_spec "$work/spec.json" "$input" "$out"
    [ "$name" = s3 ] && first=$(rgw_log_lines)
    if ! /usr/bin/time -o "$work/time" -f "$timefmt" \
        "$BIN" run "$work/spec.json" --store "$store" --workers 2 >"$work/run.log" 2>&1; then
        tail -30 "$work/run.log" >&2
        die "$name run $r: dspark run failed"
    fi
    read -r user sys wall rss <"$work/time"
    read -r requests coord < <(worker_requests "$work/run.log")
    local data_get=-1 data_put=-1 server_coord=-1
    [ "$first" -ge 0 ] && read -r data_get data_put server_coord < <(rgw_classify "$first")
    echo "{\"case\": \"$name\", \"cpu\": $(cpu_sum "$user" "$sys"), \"wall\": $wall," \
        "\"rss_kb\": $rss, \"requests\": $requests, \"coord\": $coord," \
        "\"data_get\": $data_get, \"data_put\": $data_put, \"server_coord\": $server_coord}" >>"$rows"
    echo "$name run $r: cpu $user+$sys s, wall $wall s, rss $rss KiB," \
        "worker requests $requests (coordination $coord)"
    [ "$first" -ge 0 ] && echo "$name run $r: server requests: data GET $data_get," \
        "data PUT $data_put, coordination $server_coord"
    return 0
}

# ---- dspark, local directory store ----
for ((r = 1; r <= RUNS; r++)); do
    rm -rf "$work/out" "$work/store"
    run_case local "$work/store" "$work/in/*.jsonl.zst" "$work/out" "$r"
    ls "$work"/out/part-* | xargs zstdcat | check_output local "$r"
    echo "local run $r: output checked"
done
rm -rf "$work/out" "$work/store"

# ---- dspark, S3 ----
rgw_dir=${RGW_DIR:-}
if [ "${SORT_S3:-1}" = 0 ]; then
    echo "S3 case skipped: SORT_S3=0"
elif [ -z "${AWS_ENDPOINT_URL:-}" ] || [ -z "${DSPARK_TEST_S3_BUCKET:-}" ]; then
    rgw_dir=$work/rgw
    if RGW_DIR=$rgw_dir RGW_PORT=${RGW_PORT:-7480} RGW_MON_PORT=${RGW_MON_PORT:-3300} \
        scripts/rgw-up.sh >"$work/rgw-up.log" 2>&1; then
        started_rgw=$rgw_dir
        . "$rgw_dir/env"
    else
        echo "S3 case skipped: scripts/rgw-up.sh failed:" >&2
        tail -5 "$work/rgw-up.log" >&2
        rgw_dir=""
    fi
fi
if [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${DSPARK_TEST_S3_BUCKET:-}" ] && [ "${SORT_S3:-1}" != 0 ]; then
    prefix="s3://$DSPARK_TEST_S3_BUCKET/sort-bench-$(date -u +%Y%m%dT%H%M%S)-$$"
    for f in "$work"/in/*.zst; do
        "$BIN" cp "$f" "$prefix/in/$(basename "$f")" >/dev/null
    done
    for ((r = 1; r <= RUNS; r++)); do
        run_case s3 "$prefix/store-$r" "$prefix/in/*.jsonl.zst" "$prefix/out-$r" "$r"
        # The listing is in key order, which is shard order.
        "$BIN" ls "$prefix/out-$r/" | awk '{print $NF}' | grep '/part-' >"$work/parts" ||
            die "s3 run $r: no output parts under $prefix/out-$r/"
        while read -r key; do
            "$BIN" cat "s3://$DSPARK_TEST_S3_BUCKET/$key"
        done <"$work/parts" | zstdcat | check_output s3 "$r"
        echo "s3 run $r: output checked"
        # Free the server's memory for the next run.
        "$BIN" rm -r "$prefix/out-$r" "$prefix/store-$r" >/dev/null 2>&1 ||
            echo "s3 run $r: could not delete $prefix/out-$r and store-$r" >&2
    done
    "$BIN" rm -r "$prefix" >/dev/null 2>&1 || echo "could not delete $prefix" >&2
fi

# ---- summary ----
python3 - "$rows" "$RECORDS" "$in_zst" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
records, in_zst = int(sys.argv[2]), int(sys.argv[3])
mb = records * 100 / 1e6
gb = records * 100 / 1e9
print()
print(f"{records} records, {mb:.1f} MB of records, {in_zst / 1e6:.1f} MB zstd input; medians:")
print(f'{"case":<9} {"runs":>4} {"CPU s":>8} {"MB/s/core":>10} {"wall s":>8} {"RSS MiB":>8}')
for case in ("gnu_sort", "local", "s3"):
    rs = [r for r in rows if r["case"] == case]
    if not rs:
        continue
    cpu = statistics.median(r["cpu"] for r in rs)
    # Tiny runs can round to 0 CPU seconds.
    rate = f'{mb / cpu:>10.1f}' if cpu > 0 else f'{"n/a":>10}'
    print(f'{case:<9} {len(rs):>4} {cpu:>8.2f} {rate} '
          f'{statistics.median(r["wall"] for r in rs):>8.1f} '
          f'{statistics.median(r["rss_kb"] for r in rs) / 1024:>8.0f}')
for case in ("local", "s3"):
    rs = [r for r in rows if r["case"] == case]
    if not rs:
        continue
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"{case}: requests per GB of records (medians), counted by the workers: "
          f"{med('requests') / gb:.0f} through the job store, {med('coord') / gb:.0f} of them "
          f"coordination")
    if case == "s3" and med("data_get") >= 0:
        total = med("data_get") + med("data_put") + med("server_coord")
        print(f"s3: counted by the server: {total / gb:.0f} in all, data GET "
              f"{med('data_get') / gb:.0f}, data PUT {med('data_put') / gb:.0f}, "
              f"coordination {med('server_coord') / gb:.0f}")
print()
print("Workers count every request through the job store (coordination, shuffle and")
print("output writes) but not input reads, publish copies or the requests of the")
print("`dspark run` process itself (planning, progress polling). The server count is")
print("every request in the RGW access log during the run: data requests name an input")
print("object, a task file under attempts/ or an output part; the rest is coordination.")
print("GB = 10^9 bytes of records.")
PY
