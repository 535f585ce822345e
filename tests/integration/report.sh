#!/bin/bash
# `dspark report` on published outputs. The report of the main job's steps
# matches its manifest step by step, in text and in JSON. A MinHash job's
# report counts the clusters and their sizes that Python counts from the
# published cluster files. Rejected records are counted by reason. The
# report still works after `dspark gc`, and refuses a missing output, an
# output without _SUCCESS and a corrupt manifest with exit codes 5, 1, 1.
# It refuses a part that is missing or has another size, totals that
# disagree with the files, and with --verify a part whose bytes changed or
# part files that the manifest does not list.
# With an S3 server configured, it reads an output on S3.
. "$(dirname "$0")/job_lib/common.bash"

ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
LINUX_DOC="$ROOT/tests/data/linux-doc/linux-doc-6.1-6.12-sample.jsonl.gz"

# ---- the main job's steps ----
sed -e "s#\"tests/data/#\"$ROOT/tests/data/#" -e "s#\"out/cc-clean\"#\"$WORK/out-cc\"#" \
    "$ROOT/examples/cc-clean.json" >"$WORK/cc.json"
"$BIN" run "$WORK/cc.json" --store "$STORE" >"$WORK/cc.log" 2>&1 ||
    { tail -20 "$WORK/cc.log"; die "the main job failed"; }
"$BIN" report "$WORK/out-cc" >"$WORK/cc.txt" 2>"$WORK/cc.err" ||
    { cat "$WORK/cc.err"; die "report of the main job failed"; }
"$BIN" report --json "$WORK/out-cc" >"$WORK/cc.json.out" || die "report --json failed"
python3 - "$WORK/out-cc/_MANIFEST.json" "$WORK/cc.json.out" "$WORK/cc.txt" <<'PY' ||
import json, re, sys
m = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
text = open(sys.argv[3]).read()
assert r["report_schema_version"] == 1
assert r["job"] == m["job"], r["job"]
assert r["name"] == "cc-clean", r["name"]
t = m["totals"]
assert r["documents"] == {"in": t["records_in"], "out": t["records_out"],
                          "rejected": t["records_rejected"],
                          "utf8_repaired": t["records_utf8_repaired"]}, r["documents"]
assert r["bytes"] == {"in": t["bytes_in"], "out": t["bytes_out"]}, r["bytes"]
ops = [o["op"] for o in m["operators"]]
assert [s["op"] for s in r["steps"]] == ops, [s["op"] for s in r["steps"]]
assert ops[0] == "normalize", ops
assert "langid" in ops, ops
assert ops[-1] == "stats", ops
for i, (s, o) in enumerate(zip(r["steps"], m["operators"])):
    assert s["step"] == i + 1
    assert (s["in"], s["out"], s["removed"]) == (o["in"], o["out"], o["in"] - o["out"]), s
    assert s["reasons"] == {k: v for k, v in o["removed"].items() if v > 0}, s["reasons"]
    # The text line of the step: number, name, in, out, removed, then each reason.
    line = re.search(r"^\s+%d\s+%s\s+%d\s+%d\s+%d\s" % (i + 1, s["op"], s["in"], s["out"],
                                                       s["removed"]), text, re.M)
    assert line, "no text line for step %d %s" % (i + 1, s["op"])
    for k, v in s["reasons"].items():
        assert "%s %d" % (k, v) in text, (k, v)
assert sum(s["removed"] for s in r["steps"]) == t["records_in"] - t["records_out"] - t["records_rejected"]
stats = m["operators"][-1]["extra"]
assert r["kept_text"] == stats, r["kept_text"]
assert stats["docs"] == t["records_out"], stats
assert "%d words" % stats["words"] in text
assert r["duplicate_clusters"] is None
print("main job report matches its manifest: %d steps" % len(r["steps"]))
PY
    die "the main job's report does not match its manifest"

# It needs only the output: the job's intermediates may be gone.
job=$(jq -r .job "$WORK/out-cc/_MANIFEST.json")
"$BIN" gc "$job" --store "$STORE" >/dev/null 2>&1 || die "gc of $job failed"
"$BIN" report "$WORK/out-cc" >"$WORK/cc2.txt" || die "report after gc failed"
cmp -s "$WORK/cc.txt" "$WORK/cc2.txt" || die "report changed after gc"

# ---- MinHash clusters ----
mkdir -p "$WORK/ld"
cp "$LINUX_DOC" "$WORK/ld/"
cat >"$WORK/mh.json" <<JSON
{"name": "report-mh", "input": ["$WORK/ld/*.jsonl.gz"],
 "steps": [{"op": "dedup_minhash", "clusters": true}, {"op": "stats"}],
 "output": {"uri": "$WORK/out-mh"}}
