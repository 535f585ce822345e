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
# Workers log every task at info level; the demo shows warnings and the
# summary only. DSPARK_LOG_LEVEL=info brings the task lines back.
DSPARK_LOG_LEVEL=${DSPARK_LOG_LEVEL:-warn} "$BIN" run examples/cc-clean.json --store .dspark
echo
echo "output: $OUT"
ls -l "$OUT"
