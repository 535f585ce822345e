#!/bin/bash
# Planner benchmark: plan a job over N small input objects (default
# 100,000, 0 to 9 bytes each, in 100 directories) with `dspark explain
# --plan-out` and report wall time, peak RSS and the size of plan.json.
# Goal: under 10 s and under 200 MiB for 100,000 objects.
#
# Usage: bench/plan_bench.sh [BUILD_DIR] [N]
#   BUILD_DIR  build directory holding dspark (default build)
#   N          number of input objects (default 100000)
# Environment: PLAN_BENCH_S3=1 with AWS_ENDPOINT_URL, the AWS_* keys and
#   DSPARK_TEST_S3_BUCKET set also uploads the objects with curl and plans
#   over s3:// (the upload is N PUTs, so it takes minutes for 100,000).
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-100000}
DSPARK="$PWD/$BUILD/dspark"
export AWS_EC2_METADATA_DISABLED=true
[ -x "$DSPARK" ] || { echo "plan_bench: $DSPARK not found; run make BUILD=$BUILD" >&2; exit 1; }

work=$(mktemp -d /tmp/dspark-plan-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "plan_bench: creating $N objects under $work/data"
python3 - "$work/data" "$N" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.makedirs(os.path.join(root, "d%02d" % d), exist_ok=True)
for i in range(n):
    with open(os.path.join(root, "d%02d" % (i % 100), "part-%06d.jsonl" % i), "w") as f:
        f.write("{}\n"[: i % 4] + "x" * (i % 7))
EOF

run_plan() { # $1 = input glob, $2 = label
    cat >"$work/job.json" <<EOF
{"name": "plan-bench", "input": "$1", "steps": [{"op": "stats"}], "output": {"uri": "$work/out"}}
EOF
    /usr/bin/time -f "%e %M" -o "$work/time" \
        "$DSPARK" explain "$work/job.json" --json --plan-out "$work/plan.json" >"$work/explain.json"
    read -r secs kib <"$work/time"
    python3 - "$work/explain.json" "$work/plan.json" "$secs" "$kib" "$2" <<'EOF'
import json, os, sys
out = json.load(open(sys.argv[1]))
plan_bytes = os.path.getsize(sys.argv[2])
secs, kib, label = float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print("plan_bench %s: objects=%d tasks=%d wall=%.2fs peak_rss=%.1fMiB plan_json=%.1fMiB"
      % (label, out["inputs"]["objects"], out["total_tasks"], secs, kib / 1024.0,
         plan_bytes / 1048576.0))
ok = secs < 10 and kib / 1024.0 < 200
print("plan_bench %s: goal (under 10 s and 200 MiB) %s" % (label, "met" if ok else "NOT met"))
EOF
}

run_plan "$work/data/**/*.jsonl" "local"

if [ "${PLAN_BENCH_S3:-0}" = 1 ] && [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${DSPARK_TEST_S3_BUCKET:-}" ]; then
    # Upload with curl's SigV4 signing: one curl process, 32 transfers in
    # parallel, driven by a config file (mode 600) so the credentials never
    # appear in a command line. RGW rejects curl 7.88's signature unless
    # the payload hash header is given.
    prefix="plan-bench-$$"
    umask 077
    {
        printf 'user = "%s:%s"\naws-sigv4 = "aws:amz:%s:s3"\n' \
            "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "${AWS_REGION:-us-east-1}"
        printf 'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\nshow-error\nfail\n'
        (cd "$work/data" && find . -type f -printf '%P\n') | while read -r key; do
            printf 'upload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' \
                "$work/data/$key" "$AWS_ENDPOINT_URL/$DSPARK_TEST_S3_BUCKET/$prefix/data/$key"
        done
    } >"$work/curl.conf"
    echo "plan_bench: uploading $N objects to s3://$DSPARK_TEST_S3_BUCKET/$prefix"
    start=$(date +%s)
    curl --no-progress-meter -K "$work/curl.conf" --parallel --parallel-max 32
    echo "plan_bench: upload took $(($(date +%s) - start)) s"
    run_plan "s3://$DSPARK_TEST_S3_BUCKET/$prefix/data/**/*.jsonl" "s3"
    "$DSPARK" rm -r "s3://$DSPARK_TEST_S3_BUCKET/$prefix/" >/dev/null ||
        echo "plan_bench: could not delete s3://$DSPARK_TEST_S3_BUCKET/$prefix/"
fi
