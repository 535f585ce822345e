#!/usr/bin/env bash
# MinHash connected components at several memory budgets, on a generated
# graph (bench/components_driver.c: one giant component over a tenth of
# the nodes, the rest in clusters of 2 to 9).
#
#   bench/components_bench.sh [--runs N] [--nodes N] [--budgets "MIB MIB ..."]
#
# Builds $BUILD/libdspark.a (BUILD defaults to build) and the driver,
# generates the edge files once in a temporary local store, then runs the
# components stage N times (default 3) per budget (default 256 64 16 MiB)
# as a child process. Prints the medians of CPU seconds (user + system)
# and peak RSS from wait4(), the external rounds, and checks that every
# budget writes the same drop file.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=3
nodes=2000000
budgets="256 64 16"
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --budgets) budgets=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--nodes N] [--budgets \"MIB ...\"]" >&2; exit 2 ;;
    esac
done

build=${BUILD:-build}
pkgs="libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash"
make -s BUILD="$build" "$build/libdspark.a"
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -pthread -I. $(pkg-config --cflags $pkgs) \
    bench/components_driver.c "$build/libdspark.a" $(pkg-config --libs $pkgs) -lcld2 -lstdc++ -lm \
    -o "$build/components_driver"

out=$(mktemp -d "${TMPDIR:-/tmp}/components-bench-XXXXXX")
trap 'rm -rf "$out"' EXIT
"$build/components_driver" gen "$out" "$nodes" 42

python3 - "$runs" "$out" "$build/components_driver" $budgets <<'PY'
import hashlib, json, os, statistics, subprocess, sys

runs, store, driver = int(sys.argv[1]), sys.argv[2], sys.argv[3]
env = dict(os.environ, DSPARK_LOG_LEVEL="warn")
digests = set()
for mib in sys.argv[4:]:
    cpu, rss, last = [], [], None
    for r in range(runs):
        name = "b%s-r%d" % (mib, r)
        p = subprocess.Popen([driver, "run", store, str(int(mib) << 20), name],
                             stdout=subprocess.PIPE, env=env)
        data = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        if status != 0:
            sys.exit("components_bench: run at %s MiB failed" % mib)
        cpu.append(ru.ru_utime + ru.ru_stime)
        rss.append(ru.ru_maxrss / 1024)
        last = json.loads(data)
        with open(os.path.join(store, name, "drops.bin"), "rb") as f:
            digests.add(hashlib.sha256(f.read()).hexdigest())
    print("budget %4s MiB  rounds %2d  cpu %.2f s  peak RSS %.0f MiB  edges %d  dropped %d"
          % (mib, last["rounds"], statistics.median(cpu), statistics.median(rss),
             last["edges"], last["dropped"]))
if len(digests) != 1:
    sys.exit("components_bench: drop files differ between budgets")
print("drop files identical across budgets")
PY
