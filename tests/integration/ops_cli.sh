#!/bin/bash
# `dspark ops` through the command line: the list names every operator with
# its options and removal reasons, one operator's page shows its defaults,
# --json parses and matches the text form, an unknown operator exits 5 and
# a bad flag exits 2.
set -u
DSPARK_BIN=${DSPARK_BIN:?set DSPARK_BIN to the dspark binary}

work=$(mktemp -d /tmp/dspark-ops.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

expect_contains() { # $1 = file, $2 = text, $3 = what is checked
    grep -qF -- "$2" "$1" || {
        fail "$3: output lacks '$2'"
        sed 's/^/    /' "$1" | head -40 >&2
    }
}

"$DSPARK_BIN" ops >"$work/list" 2>"$work/err" || fail "dspark ops exited $?"
for op in normalize langid gopher_quality gopher_repetition c4_quality fineweb_quality \
    length field pii_redact stats sample exec; do
    expect_contains "$work/list" "$op - " "list names $op"
done
expect_contains "$work/list" "removal reasons: too_few_words, too_many_words" "gopher_quality reasons"
expect_contains "$work/list" "extra counters: email, ipv4, ipv6, phone" "pii_redact counters"

"$DSPARK_BIN" ops gopher_repetition >"$work/one" 2>&1 || fail "dspark ops gopher_repetition exited $?"
expect_contains "$work/one" "dup_ngram_fracs" "gopher_repetition option"
expect_contains "$work/one" "[0.15,0.14,0.13,0.12,0.11,0.10]" "gopher_repetition default"
if grep -q "^langid" "$work/one"; then
    fail "dspark ops NAME printed other operators"
fi

"$DSPARK_BIN" ops --json >"$work/json" 2>&1 || fail "dspark ops --json exited $?"
python3 - "$work/json" <<'PY' || fail "--json output is wrong"
import json, sys
ops = json.load(open(sys.argv[1]))
names = [o["name"] for o in ops]
assert len(names) == 15, names
wide = sorted(o["name"] for o in ops if o["wide"])
assert wide == ["dedup_exact", "dedup_minhash", "repartition"], wide
langid = next(o for o in ops if o["name"] == "langid")
opts = {o["name"]: o for o in langid["options"]}
assert opts["min_score"]["default"] == 0.65, opts["min_score"]
assert opts["keep"]["type"] == "list", opts["keep"]
assert "low_score" in langid["reasons"], langid["reasons"]
assert (opts["max_bytes"]["min"], opts["max_bytes"]["max"]) == (0, 10**15), opts["max_bytes"]
PY

"$DSPARK_BIN" ops no_such_operator >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" = 5 ] || fail "unknown operator exited $rc, expected 5"
expect_contains "$work/err" "unknown operator 'no_such_operator'" "unknown operator message"

"$DSPARK_BIN" ops --bogus >"$work/out" 2>"$work/err"
rc=$?
[ "$rc" = 2 ] || fail "bad flag exited $rc, expected 2"

if [ "$failures" -gt 0 ]; then
    echo "ops_cli: $failures failures" >&2
    exit 1
fi
echo "ops_cli: ok"
