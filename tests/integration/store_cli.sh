#!/bin/bash
# store_cli.sh - ls, cat, cp, rm and doctor through the dspark binary, on a
# local store and, when AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET are set,
# on S3 under a unique prefix that is deleted at the end.
#
# Exit 0 pass, 1 fail (tests/run.sh conventions).
set -u
export AWS_EC2_METADATA_DISABLED=true
BIN=${DSPARK_BIN:?DSPARK_BIN must point at the dspark binary}
WORK=$(mktemp -d /tmp/dsp-store-cli.XXXXXX)
S3_STORE=""

cleanup() {
    if [ -n "$S3_STORE" ]; then
        "$BIN" rm --recursive "$S3_STORE/" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL [$LABEL]: $*" >&2
    exit 1
}

# expect_exit CODE CMD... : run CMD, keep its output in $WORK/out and
# $WORK/err, and fail unless it exits with CODE.
expect_exit() {
    local want=$1
    shift
    "$@" >"$WORK/out" 2>"$WORK/err"
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "--- stdout" >&2
        head -c 2000 "$WORK/out" >&2
        echo "--- stderr" >&2
        head -c 2000 "$WORK/err" >&2
        fail "'$*' exited $got, expected $want"
    fi
}

# Run every check against the store URI in $1 (set as DSPARK_STORE).
check_store() {
    local store=$1
    export DSPARK_STORE=$store
    local local_dir=$WORK/files-$LABEL
    mkdir -p "$local_dir"

    # cp: local file -> store -> local file, byte for byte.
    printf 'hello, store\n' >"$local_dir/a.txt"
    expect_exit 0 "$BIN" cp "$local_dir/a.txt" "$store/dir/a.txt"
    expect_exit 0 "$BIN" cat dir/a.txt
    cmp -s "$WORK/out" "$local_dir/a.txt" || fail "cat dir/a.txt differs from what cp wrote"

    head -c $((20 * 1024 * 1024 + 17)) /dev/urandom >"$local_dir/big.bin"
    expect_exit 0 "$BIN" cp "$local_dir/big.bin" "$store/dir/big.bin"
    expect_exit 0 "$BIN" cp "$store/dir/big.bin" "$local_dir/big.back"
    cmp -s "$local_dir/big.bin" "$local_dir/big.back" || fail "20 MiB round trip differs"

    # cp into a "directory" destination keeps the source name.
    expect_exit 0 "$BIN" cp "$store/dir/a.txt" "$store/copies/"
    expect_exit 0 "$BIN" cat copies/a.txt
    cmp -s "$WORK/out" "$local_dir/a.txt" || fail "cp to copies/ did not keep the name a.txt"

    # stdin and stdout.
    printf 'from stdin' | "$BIN" cp - "$store/dir/stdin.txt" || fail "cp from stdin failed"
    expect_exit 0 "$BIN" cp "$store/dir/stdin.txt" -
    [ "$(cat "$WORK/out")" = "from stdin" ] || fail "cp to stdout printed '$(cat "$WORK/out")'"

    # cat --range: inclusive byte offsets. An END past the end reads to the
    # end. A START at or past the end (HTTP 416 on S3) fails with exit 2 on
    # every store, and the error names the key, the object size and the range.
    expect_exit 0 "$BIN" cat dir/a.txt --range 7-11
    [ "$(cat "$WORK/out")" = "store" ] || fail "--range 7-11 printed '$(cat "$WORK/out")'"
    expect_exit 0 "$BIN" cat dir/a.txt --range 7-500
    [ "$(cat "$WORK/out")" = "store" ] || fail "--range 7-500 printed '$(cat "$WORK/out")'"
    expect_exit 2 "$BIN" cat dir/a.txt --range 500-
    [ ! -s "$WORK/out" ] || fail "a range past the end printed bytes"
    grep -q "invalid --range 500- for .*dir/a.txt: the object is 13 bytes" "$WORK/err" ||
        fail "unclear message for a range past the end: $(cat "$WORK/err")"
    expect_exit 2 "$BIN" cat dir/a.txt --range 13-20
    grep -q "invalid --range 13-20 for .*dir/a.txt: the object is 13 bytes, so START must be at most 12" \
        "$WORK/err" || fail "unclear message for a range that starts at the end: $(cat "$WORK/err")"
    : >"$local_dir/empty.txt"
    expect_exit 0 "$BIN" cp "$local_dir/empty.txt" "$store/dir/empty.txt"
    expect_exit 2 "$BIN" cat dir/empty.txt --range 0-
    grep -q "invalid --range 0- for .*dir/empty.txt: the object is empty" "$WORK/err" ||
        fail "unclear message for a range of an empty object: $(cat "$WORK/err")"
    expect_exit 0 "$BIN" cat dir/empty.txt
    expect_exit 0 "$BIN" rm dir/empty.txt
    expect_exit 2 "$BIN" cat dir/a.txt --range 9-3
    grep -q "invalid --range '9-3'" "$WORK/err" || fail "no clear message for --range 9-3"

    # ls: one level with common prefixes, recursive, and JSON.
    expect_exit 0 "$BIN" ls
    grep -q "PRE dir/" "$WORK/out" || fail "ls does not show the common prefix dir/"
    grep -q "a.txt" "$WORK/out" && fail "ls without --recursive shows dir/a.txt"
    expect_exit 0 "$BIN" ls --recursive
    grep -q " dir/big.bin$" "$WORK/out" || fail "ls --recursive does not list dir/big.bin"
    grep -q "$((20 * 1024 * 1024 + 17)) dir/big.bin" "$WORK/out" || fail "ls shows a wrong size"
    expect_exit 0 "$BIN" ls dir/ --json
    python3 - "$WORK/out" <<'EOF' || fail "ls --json output is wrong"
import json, sys
doc = json.load(open(sys.argv[1]))
keys = [o["key"] for o in doc["objects"]]
assert keys == sorted(keys, key=lambda k: k.encode()), keys
assert keys == ["dir/a.txt", "dir/big.bin", "dir/stdin.txt"], keys
assert all(len(o["etag"]) > 0 and o["size"] >= 0 for o in doc["objects"])
EOF

    # cp --if-absent: rejects an existing key, creates a new one.
    expect_exit 1 "$BIN" cp --if-absent "$local_dir/big.bin" "$store/dir/a.txt"
    grep -q "already exists" "$WORK/err" || fail "cp --if-absent gave no clear message"
    expect_exit 0 "$BIN" cat dir/a.txt
    cmp -s "$WORK/out" "$local_dir/a.txt" || fail "cp --if-absent overwrote dir/a.txt"
    expect_exit 0 "$BIN" cp --if-absent "$local_dir/a.txt" "$store/dir/new.txt"

    # Clear errors for bad input.
    expect_exit 5 "$BIN" cat dir/missing.txt
    grep -q "dir/missing.txt" "$WORK/err" || fail "not-found message does not name the key"
    expect_exit 2 "$BIN" cat "http://127.0.0.1:1/x"
    grep -q "unsupported" "$WORK/err" || fail "no clear message for an http:// URI"
    expect_exit 0 "$BIN" ls --help
    expect_exit 2 "$BIN" ls --no-such-option

    # rm of a prefix without --recursive deletes nothing and names the fix.
    expect_exit 2 "$BIN" rm dir
    grep -q "'dir' is a prefix" "$WORK/err" || fail "rm dir did not say that dir is a prefix"
    grep -q "dspark rm --recursive 'dir'" "$WORK/err" || fail "rm dir did not suggest --recursive"
    expect_exit 0 "$BIN" cat dir/a.txt

    # An empty KEY or a KEY of only '/' (an unset shell variable) would name
    # the whole store: rm rejects it, also with --recursive, deletes nothing
    # and names the explicit form.
    local key
    for key in "" "/" "//"; do
        expect_exit 2 "$BIN" rm --recursive "$key"
        grep -q "invalid KEY '$key': an empty key or a key of only '/'" "$WORK/err" ||
            fail "unclear message for rm --recursive '$key': $(cat "$WORK/err")"
        expect_exit 0 "$BIN" cat dir/a.txt
        expect_exit 2 "$BIN" rm "$key"
        expect_exit 0 "$BIN" cat dir/a.txt
    done
    expect_exit 2 "$BIN" rm --recursive ""
    local whole_store
    whole_store=$(sed -n "s/.*name it as a URI: dspark rm --recursive '\(.*\)'$/\1/p" "$WORK/err")
    [ -n "$whole_store" ] || fail "rm '' does not name the command that deletes the store"

    # rm: single keys, then a whole prefix, then the whole store by its URI.
    expect_exit 0 "$BIN" rm dir/new.txt copies/a.txt dir/never-existed
    expect_exit 5 "$BIN" cat dir/new.txt
    expect_exit 0 "$BIN" rm --recursive dir
    expect_exit 0 "$BIN" ls --recursive
    [ ! -s "$WORK/out" ] || fail "objects remain after rm --recursive: $(cat "$WORK/out")"
    expect_exit 0 "$BIN" cp "$local_dir/a.txt" "$store/x/y/z.txt"
    expect_exit 0 "$BIN" rm --recursive "$whole_store"
    grep -q "deleted 1 object" "$WORK/err" || fail "rm --recursive '$whole_store': $(cat "$WORK/err")"
    expect_exit 0 "$BIN" ls --recursive
    [ ! -s "$WORK/out" ] || fail "objects remain after rm of the whole store: $(cat "$WORK/out")"

    # doctor passes, cleans up, and catches a store without conditional writes.
    expect_exit 0 "$BIN" doctor
    grep -q "all checks passed" "$WORK/out" || fail "doctor did not report success"
    expect_exit 0 "$BIN" ls --recursive
    [ ! -s "$WORK/out" ] || fail "doctor left objects behind: $(cat "$WORK/out")"

    DSPARK_FAULTS=op=cput,error=nocond,rate=1 "$BIN" doctor >"$WORK/out" 2>"$WORK/err"
    [ $? -ne 0 ] || fail "doctor passed a store that ignores conditional writes"
    grep -q "conditional writes are not enforced: two create-only PUTs both succeeded" \
        "$WORK/err" || fail "doctor's message does not say what the store lacks"
    grep -q "jobs cannot run safely" "$WORK/err" || fail "doctor does not say what it means"
    grep -q "^create-only *FAIL" "$WORK/out" || fail "doctor's table does not mark create-only"

    unset DSPARK_STORE
    echo "ok [$LABEL]: ls, cat, cp, rm and doctor on $store"
}

