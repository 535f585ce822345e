#!/bin/bash
# Compare two dspark builds on the data-path jobs of bench/pipeline_bench.sh:
# pass-through, each quality operator alone and the quality pipeline (the
# steps of examples/cc-clean.json without stats).
#
#   bench/pipeline_compare.sh BEFORE_DSPARK AFTER_DSPARK [--runs N] [--jobs "a b"]
#
# The two builds run alternately, N times each (default 3), so that both
# see the same load on a shared machine. For every job it prints the
# median CPU seconds (user + system of `dspark run --workers 1` and its
# worker, from /usr/bin/time), MB/s per core = uncompressed input bytes /
# CPU seconds, the after/before speed ratio, the spread of the runs
# ((slowest - fastest) / median, the larger of the two builds) and the
# peak RSS. It also checks that both builds wrote the same decompressed
# output and the same per-operator counters and totals in _MANIFEST.json,
# and exits 1 if not.
#
# --jobs selects jobs by name: passthrough, normalize, gopher_quality,
# gopher_repetition, langid, c4_quality, fineweb_quality, pii_redact and
# quality. BENCH_CORPUS=FILE measures another zstd JSONL file than
# bench/data/corpus.jsonl.zst (built by bench/corpus.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,21p' "$0"; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
shift 2
RUNS=3
JOBS="passthrough normalize gopher_quality gopher_repetition langid c4_quality fineweb_quality pii_redact quality"
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "pipeline_compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for bin in "$BEFORE" "$AFTER"; do
    [ -x "$bin" ] || { echo "pipeline_compare: $bin is not an executable file" >&2; exit 2; }
done
CORPUS=$(realpath "${BENCH_CORPUS:-bench/data/corpus.jsonl.zst}")
[ -s "$CORPUS" ] || { echo "pipeline_compare: $CORPUS is missing; run bench/corpus.sh" >&2; exit 1; }
export AWS_EC2_METADATA_DISABLED=true DSPARK_LOG_LEVEL=warn

RAW_BYTES=$(zstd -dc "$CORPUS" | wc -c)
OUT=$(mktemp -d /tmp/dspark-compare.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

steps_of() {
    case "$1" in
    passthrough) echo '[]' ;;
    quality) echo '[{"op":"normalize"},{"op":"gopher_quality"},{"op":"gopher_repetition"},{"op":"langid"},{"op":"c4_quality"},{"op":"fineweb_quality"},{"op":"pii_redact"}]' ;;
    *) echo "[{\"op\":\"$1\"}]" ;;
    esac
}

# run_job BIN STEPS DIR: run one job, leave the output in DIR/out and print
# "cpu_seconds peak_rss_kib".
run_job() {
    local bin=$1 steps=$2 dir=$3
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/job.json" <<JOB
{"name": "bench", "input": ["$CORPUS"], "format": "jsonl", "steps": $steps,
 "output": {"uri": "$dir/out", "format": "jsonl.zst"}}
JOB
    if ! /usr/bin/time -f "%U %S %M" -o "$dir/time" "$bin" run "$dir/job.json" \
        --store "$dir/store" --workers 1 >"$dir/stdout" 2>"$dir/stderr"; then
        echo "pipeline_compare: $bin failed on $steps" >&2
        tail -5 "$dir/stderr" >&2
        return 1
    fi
    awk '{ printf "%.2f %d\n", $1 + $2, $3 }' "$dir/time"
}

# Digest of a job's decompressed output and of its manifest's counters.
digest() {
    local dir=$1
    {
        for f in $(ls "$dir"/out/part-* | sort); do zstd -dcq "$f"; done | md5sum
        python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(json.dumps([m["operators"], m["totals"]], sort_keys=True))' "$dir/out/_MANIFEST.json"
    } | md5sum | cut -c1-32
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# (slowest - fastest) / median of a list of CPU seconds, in percent.
spread() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", 100 * (v[NR] - v[1]) / v[int((NR + 1) / 2)] }'; }

echo "corpus: $CORPUS, $RAW_BYTES bytes uncompressed; $RUNS runs of each build, alternating"
echo "before: $BEFORE"
echo "after:  $AFTER"
echo "start: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| job | before CPU s | after CPU s | before MB/s per core | after MB/s per core | after / before | spread of runs | before / after peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
status=0
for job in $JOBS; do
    steps=$(steps_of "$job")
    cpu_before="" cpu_after="" rss_before="" rss_after=""
    for _ in $(seq "$RUNS"); do
        read -r cpu rss < <(run_job "$BEFORE" "$steps" "$OUT/before")
        cpu_before="$cpu_before $cpu" rss_before="$rss_before $rss"
        read -r cpu rss < <(run_job "$AFTER" "$steps" "$OUT/after")
        cpu_after="$cpu_after $cpu" rss_after="$rss_after $rss"
    done
    if [ "$(digest "$OUT/before")" != "$(digest "$OUT/after")" ]; then
        echo "pipeline_compare: $job: the builds wrote different output or counters" >&2
        status=1
    fi
    b=$(echo "$cpu_before" | median)
    a=$(echo "$cpu_after" | median)
    sb=$(echo "$cpu_before" | spread)
    sa=$(echo "$cpu_after" | spread)
    awk -v job="$job" -v b="$b" -v a="$a" -v raw="$RAW_BYTES" -v sb="$sb" -v sa="$sa" \
        -v rb="$(echo "$rss_before" | median)" -v ra="$(echo "$rss_after" | median)" 'BEGIN {
        printf "| %s | %.2f | %.2f | %.1f | %.1f | %.2f | %d%% | %.1f / %.1f |\n",
            job, b, a, raw / 1e6 / b, raw / 1e6 / a, b / a, (sb > sa ? sb : sa), rb / 1024, ra / 1024 }'
done
echo
echo "end: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
