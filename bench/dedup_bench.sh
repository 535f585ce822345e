#!/usr/bin/env bash
# Exact and MinHash dedup end to end (zstd JSONL in, zstd JSONL out), with
# DuckDB doing exact dedup on the same input in the same run as a baseline.
#
#   bench/dedup_bench.sh [--runs N] [--corpus FILE.jsonl.zst] [--cases A,B,...]
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
#      job_exact_raw_cache_off, job_minhash_cache_off
#                  the same jobs with DSPARK_INPUT_CACHE=off, so that the
#                  dedup_filter task decompresses the input again
#    Every command runs as a child process and its CPU time (user + system)
#    and peak RSS come from wait4(), so all four are measured the same way.
#    --cases runs only the named cases, and duckdb, the baseline, always.
# 3. Prints the medians: MB/s per core = uncompressed input bytes / CPU
#    seconds, peak RSS, documents out, and the ratio to DuckDB; the full
#    numbers go to bench/results/dedup-<UTC time>.json.
# 4. Prints the zstd floor of each job_* case: the CPU seconds that
#    libzstd alone needs for the job's codec work, measured with
#    bench/zstd_bound.c in the same run. That is one decompression of the
#    input, two with the cache off (the map and the dedup_filter tasks
#    each read it), plus one compression of the job's output at the
#    writer's default level 3. A job that reads and writes these files
#    that way cannot cost less, so "job / floor" shows how much of a job's
#    time is DSpark's own work.
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
only=
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --cases) only=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--corpus FILE.jsonl.zst] [--cases A,B,...]" >&2; exit 2 ;;
    esac
done

build=${BUILD:-build}
pkgs="libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash"
make -s BUILD="$build" "$build/libdspark.a" "$build/dspark"
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -pthread -I. $(pkg-config --cflags $pkgs) \
    bench/dedup_driver.c "$build/libdspark.a" $(pkg-config --libs $pkgs) -lcld2 -lstdc++ -lm \
    -o "$build/dedup_driver"
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 bench/zstd_bound.c -lzstd \
    -o "$build/zstd_bound"

if [ "$corpus" = bench/data/corpus.jsonl.zst ]; then
    bench/corpus.sh
fi
if [ ! -d bench/node_modules/@duckdb/node-api ]; then
    (cd bench && npm install --no-audit --no-fund >/dev/null)
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/dedup-bench-XXXXXX")
trap 'rm -rf "$out"' EXIT
mkdir -p bench/results

python3 - "$runs" "$(realpath "$corpus")" "$out" "$build/dedup_driver" "$build/dspark" \
    "$build/zstd_bound" "$only" <<'EOF'
import glob, json, os, shutil, statistics, subprocess, sys, time

runs, corpus, out, driver, dspark, zstd_bound = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                                 sys.argv[4], sys.argv[5], sys.argv[6])
only = [name for name in sys.argv[7].split(',') if name]

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

def zstd_bound_run(*args):
    """The numbers that bench/zstd_bound.c prints for one mode, as a dict."""
    line = subprocess.run([zstd_bound, *args], stdout=subprocess.PIPE, check=True,
                          text=True).stdout
    return {k: float(v) for k, v in (kv.split('=') for kv in line.split())}

def compress_cost(parts, plain):
    """CPU seconds to compress the job's output parts again at level 3."""
    with open(plain, 'wb') as f:
        for p in sorted(parts):
            subprocess.run(['zstd', '-dcq', p], stdout=f, check=True)
    try:
        return zstd_bound_run('-c', plain, '3')['cpu_seconds']
    finally:
        os.unlink(plain)

