#!/usr/bin/env bash
# Precision and recall of MinHash dedup against exact Jaccard similarity,
# on real near duplicates: the Linux kernel documentation of Debian's
# linux-doc-6.1 and linux-doc-6.12 packages (about 23,600 files, 220 MB).
#
#   bench/dedup_quality.sh [THRESHOLD]      (default 0.8)
#
# Builds $BUILD/libdspark.a (BUILD defaults to build) and
# bench/dedup_driver.c, builds or reuses bench/data/linux-doc.jsonl.zst
# with bench/corpus.sh, then runs `dedup_driver quality`. The driver finds
# every pair with exact word 5-gram Jaccard >= THRESHOLD by prefix filtering
# (no all-pairs comparison). A document is a true duplicate when an earlier
# document reaches the threshold with it. Precision = removed documents
# that are true duplicates / removed documents. Recall = true duplicates
# removed / true duplicates. Exits 1 when precision < 0.98 or recall < 0.95.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
threshold=${1:-0.8}
build=${BUILD:-build}
pkgs="libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash"
make -s BUILD="$build" "$build/libdspark.a"
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -pthread -I. $(pkg-config --cflags $pkgs) \
    bench/dedup_driver.c "$build/libdspark.a" $(pkg-config --libs $pkgs) -lcld2 -lstdc++ -lm \
    -o "$build/dedup_driver"
bench/corpus.sh linux-doc

result=$(DSPARK_LOG_LEVEL=warn "$build/dedup_driver" quality bench/data/linux-doc.jsonl.zst "$threshold")
echo "$result"
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
ok = r['precision'] >= 0.98 and r['recall'] >= 0.95
print(f"precision {r['precision']:.4f} (goal >= 0.98), recall {r['recall']:.4f} (goal >= 0.95): "
      f"{'met' if ok else 'NOT met'}")
sys.exit(0 if ok else 1)
PY
