#!/bin/bash
# CLD2 benchmark: CPU time of CLD2 alone on the exact texts that the langid
# step of examples/cc-clean.json passes it, with and without CLD2's UTF-8
# check.
#
#   bench/langid_bench.sh [DSPARK]
#
# 1. Runs the steps before langid (normalize, gopher_quality,
#    gopher_repetition) on the corpus of bench/corpus.sh with DSPARK
#    (default build/dspark).
# 2. Cuts each surviving text as langid does: at most 8,192 bytes (its
#    max_bytes default), ending at a character boundary.
# 3. Times bench/langid_driver.cc on those texts in its three modes and
#    prints a result digest per mode; "check" and "nocheck" must match.
# BENCH_CORPUS=FILE measures another zstd JSONL file.
set -euo pipefail
cd "$(dirname "$0")/.."
DSPARK=$(realpath "${1:-build/dspark}")
CORPUS=$(realpath "${BENCH_CORPUS:-bench/data/corpus.jsonl.zst}")
[ -x "$DSPARK" ] || { echo "langid_bench: $DSPARK not found; build it with make" >&2; exit 1; }
[ -s "$CORPUS" ] || { echo "langid_bench: $CORPUS is missing; run bench/corpus.sh" >&2; exit 1; }
export AWS_EC2_METADATA_DISABLED=true DSPARK_LOG_LEVEL=warn

WORK=$(mktemp -d /tmp/dspark-langid-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/job.json" <<JOB
{"name": "langid-inputs", "input": ["$CORPUS"], "format": "jsonl",
 "steps": [{"op": "normalize"}, {"op": "gopher_quality"}, {"op": "gopher_repetition"}],
 "output": {"uri": "$WORK/out", "format": "jsonl.zst"}}
JOB
"$DSPARK" run "$WORK/job.json" --store "$WORK/store" --workers 1 >/dev/null

for f in "$WORK"/out/part-*; do zstd -dcq "$f"; done | python3 -c '
import json, struct, sys
out = open(sys.argv[1], "wb")
for line in sys.stdin:
    text = json.loads(line)["text"].encode("utf-8", "surrogatepass")
    if len(text) > 8192:
        cut = 8192
        while cut > 0 and (text[cut] & 0xC0) == 0x80:
            cut -= 1
        text = text[:cut]
    out.write(struct.pack("<I", len(text)))
    out.write(text)
' "$WORK/texts.bin"

g++ -std=c++11 -O2 -o "$WORK/langid_driver" bench/langid_driver.cc -lcld2
for mode in check nocheck validity; do
    "$WORK/langid_driver" "$WORK/texts.bin" "$mode"
done