def job(step, cache=True):
    """A `dspark run` of one dedup step; its output directory is o + '.d'."""
    def make(o):
        spec = o + '.json'
        with open(spec, 'w') as f:
            json.dump({'name': 'dedup-bench', 'input': [corpus], 'steps': [step],
                       'output': {'uri': o + '.d'}}, f)
        env = dict(os.environ, DSPARK_LOG_LEVEL='warn')
        if not cache:
            env['DSPARK_INPUT_CACHE'] = 'off'
        return ([dspark, 'run', spec, '--store', o + '.store', '--workers', '1'], env)
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
    'job_exact_raw_cache_off': job({'op': 'dedup_exact', 'normalize': False}, cache=False),
    'job_minhash_cache_off': job({'op': 'dedup_minhash'}, cache=False),
}
unknown = [name for name in only if name not in cases]
if unknown:
    sys.exit(f'dedup_bench: unknown case {unknown[0]!r}; cases: {", ".join(cases)}')
if only:
    cases = {name: make for name, make in cases.items() if name in only or name == 'duckdb'}
results = {name: [] for name in cases}
floors = {name: [] for name in cases if name.startswith('job_')}
decompress_runs = []
input_bytes = None
for r in range(runs):
    decompressed = zstd_bound_run('-d', corpus)
    decompress_cpu = decompressed['cpu_seconds']
    decompress_runs.append(decompress_cpu)
    input_bytes = int(decompressed['raw_bytes'])
    for name, make in cases.items():
        path = os.path.join(out, f'{name}-{r}.jsonl.zst')
        cmd, env = make(path)
        stdout, cpu, rss, wall = measure(cmd, env)
        if name.startswith('job_'):
            parts = glob.glob(path + '.d/part-*')
            docs = sum(count_lines(p) for p in parts)
            reads = 2 if name.endswith('_cache_off') else 1
            floors[name].append(reads * decompress_cpu + compress_cost(parts, path + '.plain'))
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
            if info['input_bytes'] != input_bytes:
                sys.exit(f'dedup_bench: {name} read {info["input_bytes"]} bytes, '
                         f'zstd_bound {input_bytes}')
            row['phases_cpu_s'] = [info['map_cpu_s'], info['reduce_cpu_s'], info['filter_cpu_s']]
        results[name].append(row)
        print(f'run {r + 1}/{runs} {name}: {cpu:.2f} CPU s, {rss:.0f} MiB, '
              f'{row["docs_out"]} docs out', file=sys.stderr)

summary = {'corpus': corpus, 'input_bytes': input_bytes, 'runs': runs, 'cases': {}}
duck = statistics.median(x['cpu_s'] for x in results['duckdb'])
print(f'input: {corpus}, {input_bytes / 1e6:.0f} MB uncompressed, median of {runs} runs')
print(f'{"case":<24} {"CPU s":>8} {"MB/s/core":>10} {"vs DuckDB":>10} {"RSS MiB":>8} {"docs out":>9}')
for name, rows in results.items():
    cpu = statistics.median(x['cpu_s'] for x in rows)
    rss = statistics.median(x['max_rss_mib'] for x in rows)
    mbps = input_bytes / 1e6 / cpu
    summary['cases'][name] = {'cpu_s': cpu, 'mb_per_cpu_s': mbps, 'max_rss_mib': rss,
                              'speed_vs_duckdb': duck / cpu, 'docs_out': rows[0]['docs_out'],
                              'runs': rows}
    print(f'{name:<24} {cpu:>8.2f} {mbps:>10.1f} {duck / cpu:>9.2f}x {rss:>8.0f} '
          f'{rows[0]["docs_out"]:>9}')
decompress = statistics.median(decompress_runs)
summary['zstd_decompress_cpu_s'] = decompress_runs
print(f'{"zstd floor":<24} {"floor s":>8} {"MB/s/core":>10} {"job/floor":>10}'
      f'   (one decompression of the input: {decompress:.2f} s)')
for name, values in floors.items():
    floor = statistics.median(values)
    cpu = summary['cases'][name]['cpu_s']
    summary['cases'][name]['zstd_floor_cpu_s'] = floor
    print(f'{name:<24} {floor:>8.2f} {input_bytes / 1e6 / floor:>10.1f} {cpu / floor:>9.2f}x')
stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
with open(f'bench/results/dedup-{stamp}.json', 'w') as f:
    json.dump(summary, f, indent=1)
print(f'details: bench/results/dedup-{stamp}.json')
EOF