LABEL=local
check_store "$WORK/store"

# A plain local path works without any store.
LABEL=local-paths
printf 'x' >"$WORK/plain.txt"
expect_exit 0 "$BIN" cp "$WORK/plain.txt" "$WORK/plain-copy.txt"
cmp -s "$WORK/plain.txt" "$WORK/plain-copy.txt" || fail "local path to local path copy differs"
expect_exit 2 "$BIN" cat "$WORK/../$(basename "$WORK")/.dsp-tmp.x"
mkdir -p "$WORK/tree/sub"
printf 'y' >"$WORK/tree/sub/f.txt"
expect_exit 2 "$BIN" rm "$WORK/tree/sub"
grep -q "is a prefix (directory)" "$WORK/err" || fail "rm of a directory did not say it is one"
[ -f "$WORK/tree/sub/f.txt" ] || fail "rm of a directory without --recursive deleted a file"

LABEL=s3
if [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${DSPARK_TEST_S3_BUCKET:-}" ]; then
    S3_STORE="s3://$DSPARK_TEST_S3_BUCKET/store-cli-$$-$RANDOM"
    if "$BIN" ls --store "$S3_STORE" 2>&1 | grep -q "not built yet"; then
        echo "skip [s3]: the S3 backend is not built yet"
        S3_STORE=""
    else
        check_store "$S3_STORE"

        # S3 errors name the prefix, the S3 error code and the bucket.
        LABEL=s3-errors
        AWS_SECRET_ACCESS_KEY=wrong-secret expect_exit 1 "$BIN" ls "$S3_STORE/in/"
        grep -q "list $S3_STORE/in/: HTTP 403 SignatureDoesNotMatch" "$WORK/err" ||
            fail "ls with a wrong secret: $(cat "$WORK/err")"
        missing="dsp-missing-bucket-$$"
        expect_exit 1 "$BIN" cat "s3://$missing/a/b.txt"
        grep -q "bucket '$missing' does not exist" "$WORK/err" ||
            fail "cat in a missing bucket: $(cat "$WORK/err")"
        grep -q "NoSuchBucket" "$WORK/err" || fail "cat in a missing bucket: no NoSuchBucket"
        echo "ok [s3-errors]: wrong secret, missing bucket"

        # Store to store across backends, streaming both ways.
        LABEL=cross-store
        head -c $((6 * 1024 * 1024 + 3)) /dev/urandom >"$WORK/cross.bin"
        expect_exit 0 "$BIN" cp "$WORK/cross.bin" "file://$WORK/local-store/cross.bin"
        expect_exit 0 "$BIN" cp "file://$WORK/local-store/cross.bin" "$S3_STORE/cross/a.bin"
        expect_exit 0 "$BIN" cp "$S3_STORE/cross/a.bin" "file://$WORK/local-store/back.bin"
        cmp -s "$WORK/cross.bin" "$WORK/local-store/back.bin" ||
            fail "local -> S3 -> local copy differs"
        echo "ok [cross-store]: local store -> S3 -> local store"
    fi
else
    echo "skip [s3]: AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET are not set"
fi
exit 0
