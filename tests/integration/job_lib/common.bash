# Shared setup for the job_*.sh integration tests: a scratch directory,
# generated JSONL inputs, job specs, worker processes started and ended by
# PID, and output comparison. Source it; it sets WORK, BIN and STORE.
#
# STORE is a local directory unless the test calls use_s3_store and an S3
# server is configured (AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET).
set -u
export AWS_EC2_METADATA_DISABLED=true
BIN=${DSPARK_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build/dspark}
if [ ! -x "$BIN" ]; then
    echo "dspark binary not found at $BIN; build first or set DSPARK_BIN"
    exit 1
fi
WORK=$(mktemp -d /tmp/dsp-job-test.XXXXXX)
STORE="$WORK/store"
mkdir -p "$STORE"
unset DSPARK_STORE DSPARK_FAULTS
STARTED_PIDS=()

cleanup_job_test() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup_job_test EXIT

die() {
    echo "FAIL: $*"
    exit 1
}

# use_s3_store NAME: put the job store under a fresh prefix of the test
# bucket. Returns 1 (and leaves STORE local) when no server is configured.
use_s3_store() {
    if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ -z "${DSPARK_TEST_S3_BUCKET:-}" ]; then
        return 1
    fi
    STORE="s3://$DSPARK_TEST_S3_BUCKET/$1-$$-$RANDOM"
    return 0
}

# gen_jsonl FILE DOCS SEED: DOCS documents with ids, a mix of long and
# very short texts (the short ones fall to a min_words filter).
gen_jsonl() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, random, sys
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
words = ("data engine object store shard worker lease commit stage seal task "
         "corpus filter quality token language web crawl text document").split()
with open(path, "w") as f:
    for i in range(n):
        k = rng.choice([2, 3, 40, 80, 120])
        text = " ".join(rng.choice(words) for _ in range(k))
        f.write(json.dumps({"id": "%d-%d" % (seed, i), "text": text}) + "\n")
PY
}

# write_spec FILE INPUT_GLOB OUTPUT TARGET_TASK_BYTES [EXTRA_STEP_JSON] [OPTIONS_JSON]
write_spec() {
    local file=$1 input=$2 output=$3 target=$4 extra=${5:-} options=${6:-}
    local steps='{"op": "length", "min_words": 5}'
    [ -n "$extra" ] && steps="$steps, $extra"
    cat >"$file" <<JSON
{
  "name": "runtime-test",
  "input": ["$input"],
  "steps": [$steps],
  "output": {"uri": "$output", "format": "jsonl.zst"},
  "options": {"target_task_bytes": $target${options:+, $options}}
}
JSON
}

# start_worker LOG [ARGS...]: start a worker in the background; its PID
# goes to LAST_PID and STARTED_PIDS.
start_worker() {
    local log=$1
    shift
    "$BIN" worker --store "$STORE" "$@" >>"$log" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

# fetch_output OUTPUT_URI DIR: copy a published output to a local
# directory (a no-op copy for local outputs).
fetch_output() {
    local uri=$1 dir=$2
    case "$uri" in
        s3://*)
            local bucket=${uri#s3://}
            bucket=${bucket%%/*}
            local prefix=${uri#"s3://$bucket/"} key rel
            mkdir -p "$dir"
            for key in $("$BIN" ls "$uri/" --recursive | awk '{print $NF}'); do
                rel=${key#"$prefix"/}
                mkdir -p "$dir/$(dirname "$rel")"
                "$BIN" cp "s3://$bucket/$key" "$dir/$rel" >/dev/null || return 1
            done ;;
        *) cp -r "$uri" "$dir" ;;
    esac
}

# same_output DIR_A DIR_B: the data parts, rejects and the manifest's file
# list must be byte-identical (the manifest also names the job, which differs).
same_output() {
    local a=$1 b=$2
    [ -f "$a/_SUCCESS" ] || die "$a has no _SUCCESS"
    [ -f "$b/_SUCCESS" ] || die "$b has no _SUCCESS"
    diff <(cd "$a" && find . -name 'part-*' | sort | xargs sha256sum) \
         <(cd "$b" && find . -name 'part-*' | sort | xargs sha256sum) ||
        die "parts of $a and $b differ"
    diff <(jq -S '{files, rejects, totals, operators}' "$a/_MANIFEST.json") \
         <(jq -S '{files, rejects, totals, operators}' "$b/_MANIFEST.json") ||
        die "manifests of $a and $b differ"
}

# job_state JOB: the state field of `status --json`.
job_state() {
    "$BIN" status "$1" --store "$STORE" --json | jq -r .state
}

# attempts_match_commits JOB: every object under attempts/ belongs to a
# winning commit (local stores only). Files named .dsp-* are the local
# store's temporary files: not objects, never listed, and left behind when
# a writer is killed in the middle of a put.
attempts_match_commits() {
    local job=$1 dir="$STORE/jobs/$1"
    local referenced actual tries=0
    referenced=$(jq -r '.tasks[].files[].key, (.tasks[].rejects // empty | .key)' \
        "$dir"/seals/*.json | sort)
    # The publisher deletes losing attempts after it marks the job done, so
    # on a loaded machine the sweep may still be running.
    while :; do
        actual=$(cd "$STORE" && find "jobs/$job/attempts" -type f ! -name '.dsp-*' 2>/dev/null | sort)
        [ "$referenced" != "$actual" ] && [ $tries -lt 40 ] || break
        tries=$((tries + 1))
        sleep 0.5
    done
    [ "$referenced" = "$actual" ] || {
        echo "referenced by seals:"; echo "$referenced" | head
        echo "present under attempts/:"; echo "$actual" | head
        die "attempt files of job $job do not match its winning commits"
    }
}
