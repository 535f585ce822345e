#!/usr/bin/env bash
# Exact and MinHash dedup end to end (zstd JSONL in, zstd JSONL out), with
# DuckDB doing exact dedup on the same input in the same run as a baseline.
#
#   bench/dedup_bench.sh [--runs N] [--corpus FILE.jsonl.zst]
#
# 1. Builds $BUILD/libdspark.a (BUILD defaults to build) and
#    bench/dedup_driver.c against it, builds or reuses the ~1 GiB corpus
#    with bench/corpus.sh, and installs @duckdb/node-api into
#    bench/node_modules with npm when it is missing.
# 2. Runs N times (default 3) each of:
#      exact       dedup_driver exact (normalised text, xxh3-128 + length)
#      exact_raw   dedup_driver exact on the raw text bytes, as DuckDB does
#      duckdb      SELECT DISTINCT ON (hash(text)) * ... with SET threads = 1
#      minhash     dedup_driver minhash (5-grams, 14 x 8 bands, one
#                  permutation hashing, the default scheme)
#      minhash_k   the same with the k_permutations scheme
#      job_exact_raw, job_minhash, job_minhash_k
#                  the same dedups as jobs: `dspark run --workers 1` of a
#                  spec with one dedup step, on a local store, with
#                  planning, the commit protocol and publishing
#    Every command runs as a child process and its CPU time (user + system)
#    and peak RSS come from wait4(), so all four are measured the same way.
# 3. Prints the medians: MB/s per core = uncompressed input bytes / CPU
#    seconds, peak RSS, documents out, and the ratio to DuckDB; the full
#    numbers go to bench/results/dedup-<UTC time>.json.
#
# The driver runs all stages in one process with 4 reduce partitions, so
# its CPU seconds are the whole cost of the dedup algorithms on one core.
# Its filter pass re-reads the input. The job_* specs have no step before
# the dedup step and read JSONL, so their dedup_filter tasks re-read the
# input too. The job_* rows add planning, shuffles through a store, commits
# and publishing, as users run them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=3
corpus=bench/data/corpus.jsonl.zst
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--corpus FILE.jsonl.zst]" >&2; exit 2 ;;
    esac
done

build=${BUILD:-build}
pkgs="libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash"
make -s BUILD="$build" "$build/libdspark.a" "$build/dspark"
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -pthread -I. $(pkg-config --cflags $pkgs) \
    bench/dedup_driver.c "$build/libdspark.a" $(pkg-config --libs $pkgs) -lcld2 -lstdc++ -lm \
    -o "$build/dedup_driver"

if [ "$corpus" = bench/data/corpus.jsonl.zst ]; then
    bench/corpus.sh
fi
if [ ! -d bench/node_modules/@duckdb/node-api ]; then
    (cd bench && npm install --no-audit --no-fund >/dev/null)
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/dedup-bench-XXXXXX")
trap 'rm -rf "$out"' EXIT
mkdir -p bench/results

python3 - "$runs" "$(realpath "$corpus")" "$out" "$build/dedup_driver" "$build/dspark" <<'EOF'
import glob, json, os, shutil, statistics, subprocess, sys, time

runs, corpus, out, driver, dspark = (int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4],
                                     sys.argv[5])

