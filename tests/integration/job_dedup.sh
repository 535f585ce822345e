#!/bin/bash
# Dedup as job stages. On the Common Crawl sample, dedup_exact without
# normalisation removes exactly the 35 repeated texts (counted here with
# Python) and the manifest counts them. The same job split into many tasks
# publishes byte-identical output with 1, 2 and 4 workers, and with workers
# killed by SIGKILL. A dedup-first job, whose filter stage re-reads the
# inputs instead of intermediate shards, publishes the same data, counters
# and rejects as the shard path, also under SIGKILL. Bogus files planted
# under an attempt prefix that no commit names are never read. dedup_minhash on the linux-doc pairs keeps
# every 6.1 version, drops the 6.12 versions of identical pairs and
# publishes clusters whose members are exactly the dropped documents. With an
# S3 server configured, the exact job also runs with its store on S3.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CC="$ROOT/tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
LINUX_DOC="$ROOT/tests/data/linux-doc/linux-doc-6.1-6.12-sample.jsonl.gz"

# dedup_spec FILE INPUT OUTPUT TARGET STEPS_JSON [OPTIONS_JSON]
dedup_spec() {
    cat >"$1" <<JSON
{
  "name": "dedup-$(basename "$1" .json)",
  "input": ["$2"],
  "steps": [$5],
  "output": {"uri": "$3", "format": "jsonl.zst"},
  "options": {"target_task_bytes": $4${6:+, $6}}
}
JSON
}

# out_records DIR: the records_out total of a published output.
out_records() {
    jq '.totals.records_out' "$1/_MANIFEST.json"
}

