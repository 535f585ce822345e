#!/bin/bash
# Runtime benchmark: a job of about 1,000 tiny tasks run by 4 local worker
# processes against an S3 server, reporting store requests per task (from
# the counters that every commit carries) and tasks per second.
#
# Usage: bench/runtime_bench.sh [TASKS] [WORKERS]
# Needs AWS_ENDPOINT_URL, credentials and DSPARK_TEST_S3_BUCKET, e.g. from
#   RGW_DIR=/tmp/rgw-bench RGW_PORT=18100 RGW_MON_PORT=14100 scripts/rgw-up.sh
#   . /tmp/rgw-bench/env
# and a build (DSPARK_BIN, default build/dspark).
set -euo pipefail
export AWS_EC2_METADATA_DISABLED=true
cd "$(dirname "$0")/.."
BIN=${DSPARK_BIN:-build/dspark}
TASKS=${1:-1000}
WORKERS=${2:-4}
: "${AWS_ENDPOINT_URL:?set AWS_ENDPOINT_URL (see the usage above)}"
: "${DSPARK_TEST_S3_BUCKET:?set DSPARK_TEST_S3_BUCKET (see the usage above)}"

work=$(mktemp -d /tmp/dsp-runtime-bench.XXXXXX)
trap '[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"' EXIT
run_id="rtbench-$(date -u +%Y%m%dT%H%M%S)-$$"
bucket=$DSPARK_TEST_S3_BUCKET

# One plain JSONL object of TASKS * 8 documents of about 200 bytes; the
# planner splits it into TASKS byte ranges.
python3 - "$work/in.jsonl" "$TASKS" <<'PY'
import json, random, sys
rng = random.Random(1)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2]) * 8):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 30)))
        f.write(json.dumps({"id": str(i), "text": text}) + "\n")
PY
size=$(stat -c %s "$work/in.jsonl")
target=$(( (size + TASKS - 1) / TASKS ))
"$BIN" cp "$work/in.jsonl" "s3://$bucket/$run_id/in/in.jsonl" >/dev/null

cat >"$work/spec.json" <<JSON
{
  "name": "runtime-bench",
  "input": ["s3://$bucket/$run_id/in/*.jsonl"],
  "steps": [{"op": "length", "min_words": 1}],
  "output": {"uri": "s3://$bucket/$run_id/out", "format": "jsonl.zst"},
  "options": {"target_task_bytes": $target}
}
JSON

store="s3://$bucket/$run_id/store"
start=$(date +%s.%N)
"$BIN" run "$work/spec.json" --store "$store" --workers "$WORKERS" --job-id bench >"$work/run.log" 2>&1 ||
    { tail -30 "$work/run.log"; exit 1; }
end=$(date +%s.%N)
"$BIN" status bench --store "$store" --json >"$work/status.json"

python3 - "$work/status.json" "$work/run.log" "$start" "$end" "$WORKERS" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
start, end, workers = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
tasks = sum(st["tasks"] for st in s["stages"])
c = s["counters"]
# Every worker logs its totals on exit: all job-store requests, including
# sealing and the requests after its last commit.
total = coord = 0
for line in open(sys.argv[2]):
    if "event=worker_stop" in line:
        total += int(re.search(r" requests=(\d+)", line).group(1))
        coord += int(re.search(r"coord_requests=(\d+)", line).group(1))
print(f"tasks                  {tasks}")
print(f"workers                {workers}")
print(f"wall seconds           {end - start:.1f} (plan, run, publish)")
print(f"tasks per second       {tasks / (end - start):.1f}")
print(f"coord requests/task    {coord / tasks:.2f} (all worker requests for leases, listings,")
print(f"                       commits, seals, state and publishing control)")
print(f"  in commits           {c['coord_requests'] / tasks:.2f} (the share attributed to task commits)")
print(f"job-store requests/task {total / tasks:.2f} (coordination plus the tasks' output PUTs;")
print(f"                       input GETs and publish copies use other store handles)")
print(f"retries                {c['retries']}")
PY
