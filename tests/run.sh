#!/bin/bash
# Run DSpark's tests: every unit test binary in BUILD/tests/, then every
# integration script in tests/integration/ (each gets DSPARK_BIN and, when
# an S3 server is available, the AWS_* variables and DSPARK_TEST_S3_BUCKET).
#
# Usage: tests/run.sh [BUILD_DIR]   (default build; make test calls this)
#
# S3 server: when AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET are already set
# (MinIO, a remote bucket, ...) the tests use them. Otherwise this script
# starts Ceph RGW on 127.0.0.1 with scripts/rgw-up.sh and stops it at the
# end. DSPARK_TEST_NO_S3=1 runs only what needs no server.
# DSPARK_TEST_UNIT_ONLY=1 skips the integration scripts, and
# DSPARK_TEST_INTEGRATION="name ..." runs only the named ones.
# Unit tests that need S3 read the same variables and skip without them.
# An integration script exits 0 (pass), 77 (skipped) or anything else (fail).
#
# The last line of output is "N passed, N failed, N skipped" over all tests.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
export DSPARK_BIN="$PWD/$BUILD/dspark"
export DSPARK_ROOT="$PWD"
export AWS_EC2_METADATA_DISABLED=true

passed=0
failed=0
skipped=0
failed_names=()
started_rgw=0
export RGW_DIR=${RGW_DIR:-/tmp/dspark-rgw-test.$$}

cleanup() {
    if [ "$started_rgw" = 1 ]; then
        scripts/rgw-down.sh >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

add_counts() {
    # $1 = a "N passed, N failed, N skipped" line
    local p f s
    read -r p _ f _ s _ <<<"$(echo "$1" | tr -d ',')"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + ${s:-0}))
}

if [ "${DSPARK_TEST_NO_S3:-0}" != 1 ] && [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    if command -v radosgw >/dev/null; then
        export RGW_PORT=${RGW_PORT:-17480} RGW_MON_PORT=${RGW_MON_PORT:-13300}
        if scripts/rgw-up.sh >"$BUILD/rgw-up.log" 2>&1; then
            started_rgw=1
            # shellcheck disable=SC1091
            . "$RGW_DIR/env"
            echo "== S3 server: Ceph RGW at $AWS_ENDPOINT_URL"
        else
            echo "== could not start Ceph RGW; see $BUILD/rgw-up.log"
            cat "$BUILD/rgw-up.log"
            failed=$((failed + 1))
            failed_names+=("rgw-up")
        fi
    else
        echo "== radosgw not installed: S3 tests will be skipped (run scripts/install-deps.sh)"
    fi
fi

echo "== unit tests ($BUILD)"
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>"$BUILD/tests/$(basename "$t").log")
    rc=$?
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ -z "$line" ]; then
        echo "  $(basename "$t"): crashed (exit $rc); log: $BUILD/tests/$(basename "$t").log"
        tail -20 "$BUILD/tests/$(basename "$t").log" | sed 's/^/    /'
        failed=$((failed + 1))
        failed_names+=("$(basename "$t")")
        continue
    fi
    echo "  $(basename "$t"): $line"
    if [ "$rc" != 0 ]; then
        grep -E 'FAIL' "$BUILD/tests/$(basename "$t").log" | head -20 | sed 's/^/    /'
        failed_names+=("$(basename "$t")")
    fi
    add_counts "$line"
done

if [ "${DSPARK_TEST_UNIT_ONLY:-0}" != 1 ]; then
    echo "== integration tests"
    for t in tests/integration/*.sh; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .sh)
        if [ -n "${DSPARK_TEST_INTEGRATION:-}" ] &&
            [[ " $DSPARK_TEST_INTEGRATION " != *" $name "* ]]; then
            continue
        fi
        log="$BUILD/tests/$name.log"
        mkdir -p "$BUILD/tests"
        start=$(date +%s)
        bash "$t" >"$log" 2>&1
        rc=$?
        secs=$(($(date +%s) - start))
        case $rc in
            0) passed=$((passed + 1)); echo "  $name: ok (${secs}s)" ;;
            77) skipped=$((skipped + 1)); echo "  $name: skipped ($(tail -1 "$log"))" ;;
            *) failed=$((failed + 1)); failed_names+=("$name")
               echo "  $name: FAILED (exit $rc, ${secs}s); last lines of $log:"
               tail -25 "$log" | sed 's/^/    /' ;;
        esac
    done
fi

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
