#!/bin/sh
# Install the Debian packages that DSpark needs to build, test and run its
# test S3 server (Ceph RGW). Does nothing when everything is present.
# Usage: scripts/install-deps.sh        (as root on Debian 12)
set -eu

BUILD_PKGS="gcc make pkg-config libcurl4-openssl-dev libssl-dev libzstd-dev zlib1g-dev \
libcjson-dev libutf8proc-dev libcld2-dev libgumbo-dev libxxhash-dev libpcre2-dev"
TEST_PKGS="ceph-mon ceph-osd ceph-common radosgw uuid-runtime curl zstd gzip python3 shellcheck procps \
jq python3-yaml time faketime"

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root, or install them with apt-get" >&2
    exit 1
fi

echo "install-deps: installing$missing"
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