JSON
"$BIN" run "$WORK/mh.json" --store "$STORE" --workers 2 >"$WORK/mh.log" 2>&1 ||
    { tail -20 "$WORK/mh.log"; die "the MinHash job failed"; }
"$BIN" report --json "$WORK/out-mh" >"$WORK/mh.json.out" || die "report of the MinHash job failed"
"$BIN" report "$WORK/out-mh" >"$WORK/mh.txt" || die "text report of the MinHash job failed"
python3 - "$WORK/out-mh" "$WORK/mh.json.out" "$WORK/mh.txt" <<'PY' ||
import collections, glob, json, sys
m = json.load(open(sys.argv[1] + "/_MANIFEST.json"))
r = json.load(open(sys.argv[2]))
text = open(sys.argv[3]).read()
sizes = []
for f in m["dedup_clusters"]:
    sizes += [1 + len(json.loads(l)["members"]) for l in open(sys.argv[1] + "/" + f["name"]) if l.strip()]
assert len(sizes) > 30, sizes
d = r["duplicate_clusters"]
assert d["clusters"] == len(sizes), d
assert d["documents"] == sum(sizes), d
assert d["removed"] == sum(sizes) - len(sizes), d
assert d["removed"] == m["operators"][0]["removed"]["duplicate"], d
assert d["largest"] == max(sizes)
# Size classes 2, 3-4, 5-8, ...: keyed here by their upper bound.
classes = collections.Counter()
for s in sizes:
    hi = 2
    while hi < s:
        hi *= 2
    classes[hi] += 1
got = {e["max_size"]: e["clusters"] for e in d["sizes"]}
assert got == dict(classes), (got, classes)
assert "%d clusters hold %d documents" % (len(sizes), sum(sizes)) in text, text
print("clusters %d, documents %d, largest %d" % (len(sizes), sum(sizes), max(sizes)))
PY
    die "the MinHash report does not match the cluster files"

# ---- rejected records, counted by reason ----
mkdir -p "$WORK/bad"
gen_jsonl "$WORK/bad/good.jsonl" 50 7
{
    printf '{"id": "broken", "text": "unterminated\n'
    printf '{"id": "no-text"}\n'
    printf '{"id": "no-text-2", "body": "x"}\n'
    printf 'not json at all\n'
} >"$WORK/bad/bad.jsonl"
write_spec "$WORK/bad.json" "$WORK/bad/*.jsonl" "$WORK/out-bad" 1000000
"$BIN" run "$WORK/bad.json" --store "$STORE" >"$WORK/bad.log" 2>&1 ||
    { tail -20 "$WORK/bad.log"; die "the job with bad records failed"; }
"$BIN" report --json "$WORK/out-bad" >"$WORK/bad.json.out" || die "report with rejects failed"
"$BIN" report "$WORK/out-bad" >"$WORK/bad.txt" || die "text report with rejects failed"
python3 - "$WORK/out-bad" "$WORK/bad.json.out" "$WORK/bad.txt" <<'PY' ||
import collections, glob, json, subprocess, sys
m = json.load(open(sys.argv[1] + "/_MANIFEST.json"))
r = json.load(open(sys.argv[2]))
text = open(sys.argv[3]).read()
reasons = collections.Counter()
for f in m["rejects"]:
    data = subprocess.run(["zstdcat", "-f", sys.argv[1] + "/" + f["name"]], check=True,
                          capture_output=True).stdout.decode()
    reasons.update(json.loads(l)["reason"] for l in data.split("\n") if l)
assert sum(reasons.values()) == 4, reasons
assert m["totals"]["records_rejected"] == 4, m["totals"]
assert r["reject_reasons"] == dict(reasons), (r["reject_reasons"], reasons)
assert r["documents"]["rejected"] == 4
for k, v in reasons.items():
    assert "%s %d" % (k, v) in text, (k, v, text)
print("reject reasons", dict(reasons))
PY
    die "the report's reject reasons are wrong"

# ---- refusals ----
"$BIN" report "$WORK/no-such-output" >/dev/null 2>"$WORK/e1"
rc=$?
[ $rc = 5 ] || die "report of a missing output exited $rc, expected 5"
grep -q "no-such-output has no _MANIFEST.json" "$WORK/e1" || { cat "$WORK/e1"; die "unclear message"; }

cp -r "$WORK/out-cc" "$WORK/out-half"
rm "$WORK/out-half/_SUCCESS"
"$BIN" report "$WORK/out-half" >/dev/null 2>"$WORK/e2"
rc=$?
[ $rc = 1 ] || die "report of an output without _SUCCESS exited $rc, expected 1"
grep -q "out-half is incomplete" "$WORK/e2" || { cat "$WORK/e2"; die "unclear message"; }