# seal_hashes_match JOB: every file a seal names, intermediates included
# (shuffle.bin, drops.bin, edges.bin, order.bin), has the SHA-256 of its
# bytes in the store (local stores only).
seal_hashes_match() {
    local dir="$STORE/jobs/$1" sha key n=0
    while read -r sha key; do
        [ "$sha" = "$(sha256sum "$STORE/$key" | cut -d' ' -f1)" ] ||
            die "seal of job $1: sha256 '$sha' of $key does not match its bytes"
        n=$((n + 1))
    done < <(jq -r '.tasks[].files[] | "\(.sha256) \(.key)"' "$dir"/seals/*.json)
    [ "$n" -gt 0 ] || die "the seals of job $1 name no files"
    for name in $2; do
        jq -e --arg name "$name" '[.tasks[].files[].key | select(endswith("/" + $name))] | length > 0' \
            "$dir"/seals/*.json | grep -q true || die "the seals of job $1 name no $name"
    done
}

run_job() {
    local spec=$1 log=$2
    shift 2
    "$BIN" run "$spec" --store "$STORE" "$@" >"$log" 2>&1 || { tail -20 "$log"; die "run of $spec failed"; }
}

# ---- exact dedup on the gzip sample: 35 fewer documents ----
expected=$(python3 - "$CC" <<'PY'
import collections, gzip, json, sys
texts = [json.loads(l)["text"] for l in gzip.open(sys.argv[1], "rt", encoding="utf-8")]
print(sum(n - 1 for n in collections.Counter(texts).values()))
PY
)
[ "$expected" = 35 ] || die "the CC sample should hold 35 repeated texts, Python counts $expected"

mkdir -p "$WORK/gz"
cp "$CC" "$WORK/gz/"
dedup_spec "$WORK/plain.json" "$WORK/gz/*.jsonl.gz" "$WORK/out-plain" 1000000 '{"op": "stats"}'
dedup_spec "$WORK/raw.json" "$WORK/gz/*.jsonl.gz" "$WORK/out-raw" 1000000 \
    '{"op": "dedup_exact", "normalize": false}, {"op": "stats"}'
run_job "$WORK/plain.json" "$WORK/plain.log"
run_job "$WORK/raw.json" "$WORK/raw.log" --workers 2
plain=$(out_records "$WORK/out-plain")
raw=$(out_records "$WORK/out-raw")
[ $((plain - raw)) = 35 ] || die "dedup_exact removed $((plain - raw)) documents, expected 35"
jq -e '.operators[0].removed.duplicate == 35 and .operators[0].in == 697 and .operators[0].out == 662
       and .operators[1].in == 662 and .totals.records_in == 697' \
    "$WORK/out-raw/_MANIFEST.json" >/dev/null ||
    { jq '.totals, .operators' "$WORK/out-raw/_MANIFEST.json"; die "dedup counters are wrong"; }
grep -q "documents  in 697  out 662" "$WORK/raw.log" || { head -8 "$WORK/raw.log"; die "run summary is wrong"; }
# The survivors are the first copy of each text, in input order.
python3 - "$CC" "$WORK/out-raw" <<'PY' || die "the survivors are not the first copy of each text"
import glob, gzip, json, subprocess, sys
seen, want = set(), []
for line in gzip.open(sys.argv[1], "rt", encoding="utf-8"):
    d = json.loads(line)
    if d["text"] not in seen:
        seen.add(d["text"])
        want.append(d["id"])
got = []
for part in sorted(glob.glob(sys.argv[2] + "/part-*")):
    data = subprocess.run(["zstdcat", part], check=True, capture_output=True).stdout
    got += [json.loads(l)["id"] for l in data.decode().split("\n") if l]
sys.exit(0 if got == want else 1)
PY

# ---- many tasks: 1, 2 and 4 workers give the same bytes ----
mkdir -p "$WORK/split"
zcat "$CC" >"$WORK/split/cc.jsonl"
steps='{"op": "length", "min_words": 3}, {"op": "dedup_exact"}, {"op": "stats"}'
for n in 1 2 4; do
    dedup_spec "$WORK/split-$n.json" "$WORK/split/*.jsonl" "$WORK/out-split-$n" 200000 "$steps"
    run_job "$WORK/split-$n.json" "$WORK/split-$n.log" --workers "$n"
done
job1=$(ls "$STORE/jobs" | grep '^dedup-split-1-')
ntasks=$("$BIN" status "$job1" --store "$STORE" --json | jq '.stages[0].tasks')
[ "$ntasks" -ge 10 ] || die "expected at least 10 map tasks, got $ntasks"
nstages=$("$BIN" status "$job1" --store "$STORE" --json | jq '.stages | length')
[ "$nstages" = 3 ] || die "expected 3 stages (map, reduce, filter), got $nstages"
same_output "$WORK/out-split-1" "$WORK/out-split-2"
same_output "$WORK/out-split-1" "$WORK/out-split-4"
jq -e '.totals.records_out + .operators[0].removed.too_few_words
       + .operators[1].removed.duplicate == .totals.records_in' \
    "$WORK/out-split-1/_MANIFEST.json" >/dev/null || die "split run counters do not reconcile"

# ---- dedup first: the filter stage re-reads the job's inputs ----
# Without a step before the dedup step, map tasks commit inputs.direct in
# place of data shards and order.bin, and the filter tasks re-read the
# inputs. The same job with a stats step first (which removes nothing)
# takes the shard path. Both must publish the same data, counters and
# rejects, with 1, 2 and 4 workers. The input has lines the reader
# rejects: invalid JSON, a missing text member and a line over
# max_record_bytes.
mkdir -p "$WORK/rej"
python3 - "$WORK/split/cc.jsonl" "$WORK/rej/rej.jsonl" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for i, line in enumerate(l for l in lines if l):
        out.write(line + "\n")
        if i % 50 == 7:
            out.write('{"id": "broken-%d", "text": "unterminated\n' % i)
        if i % 60 == 3:
            out.write('{"id": "notext-%d", "body": "no text member"}\n' % i)
        if i % 90 == 5:
            out.write("not json %d\n" % i)
        if i == 400:
            out.write('{"id": "huge", "text": "%s"}\n' % ("x" * 300000))
PY
rej_opts='"max_record_bytes": 200000'
for n in 1 2 4; do
    dedup_spec "$WORK/direct-$n.json" "$WORK/rej/*.jsonl" "$WORK/out-direct-$n" 150000 \
        '{"op": "dedup_exact"}, {"op": "length", "min_words": 3}' "$rej_opts"
    run_job "$WORK/direct-$n.json" "$WORK/direct-$n.log" --workers "$n"
done
dedup_spec "$WORK/shards.json" "$WORK/rej/*.jsonl" "$WORK/out-shards" 150000 \
    '{"op": "stats"}, {"op": "dedup_exact"}, {"op": "length", "min_words": 3}' "$rej_opts"
run_job "$WORK/shards.json" "$WORK/shards.log" --workers 2
job=$(ls "$STORE/jobs" | grep '^dedup-direct-1-')
[ "$("$BIN" status "$job" --store "$STORE" --json | jq '.stages[0].tasks')" -ge 10 ] ||
    die "the dedup-first job should have at least 10 map tasks"
direct_files=$(jq -r '.tasks[].files[].key' "$STORE/jobs/$job"/seals/s0.json | sed 's|.*/||' | sort -u | tr '\n' ' ')
[ "$direct_files" = "inputs.direct shuffle.bin " ] ||
    die "map tasks of the dedup-first job committed $direct_files; expected inputs.direct shuffle.bin"
seal_hashes_match "$job" "inputs.direct shuffle.bin drops.bin"
job=$(ls "$STORE/jobs" | grep '^dedup-shards-')
jq -e '[.tasks[].files[].key | select(endswith("/order.bin"))] | length > 0' \
    "$STORE/jobs/$job"/seals/s0.json >/dev/null || die "the job with a step first wrote no order.bin"
same_output "$WORK/out-direct-1" "$WORK/out-direct-2"
same_output "$WORK/out-direct-1" "$WORK/out-direct-4"
same_output_data() {
    diff <(cd "$1" && find . -name 'part-*' | sort | xargs sha256sum) \
         <(cd "$2" && find . -name 'part-*' | sort | xargs sha256sum) || die "parts of $1 and $2 differ"
}
# _rejects/part-* are compared here too.
same_output_data "$WORK/out-direct-1" "$WORK/out-shards"
bad=$(grep -c -e '^{"id": "broken' -e '^{"id": "notext' -e '^not json' -e '^{"id": "huge' "$WORK/rej/rej.jsonl")
jq -e --argjson bad "$bad" '.totals.records_in == 697 + $bad and .totals.records_rejected == $bad
       and .operators[0].in == 697 and .operators[0].removed.duplicate >= 35
       and .totals.records_out + .operators[0].removed.duplicate
           + .operators[1].removed.too_few_words + $bad == .totals.records_in' \
    "$WORK/out-direct-1/_MANIFEST.json" >/dev/null ||
    { jq '.totals, .operators' "$WORK/out-direct-1/_MANIFEST.json"; die "dedup-first counters are wrong"; }
jq -e --slurpfile s "$WORK/out-shards/_MANIFEST.json" \
    '.totals.records_in == $s[0].totals.records_in and .totals.records_out == $s[0].totals.records_out
     and .totals.records_rejected == $s[0].totals.records_rejected
     and .operators[0] == $s[0].operators[1] and .operators[1] == $s[0].operators[2]' \
    "$WORK/out-direct-1/_MANIFEST.json" >/dev/null || die "counters differ between the direct and the shard path"
nrej=$(cat "$WORK"/out-direct-1/_rejects/part-* | zstdcat | wc -l)
[ "$nrej" = "$bad" ] || die "_rejects holds $nrej lines, expected $bad"

# Input the reader accepts whole: every map task's marker counts no reject
# and no repair, so the filter tasks pass the lines on without validating
# them again. The output must equal the shard path's.
mkdir -p "$WORK/clean-in"
cp "$WORK/split/cc.jsonl" "$WORK/clean-in/a.jsonl"
# The same records again, with CRLF line ends and some blank lines.
sed 's/$/\r/' "$WORK/split/cc.jsonl" | awk '{ print } NR % 40 == 0 { print "" }' \
    >"$WORK/clean-in/b.jsonl"
dedup_spec "$WORK/trusted.json" "$WORK/clean-in/*.jsonl" "$WORK/out-trusted" 150000 \
    '{"op": "dedup_exact"}, {"op": "length", "min_words": 3}'
dedup_spec "$WORK/checked.json" "$WORK/clean-in/*.jsonl" "$WORK/out-checked" 150000 \
    '{"op": "stats"}, {"op": "dedup_exact"}, {"op": "length", "min_words": 3}'
DSPARK_LOG_LEVEL=info run_job "$WORK/trusted.json" "$WORK/trusted.log" --workers 2
run_job "$WORK/checked.json" "$WORK/checked.log" --workers 2
grep -q 'event=dedup_filtered .*direct=1 trusted=1' "$WORK/trusted.log" ||
    die "no filter task of the clean dedup-first job read its input as trusted lines"
! grep -q 'event=dedup_filtered .*trusted=0' "$WORK/trusted.log" ||
    die "a filter task of the clean dedup-first job validated its input again"
same_output_data "$WORK/out-trusted" "$WORK/out-checked"
jq -e --slurpfile s "$WORK/out-checked/_MANIFEST.json" \
    '.totals.records_in == $s[0].totals.records_in and .totals.records_out == $s[0].totals.records_out
     and .totals.records_rejected == 0 and .operators[0] == $s[0].operators[1]' \
    "$WORK/out-trusted/_MANIFEST.json" >/dev/null || die "counters differ between trusted and checked reads"

# ---- SIGKILL while the map and filter stages run ----
# An exec step that sleeps makes each task last long enough to be killed.
slow='{"op": "exec", "command": ["sh", "-c", "sleep 0.2; cat"]}'
chaos_steps="$slow, {\"op\": \"length\", \"min_words\": 3}, {\"op\": \"dedup_exact\"}, $slow, {\"op\": \"stats\"}"
# A kill every 0.7 s can hit one slow task several times on a loaded
# machine, so the task may be lost more often than the default 4 attempts.
chaos_opts='"lease_seconds": 5, "max_attempts": 20'
dedup_spec "$WORK/clean.json" "$WORK/split/*.jsonl" "$WORK/out-clean" 200000 "$chaos_steps" "$chaos_opts"
dedup_spec "$WORK/chaos.json" "$WORK/split/*.jsonl" "$WORK/out-chaos" 200000 "$chaos_steps" "$chaos_opts"
run_job "$WORK/clean.json" "$WORK/clean.log" --workers 4 --allow-exec
# Without exec steps the data is the same as the 1-worker split run.
same_output_data "$WORK/out-split-1" "$WORK/out-clean"

# chaos_job SPEC JOB_ID: run the job with three workers, one of them
# killed by SIGKILL every 0.7 s and replaced, and wait for it to finish.
chaos_job() {
    local job
    job=$("$BIN" submit "$1" --store "$STORE" --job-id "$2") || die "submit of $1 failed"
    # Plant garbage under an attempt prefix that no commit names: readers go
    # through seals, so these must never be read.
    for f in shuffle.bin order.bin inputs.direct part-00000.jsonl.zst; do
        mkdir -p "$STORE/jobs/$job/attempts/s0/t00000/a9-bogus"
        head -c 4096 /dev/urandom >"$STORE/jobs/$job/attempts/s0/t00000/a9-bogus/$f"
    done
    local pids=() kills=0 victim i deadline=$((SECONDS + 100))
    for i in 0 1 2; do
        start_worker "$WORK/worker.log" --allow-exec
        pids+=("$LAST_PID")
    done
    while [ "$(job_state "$job")" = running ]; do
        [ $SECONDS -lt $deadline ] || die "job $job did not finish within 100 s under SIGKILL"
        sleep 0.7
        victim=$((RANDOM % ${#pids[@]}))
        kill -KILL "${pids[$victim]}" 2>/dev/null && kills=$((kills + 1))
        start_worker "$WORK/worker.log" --allow-exec
        pids[$victim]=$LAST_PID
    done
    echo "job $job: killed $kills workers"
    [ "$kills" -ge 3 ] || die "only $kills workers were killed; job $job ran too fast to test"
    [ "$(job_state "$job")" = done ] || die "job $job ended as $(job_state "$job")"
}
chaos_job "$WORK/chaos.json" dedup-chaos
same_output "$WORK/out-clean" "$WORK/out-chaos"
sleep 1
attempts_match_commits dedup-chaos
seal_hashes_match dedup-chaos "shuffle.bin drops.bin order.bin"

# The dedup-first job re-reads its inputs in the filter stage, where the
# slow step runs; its data and rejects equal those of the clean runs. Its
# map tasks are fast, so the filter tasks sleep longer to be killed often.
slower='{"op": "exec", "command": ["sh", "-c", "sleep 0.6; cat"]}'
dedup_spec "$WORK/chaos-direct.json" "$WORK/rej/*.jsonl" "$WORK/out-chaos-direct" 150000 \
    "{\"op\": \"dedup_exact\"}, $slower, {\"op\": \"length\", \"min_words\": 3}" \
    "$rej_opts, $chaos_opts"
chaos_job "$WORK/chaos-direct.json" dedup-chaos-direct
same_output_data "$WORK/out-direct-1" "$WORK/out-chaos-direct"
diff <(jq -S .totals "$WORK/out-direct-1/_MANIFEST.json") \
     <(jq -S .totals "$WORK/out-chaos-direct/_MANIFEST.json") ||
    die "totals of the dedup-first job differ under SIGKILL"
sleep 1
attempts_match_commits dedup-chaos-direct
seal_hashes_match dedup-chaos-direct "inputs.direct shuffle.bin drops.bin"

# ---- MinHash on the linux-doc version pairs ----
# check_linux_doc_kept OUT: every 6.1 version is kept, every 6.12 version
# identical to its 6.1 version is dropped, and more than 30 are dropped.
check_linux_doc_kept() {
    python3 - "$LINUX_DOC" "$1" <<'PY'
import glob, gzip, json, subprocess, sys
docs = [json.loads(l) for l in gzip.open(sys.argv[1], "rt", encoding="utf-8")]
kept = set()
for part in sorted(glob.glob(sys.argv[2] + "/part-*")):
    data = subprocess.run(["zstdcat", part], check=True, capture_output=True).stdout
    kept |= {json.loads(l)["id"] for l in data.decode().split("\n") if l}
bad = 0
identical = dropped = 0
for i in range(0, len(docs), 2):
    old, new = docs[i], docs[i + 1]
    if old["id"] not in kept:
        print("6.1 version dropped:", old["id"]); bad += 1
    if old["text"] == new["text"]:
        identical += 1
        if new["id"] in kept:
            print("identical 6.12 version kept:", new["id"]); bad += 1
    dropped += new["id"] not in kept
print("pairs %d, identical %d, 6.12 versions dropped %d" % (len(docs) // 2, identical, dropped))
sys.exit(1 if bad or dropped <= 30 else 0)
PY
}
mkdir -p "$WORK/ld"
cp "$LINUX_DOC" "$WORK/ld/"
dedup_spec "$WORK/mh.json" "$WORK/ld/*.jsonl.gz" "$WORK/out-mh" 1000000 \
    '{"op": "dedup_minhash", "clusters": true}'
run_job "$WORK/mh.json" "$WORK/mh.log" --workers 2
seal_hashes_match "$(ls "$STORE/jobs" | grep '^dedup-mh-')" "shuffle.bin edges.bin drops.bin"
check_linux_doc_kept "$WORK/out-mh" || die "MinHash kept or dropped the wrong documents"
jq -e '.operators[0].removed.duplicate > 30 and .operators[0].extra.clusters > 30' \
    "$WORK/out-mh/_MANIFEST.json" >/dev/null ||
    { jq '.operators' "$WORK/out-mh/_MANIFEST.json"; die "MinHash counters are wrong"; }
# The published clusters name exactly the dropped documents as members, by
# (input index, byte offset of the line in the decompressed input).
python3 - "$LINUX_DOC" "$WORK/out-mh" <<'PY' || die "published MinHash clusters are wrong"
import glob, gzip, json, subprocess, sys
by_offset, pos = {}, 0
for line in gzip.open(sys.argv[1], "rb"):
    d = json.loads(line)
    by_offset[pos] = d["id"]
    pos += len(line)
kept = set()
for part in sorted(glob.glob(sys.argv[2] + "/part-*")):
    data = subprocess.run(["zstdcat", part], check=True, capture_output=True).stdout
    kept |= {json.loads(l)["id"] for l in data.decode().split("\n") if l}
dropped = set(by_offset.values()) - kept
clusters = [json.loads(l) for l in open(sys.argv[2] + "/_dedup/clusters/step0.jsonl")]
members = {by_offset[m[1]] for c in clusters for m in c["members"]}
reps = {by_offset[c["representative"][1]] for c in clusters}
assert members == dropped, "members %d, dropped %d" % (len(members), len(dropped))
assert reps <= kept, "a representative was dropped"
manifest = json.load(open(sys.argv[2] + "/_MANIFEST.json"))
assert manifest["dedup_clusters"][0]["name"] == "_dedup/clusters/step0.jsonl", manifest.get("dedup_clusters")
assert manifest["dedup_clusters"][0]["records"] == len(clusters)
print("clusters", len(clusters), "members", len(members))
PY

# ---- MinHash components beyond their memory budget ----
# 12,000 edited copies of a real document (each with one word replaced)
# form one cluster, between the 697 Common Crawl documents. With
# components_memory_mb 1 the union-find does not fit, so the components task
# sorts edges on local disk in rounds. Its output and clusters must equal
# those of the default run, which keeps the union-find in memory.
mkdir -p "$WORK/giant"
python3 - "$LINUX_DOC" "$CC" "$WORK/giant/giant.jsonl" <<'PY'
import gzip, json, sys
base = next(d for d in (json.loads(l) for l in gzip.open(sys.argv[1], "rt", encoding="utf-8"))
            if len(d["text"].split()) >= 120)
words = base["text"].split()[:120]
others = [json.loads(l) for l in gzip.open(sys.argv[2], "rt", encoding="utf-8")]
with open(sys.argv[3], "w") as out:
    for k in range(12000):
        w = list(words)
        w[1 + k * 7919 % 118] = "edited%d" % k
        out.write(json.dumps({"id": "copy-%d" % k, "text": " ".join(w)}) + "\n")
        if k % 12 == 0 and k // 12 < len(others):
            out.write(json.dumps({"id": others[k // 12]["id"], "text": others[k // 12]["text"]}) + "\n")
PY
for budget in default low; do
    extra=""
    [ $budget = low ] && extra=', "components_memory_mb": 1'
    dedup_spec "$WORK/giant-$budget.json" "$WORK/giant/*.jsonl" "$WORK/out-giant-$budget" 4000000 \
        "{\"op\": \"dedup_minhash\", \"clusters\": true$extra}"
    DSPARK_LOG_LEVEL=info run_job "$WORK/giant-$budget.json" "$WORK/giant-$budget.log" --workers 2
done
# Workers left from the SIGKILL test may run these tasks too, so search
# every log for the job's components line.
grep -hq "job=dedup-giant-default-.* mode=memory" "$WORK"/*.log ||
    die "the default run did not keep components in memory"
grep -hq "job=dedup-giant-low-.* mode=external" "$WORK"/*.log ||
    die "components_memory_mb 1 did not take the external path"
same_output_data "$WORK/out-giant-default" "$WORK/out-giant-low"
cmp "$WORK/out-giant-default/_dedup/clusters/step0.jsonl" "$WORK/out-giant-low/_dedup/clusters/step0.jsonl" ||
    die "clusters differ between the default and the low components budget"
removed=$(jq '.operators[0].removed.duplicate' "$WORK/out-giant-low/_MANIFEST.json")
[ "$removed" -ge 11999 ] || die "only $removed near copies removed, expected at least 11999"
echo "components external path matches ($removed removed)"

# ---- sketch_bits: whole signatures, and an invalid width ----
dedup_spec "$WORK/mh32.json" "$WORK/ld/*.jsonl.gz" "$WORK/out-mh32" 1000000 \
    '{"op": "dedup_minhash", "sketch_bits": 32}'
run_job "$WORK/mh32.json" "$WORK/mh32.log"
jq -e '.operators[0].removed.duplicate > 30' "$WORK/out-mh32/_MANIFEST.json" >/dev/null ||
    { jq '.operators' "$WORK/out-mh32/_MANIFEST.json"; die "MinHash with 32-bit sketches removed too few"; }
dedup_spec "$WORK/mh3.json" "$WORK/ld/*.jsonl.gz" "$WORK/out-mh3" 1000000 \
    '{"op": "dedup_minhash", "sketch_bits": 3}'
"$BIN" run "$WORK/mh3.json" --store "$STORE" >"$WORK/mh3.log" 2>&1
rc=$?
[ $rc = 2 ] || die "sketch_bits 3 exited $rc, expected 2"
grep -q 'option "sketch_bits" must be 1, 2, 4, 8, 16 or 32, got 3' "$WORK/mh3.log" ||
    { cat "$WORK/mh3.log"; die "unclear error for sketch_bits 3"; }

# ---- the k_permutations scheme, and an unknown scheme ----
dedup_spec "$WORK/mhk.json" "$WORK/ld/*.jsonl.gz" "$WORK/out-mhk" 1000000 \
    '{"op": "dedup_minhash", "scheme": "k_permutations"}'
run_job "$WORK/mhk.json" "$WORK/mhk.log"
check_linux_doc_kept "$WORK/out-mhk" || die "MinHash with k_permutations kept or dropped the wrong documents"
dedup_spec "$WORK/mhx.json" "$WORK/ld/*.jsonl.gz" "$WORK/out-mhx" 1000000 \
    '{"op": "dedup_minhash", "scheme": "minwise"}'
"$BIN" run "$WORK/mhx.json" --store "$STORE" >"$WORK/mhx.log" 2>&1
rc=$?
[ $rc = 2 ] || die "scheme \"minwise\" exited $rc, expected 2"
grep -q 'option "scheme" must be "one_permutation" or "k_permutations", got "minwise"' "$WORK/mhx.log" ||
    { cat "$WORK/mhx.log"; die "unclear error for an unknown scheme"; }

# ---- the exact job with its store on S3 ----
if use_s3_store dedup; then
    out="s3://$DSPARK_TEST_S3_BUCKET/out-dedup-$$-$RANDOM"
    dedup_spec "$WORK/s3.json" "$WORK/split/*.jsonl" "$out" 200000 "$steps"
    run_job "$WORK/s3.json" "$WORK/s3.log" --workers 2
    fetch_output "$out" "$WORK/out-s3" || die "cannot download $out"
    same_output "$WORK/out-split-1" "$WORK/out-s3"
    # The dedup-first job with its input on S3 too: map tasks detect the
    # input format there, and filter tasks re-read the input from S3. The
    # rejects name the S3 input, so only the data parts and totals compare.
    in_uri="s3://$DSPARK_TEST_S3_BUCKET/in-direct-$$-$RANDOM"
    "$BIN" cp "$WORK/rej/rej.jsonl" "$in_uri/rej.jsonl" >/dev/null || die "upload to $in_uri failed"
    out="s3://$DSPARK_TEST_S3_BUCKET/out-direct-$$-$RANDOM"
    dedup_spec "$WORK/s3-direct.json" "$in_uri/*.jsonl" "$out" 150000 \
        '{"op": "dedup_exact"}, {"op": "length", "min_words": 3}' "$rej_opts"
    run_job "$WORK/s3-direct.json" "$WORK/s3-direct.log" --workers 2
    fetch_output "$out" "$WORK/out-s3-direct" || die "cannot download $out"
    diff <(cd "$WORK/out-direct-1" && sha256sum part-*) <(cd "$WORK/out-s3-direct" && sha256sum part-*) ||
        die "data parts of the dedup-first job differ with its input on S3"
    diff <(jq -S .totals "$WORK/out-direct-1/_MANIFEST.json" | grep -v bytes_) \
         <(jq -S .totals "$WORK/out-s3-direct/_MANIFEST.json" | grep -v bytes_) ||
        die "totals of the dedup-first job differ with its input on S3"
    "$BIN" ls "$STORE/" --recursive | awk '{print $NF}' | grep -q '/inputs\.direct$' ||
        die "the dedup-first job on S3 did not take the direct path"
    echo "S3 runs match"
fi
echo "ok"
