#!/bin/bash
# Run the main job, examples/cc-clean.json, on the bundled Common Crawl
# samples with the embedded local store (./.dspark) and print its summary.
# `make demo` builds DSpark and calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DSPARK_BIN:-build/dspark}
OUT=out/cc-clean

if [ ! -x "$BIN" ]; then
    echo "demo: $BIN not found; run 'make' first" >&2
    exit 1
fi

# Each run is a new job; clear the previous run's output so the job's
# output prefix is free.
rm -rf "$OUT"
"$BIN" run examples/cc-clean.json --store .dspark
echo
echo "output: $OUT"
ls -l "$OUT"