echo '{"schema_version": 1, "job": ' >"$WORK/out-half/_MANIFEST.json"
"$BIN" report "$WORK/out-half" >/dev/null 2>"$WORK/e3"
rc=$?
[ $rc = 1 ] || die "report of a corrupt manifest exited $rc, expected 1"
grep -q "_MANIFEST.json: not valid JSON" "$WORK/e3" || { cat "$WORK/e3"; die "unclear message"; }

"$BIN" report >/dev/null 2>&1
rc=$?
[ $rc = 2 ] || die "report without OUTPUT exited $rc, expected 2"

# ---- damaged outputs ----
"$BIN" report --verify "$WORK/out-cc" >/dev/null || die "--verify rejected an intact output"
part=$(jq -r '.files[0].name' "$WORK/out-cc/_MANIFEST.json")

# expect_damage NAME PATTERN [--verify]: report (with the option) exits 1
# on $WORK/out-dmg and names the damage.
expect_damage() {
    "$BIN" report ${3:-} "$WORK/out-dmg" >/dev/null 2>"$WORK/dmg.err"
    local rc=$?
    [ $rc = 1 ] || die "$1: report exited $rc, expected 1"
    grep -q -- "$2" "$WORK/dmg.err" || { cat "$WORK/dmg.err"; die "$1: unclear message"; }
    rm -rf "$WORK/out-dmg"
}
cp -r "$WORK/out-cc" "$WORK/out-dmg"
printf x >>"$WORK/out-dmg/$part"
expect_damage "a longer part" "$part is $(($(stat -c %s "$WORK/out-cc/$part") + 1)) bytes but"

cp -r "$WORK/out-cc" "$WORK/out-dmg"
rm "$WORK/out-dmg/$part"
expect_damage "a missing part" "$part is listed in _MANIFEST.json but missing"

cp -r "$WORK/out-cc" "$WORK/out-dmg"
printf '\x00' | dd of="$WORK/out-dmg/$part" bs=1 seek=1000 conv=notrunc 2>/dev/null
"$BIN" report "$WORK/out-dmg" >/dev/null || die "a same-size change should pass without --verify"
expect_damage "a changed byte" "$part has SHA-256 .* but _MANIFEST.json lists" --verify

# Data files that the manifest does not list: --verify names each one.
cp -r "$WORK/out-cc" "$WORK/out-dmg"
cp "$WORK/out-dmg/$part" "$WORK/out-dmg/part-00099.jsonl.zst"
mkdir -p "$WORK/out-dmg/_rejects"
echo '{}' >"$WORK/out-dmg/_rejects/part-00042.jsonl"
"$BIN" report "$WORK/out-dmg" >/dev/null || die "unlisted parts should pass without --verify"
"$BIN" report --verify "$WORK/out-dmg" >/dev/null 2>"$WORK/unlisted.err"
rc=$?
[ $rc = 1 ] || die "unlisted parts: report --verify exited $rc, expected 1"
grep -q "out-dmg/part-00099.jsonl.zst is not listed in _MANIFEST.json" "$WORK/unlisted.err" ||
    { cat "$WORK/unlisted.err"; die "unlisted parts: the extra part is not named"; }
grep -q "out-dmg/_rejects/part-00042.jsonl is not listed in _MANIFEST.json" "$WORK/unlisted.err" ||
    { cat "$WORK/unlisted.err"; die "unlisted parts: the extra reject part is not named"; }
grep -q "contains 2 data files that _MANIFEST.json does not list" "$WORK/unlisted.err" ||
    { cat "$WORK/unlisted.err"; die "unlisted parts: the count is missing"; }
rm -rf "$WORK/out-dmg"

cp -r "$WORK/out-cc" "$WORK/out-dmg"
jq '.totals.records_out += 5' "$WORK/out-cc/_MANIFEST.json" >"$WORK/out-dmg/_MANIFEST.json"
expect_damage "edited totals" "totals name .* records in 1 files, but its files list"

# ---- an output on S3 ----
if [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${DSPARK_TEST_S3_BUCKET:-}" ]; then
    out="s3://$DSPARK_TEST_S3_BUCKET/out-report-$$-$RANDOM"
    sed -e "s#\"$WORK/out-cc\"#\"$out\"#" "$WORK/cc.json" >"$WORK/cc-s3.json"
    "$BIN" run "$WORK/cc-s3.json" --store "$STORE" >"$WORK/cc-s3.log" 2>&1 ||
        { tail -20 "$WORK/cc-s3.log"; die "the main job with S3 output failed"; }
    "$BIN" report --json --verify "$out" >"$WORK/s3.json.out" || die "report of $out failed"
    jq -e --slurpfile local "$WORK/cc.json.out" \
        '.steps == $local[0].steps and .documents == $local[0].documents' \
        "$WORK/s3.json.out" >/dev/null || die "the S3 output's report differs from the local one"
    echo "S3 output report matches"
fi
echo "ok"
