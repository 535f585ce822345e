#!/bin/bash
# Dotted field paths in the wide operators, on the Common Crawl sample,
# whose documents carry a nested "metadata" object (url, content_type,
# uncompressed_offset). dedup_exact on "metadata.content_type" (the same
# value in all 697 documents) keeps only the first document, and on
# "metadata.url" without normalisation (all distinct) keeps every one. repartition by field
# "metadata.content_type" puts every document in one shard, and by sort on
# "metadata.uncompressed_offset" writes all documents in numeric order.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CC="$ROOT/tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
mkdir -p "$WORK/in"
cp "$CC" "$WORK/in/"

# nested_spec FILE OUTPUT STEP_JSON
nested_spec() {
    cat >"$1" <<JSON
{
  "name": "nested-$(basename "$1" .json)",
  "input": ["$WORK/in/*.jsonl.gz"],
  "steps": [$3],
  "output": {"uri": "$2", "format": "jsonl.zst"},
  "options": {"target_task_bytes": 400000}
}
JSON
}

run_job() {
    "$BIN" run "$1" --store "$STORE" --workers 2 >"$2" 2>&1 || { tail -20 "$2"; die "run of $1 failed"; }
}

# ids OUTPUT_DIR: the ids of the published documents, shard by shard.
ids() {
    local part
    for part in $(find "$1" -name 'part-*' | sort); do
        zstdcat "$part" | jq -r .id
    done
}

nested_spec "$WORK/same.json" "$WORK/out-same" '{"op": "dedup_exact", "field": "metadata.content_type"}'
run_job "$WORK/same.json" "$WORK/same.log"
[ "$(ids "$WORK/out-same")" = "$(zcat "$CC" | head -1 | jq -r .id)" ] || {
    ids "$WORK/out-same" | head -3; die "dedup_exact on metadata.content_type did not keep only the first document"; }
jq -e '.operators[0].removed.duplicate == 696' "$WORK/out-same/_MANIFEST.json" >/dev/null ||
    { jq .operators "$WORK/out-same/_MANIFEST.json"; die "dedup_exact counted the wrong duplicates"; }

nested_spec "$WORK/url.json" "$WORK/out-url" '{"op": "dedup_exact", "field": "metadata.url", "normalize": false}'
run_job "$WORK/url.json" "$WORK/url.log"
[ "$(ids "$WORK/out-url" | wc -l)" = 697 ] || die "dedup_exact on metadata.url removed documents"
grep -q "dedup_field_missing" "$WORK/url.log" && die "metadata.url was reported missing"

nested_spec "$WORK/byfield.json" "$WORK/out-byfield" \
    '{"op": "repartition", "by": "field", "field": "metadata.content_type", "shards": 4}'
run_job "$WORK/byfield.json" "$WORK/byfield.log"
nonempty=0
for part in $(find "$WORK/out-byfield" -name 'part-*'); do
    [ "$(zstdcat "$part" | wc -l)" -gt 0 ] && nonempty=$((nonempty + 1))
done
[ "$nonempty" = 1 ] || die "repartition by metadata.content_type filled $nonempty shards, expected 1"
[ "$(ids "$WORK/out-byfield" | wc -l)" = 697 ] || die "repartition by field lost documents"

nested_spec "$WORK/sort.json" "$WORK/out-sort" \
    '{"op": "repartition", "by": "sort", "field": "metadata.uncompressed_offset", "shards": 3}'
run_job "$WORK/sort.json" "$WORK/sort.log"
got=$(for part in $(find "$WORK/out-sort" -name 'part-*' | sort); do
    zstdcat "$part" | jq -r .metadata.uncompressed_offset
done)
want=$(zcat "$CC" | jq -r .metadata.uncompressed_offset | sort -n)
[ "$got" = "$want" ] || die "repartition by sort on metadata.uncompressed_offset is not in numeric order"
[ "$(find "$WORK/out-sort" -name 'part-*' | wc -l)" = 3 ] || die "sort did not write 3 shards"
echo "ok"
