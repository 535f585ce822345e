#!/bin/bash
# Data-path benchmark: throughput per core and peak memory of the operators.
#
#   bench/pipeline_bench.sh [--corpus-only] [--runs N]
#
# 1. Builds (bench/corpus.sh) or reuses a corpus of about 1 GiB of real
#    text as zstd JSONL from Debian documentation packages (apt-get
#    download + dpkg -x, nothing installed), one document per file, cached
#    in bench/data/.
# 2. Measures, on that corpus, N runs (default 3) of: `zstd -d` of the input
#    (the floor), the zstd work alone of a pass-through job
#    (bench/zstd_bound.c: decompress and compress at level 3, no parsing),
#    a pass-through job, each operator alone, and the whole quality
#    pipeline of examples/cc-clean.json.
# 3. Prints a table of medians: MB/s per core = uncompressed input bytes /
#    CPU seconds (user + system, child processes included) and peak RSS,
#    both from /usr/bin/time. --record appends the table to
#    bench/RESULTS.md.
#
# Each job is a spec run with `dspark run --workers 1` on a local store, so
# the numbers include planning, the job protocol and publishing. Where
# `dspark run` is not available (older trees), bench/pipeline_bench.c, a
# small driver that runs one map task with dsp_pipeline_run, stands in.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
CORPUS_ONLY=0
RECORD=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --corpus-only) CORPUS_ONLY=1; shift ;;
    --record) RECORD=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "pipeline_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# bench/corpus.sh builds and caches the ~1 GiB corpus (Debian documentation
# packages, one document per file); see its header for the packages.
# BENCH_CORPUS=FILE measures another zstd JSONL file instead.
CORPUS=${BENCH_CORPUS:-bench/data/corpus.jsonl.zst}
build_corpus() {
    if [ -n "${BENCH_CORPUS:-}" ]; then
        [ -s "$CORPUS" ] || { echo "bench: BENCH_CORPUS=$CORPUS is missing or empty" >&2; exit 1; }
        return
    fi
    bench/corpus.sh
    [ -s "$CORPUS" ] || { echo "bench: bench/corpus.sh did not produce $CORPUS" >&2; exit 1; }
}

build_corpus
[ "$CORPUS_ONLY" = 1 ] && exit 0

echo "bench: building build-bench (release flags)"
make -s BUILD=build-bench BUILD_ASAN=build-asan-bench -j"$(nproc)" build-bench/libdspark.a build-bench/dspark
PKG_FLAGS=$(pkg-config --cflags --libs libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash)
# shellcheck disable=SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -I. -o build-bench/pipeline_bench bench/pipeline_bench.c \
    build-bench/libdspark.a $PKG_FLAGS -lcld2 -lstdc++ -lpthread -lm
cc -std=c11 -D_GNU_SOURCE -O2 -o build-bench/zstd_bound bench/zstd_bound.c -lzstd

RAW_BYTES=$(zstd -dc "$CORPUS" | wc -c)
OUT=$(mktemp -d /tmp/dspark-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# Run a command RUNS times under /usr/bin/time and print
# "median_MB/s_per_core median_peak_RSS_MiB".
measure() {
    local speeds=() rss=()
    for _ in $(seq "$RUNS"); do
        if ! /usr/bin/time -f "%U %S %M" -o "$OUT/time" "$@" >"$OUT/stdout" 2>"$OUT/stderr"; then
            echo "bench: command failed: $*" >&2
            tail -5 "$OUT/stderr" >&2
            return 1
        fi
        read -r user sys rss_kib <"$OUT/time"
        speeds+=("$(awk -v b="$RAW_BYTES" -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", b / 1e6 / (u + s) }')")
        rss+=("$(awk -v r="$rss_kib" 'BEGIN { printf "%.1f", r / 1024 }')")
    done
    local mid=$(((RUNS + 1) / 2))
    echo "$(printf '%s\n' "${speeds[@]}" | sort -n | sed -n "${mid}p") $(printf '%s\n' "${rss[@]}" | sort -n | sed -n "${mid}p")"
}

if build-bench/dspark run --help >/dev/null 2>&1; then
    RUNNER="dspark run"
else
    RUNNER="pipeline_bench driver"
fi
ABS_CORPUS=$(realpath "$CORPUS")

job() {
    # $1 = steps as a JSON array
    if [ "$RUNNER" = "dspark run" ]; then
        cat >"$OUT/job.json" <<JOB
{"name": "bench", "input": ["$ABS_CORPUS"], "format": "jsonl", "steps": $1,
 "output": {"uri": "$OUT/out", "format": "jsonl.zst"}}
JOB
        measure sh -c "rm -rf '$OUT/out' '$OUT/store' && exec build-bench/dspark run '$OUT/job.json' --store '$OUT/store' --workers 1"
    else
        measure sh -c "rm -rf '$OUT/store' && mkdir '$OUT/store' && exec build-bench/pipeline_bench --steps '$1' --input '$CORPUS' --output '$OUT/store'"
    fi
}

# The steps of examples/cc-clean.json in its order, without stats.
QUALITY='[{"op":"normalize"},{"op":"gopher_quality"},{"op":"gopher_repetition"},{"op":"langid"},{"op":"c4_quality"},{"op":"fineweb_quality"},{"op":"pii_redact"}]'
RESULTS=$OUT/results
: >"$RESULTS"
row() {
    # $1 = label, rest = "MB/s RSS"
    printf '| %s | %s | %s |\n' "$1" "$2" "$3" | tee -a "$RESULTS"
}

echo
echo "corpus: $CORPUS, $RAW_BYTES bytes uncompressed, median of $RUNS runs, jobs through $RUNNER"
echo "| job | MB/s per core | peak RSS MiB |"
echo "|---|---:|---:|"
read -r speed rss < <(measure zstd -dcq "$CORPUS" -o /dev/null)
row "zstd -d of the input (floor)" "$speed" "$rss"
read -r speed rss < <(measure build-bench/zstd_bound "$CORPUS" 3)
row "zstd decompress + level-3 compress (pass-through bound)" "$speed" "$rss"
read -r speed rss < <(job '[]')
row "pass-through (read, write zstd)" "$speed" "$rss"
for op in normalize langid gopher_quality gopher_repetition c4_quality fineweb_quality pii_redact length stats sample; do
    read -r speed rss < <(job "[{\"op\":\"$op\"}]")
    row "$op alone" "$speed" "$rss"
done
read -r speed rss < <(job "$QUALITY")
row "quality pipeline (cc-clean steps)" "$speed" "$rss"

if [ "$RECORD" = 1 ]; then
    {
        echo
        echo "## Data path ($(date -u +%Y-%m-%d))"
        echo
        echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)."
        echo "Corpus: $RAW_BYTES bytes of JSONL from Debian documentation packages, zstd -3."
        echo "Jobs through $RUNNER; median of $RUNS runs; MB/s per core = uncompressed input bytes / CPU seconds (user + system, workers included)."
        echo
        echo "| job | MB/s per core | peak RSS MiB |"
        echo "|---|---:|---:|"
        cat "$RESULTS"
    } >>bench/RESULTS.md
    echo "recorded in bench/RESULTS.md"
fi