def measure(cmd, env=None):
    """Run cmd as a child; return (stdout, cpu seconds, peak RSS MiB, wall seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    data = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f'dedup_bench: {" ".join(cmd)} failed with status {status}')
    return data.decode(), ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, time.monotonic() - t0

def count_lines(path):
    # Stream the count: Linux keeps a process's peak RSS across fork and
    # exec, so a large parent would inflate the next child's measured peak.
    z = subprocess.Popen(['zstd', '-dc', path], stdout=subprocess.PIPE)
    lines = 0
    while chunk := z.stdout.read(1 << 20):
        lines += chunk.count(b'\n')
    if z.wait() != 0:
        sys.exit(f'dedup_bench: zstd -dc {path} failed')
    return lines

def job(step):
    """A `dspark run` of one dedup step; its output directory is o + '.d'."""
    def make(o):
        spec = o + '.json'
        with open(spec, 'w') as f:
            json.dump({'name': 'dedup-bench', 'input': [corpus], 'steps': [step],
                       'output': {'uri': o + '.d'}}, f)
        return ([dspark, 'run', spec, '--store', o + '.store', '--workers', '1'],
                dict(os.environ, DSPARK_LOG_LEVEL='warn'))
    return make

raw_env = dict(os.environ, DEDUP_EXACT_RAW='1')
k_permutations_env = dict(os.environ, DEDUP_SCHEME='k_permutations')
cases = {
    'exact': lambda o: ([driver, 'exact', corpus, o], None),
    'exact_raw': lambda o: ([driver, 'exact', corpus, o], raw_env),
    'duckdb': lambda o: (['node', 'bench/dedup_duckdb.mjs', corpus, o], None),
    'minhash': lambda o: ([driver, 'minhash', corpus, o], None),
    'minhash_k': lambda o: ([driver, 'minhash', corpus, o], k_permutations_env),
    'job_exact_raw': job({'op': 'dedup_exact', 'normalize': False}),
    'job_minhash': job({'op': 'dedup_minhash'}),
    'job_minhash_k': job({'op': 'dedup_minhash', 'scheme': 'k_permutations'}),
}
results = {name: [] for name in cases}
input_bytes = None
for r in range(runs):
    for name, make in cases.items():
        path = os.path.join(out, f'{name}-{r}.jsonl.zst')
        cmd, env = make(path)
        stdout, cpu, rss, wall = measure(cmd, env)
        if name.startswith('job_'):
            docs = sum(count_lines(p) for p in glob.glob(path + '.d/part-*'))
            shutil.rmtree(path + '.d')
            shutil.rmtree(path + '.store')
            os.unlink(path + '.json')
            stdout = ''
        else:
            docs = count_lines(path)
            os.unlink(path)
        row = {'cpu_s': cpu, 'max_rss_mib': rss, 'wall_s': wall, 'docs_out': docs}
        if stdout.strip().startswith('{'):
            info = json.loads(stdout.strip().splitlines()[-1])
            input_bytes = info['input_bytes']
            row['phases_cpu_s'] = [info['map_cpu_s'], info['reduce_cpu_s'], info['filter_cpu_s']]
        results[name].append(row)
        print(f'run {r + 1}/{runs} {name}: {cpu:.2f} CPU s, {rss:.0f} MiB, '
              f'{row["docs_out"]} docs out', file=sys.stderr)

summary = {'corpus': corpus, 'input_bytes': input_bytes, 'runs': runs, 'cases': {}}
duck = statistics.median(x['cpu_s'] for x in results['duckdb'])
print(f'input: {corpus}, {input_bytes / 1e6:.0f} MB uncompressed, median of {runs} runs')
print(f'{"case":<14} {"CPU s":>8} {"MB/s/core":>10} {"vs DuckDB":>10} {"RSS MiB":>8} {"docs out":>9}')
for name, rows in results.items():
    cpu = statistics.median(x['cpu_s'] for x in rows)
    rss = statistics.median(x['max_rss_mib'] for x in rows)
    mbps = input_bytes / 1e6 / cpu
    summary['cases'][name] = {'cpu_s': cpu, 'mb_per_cpu_s': mbps, 'max_rss_mib': rss,
                              'speed_vs_duckdb': duck / cpu, 'docs_out': rows[0]['docs_out'],
                              'runs': rows}
    print(f'{name:<14} {cpu:>8.2f} {mbps:>10.1f} {duck / cpu:>9.2f}x {rss:>8.0f} '
          f'{rows[0]["docs_out"]:>9}')
stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
with open(f'bench/results/dedup-{stamp}.json', 'w') as f:
    json.dump(summary, f, indent=1)
print(f'details: bench/results/dedup-{stamp}.json')
EOF
