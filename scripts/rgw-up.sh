#!/bin/bash
# Start a throw-away single-node Ceph cluster (one monitor, one memstore OSD,
# no manager) and a radosgw S3 endpoint bound to 127.0.0.1, for tests and
# benchmarks. Debian 12 with Ceph 16.2 (Pacific).
#
# Environment (all optional):
#   RGW_DIR        state directory (default /tmp/dspark-rgw); must not exist
#   RGW_PORT       S3 port (default 7480); RGW_MON_PORT monitor port (3300)
#   RGW_ACCESS_KEY / RGW_SECRET_KEY   credentials of the test user
#   RGW_BUCKET     bucket to create (default dspark-test)
#
# On success writes $RGW_DIR/env with the AWS_* variables that point DSpark
# at the server, and prints "rgw ready: http://127.0.0.1:PORT".
# Stop it with scripts/rgw-down.sh (it kills the daemons by their PID files).
set -euo pipefail

D=${RGW_DIR:-/tmp/dspark-rgw}
PORT=${RGW_PORT:-7480}
MON_PORT=${RGW_MON_PORT:-3300}
AK=${RGW_ACCESS_KEY:-DSPARKTESTACCESS0001}
SK=${RGW_SECRET_KEY:-dsparktestsecret00000000000000000000001}
BUCKET=${RGW_BUCKET:-dspark-test}

trap 'echo "rgw-up: failed at line $LINENO; logs in $D/log" >&2' ERR

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool uuidgen curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "rgw-up: $tool not found; run scripts/install-deps.sh as root" >&2
        exit 1
    fi
done
if [ -e "$D" ]; then
    echo "rgw-up: $D already exists; run scripts/rgw-down.sh first" >&2
    exit 1
fi
if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then
    echo "rgw-up: port $PORT is already in use; set RGW_PORT" >&2
    exit 1
fi

mkdir -p "$D"/{mon,osd/ceph-0,run,log}
CONF="$D/ceph.conf"
FSID=$(uuidgen)
cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mon warn on insecure global id reclaim allowed = false
# Pool creation waits for map updates; these make RGW's first start quick.
mon osd prime pg temp = false
paxos propose interval = 0.05
[mon]
admin socket = $D/run/\$name.asok
mon data = $D/mon/\$cluster-\$id
[osd]
admin socket = $D/run/\$name.asok
osd data = $D/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 6442450944
osd memory target = 1073741824
[client.rgw.a]
admin socket = $D/run/\$name.asok
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw thread pool size = 64
# Reclaim deleted tail objects after 10 s instead of 2 h: memstore keeps
# them in memory, and tests write and delete gigabytes.
rgw gc obj min wait = 10
rgw gc processor period = 10
CONF

KEYRING="$D/keyring"
ceph-authtool --create-keyring "$KEYRING" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' \
    --cap mgr 'allow profile osd' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' \
    --cap mgr 'allow rw' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null

ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$KEYRING"
ceph-mon -c "$CONF" -i a 2>>"$D/log/stderr.log"
CEPH="ceph -c $CONF --connect-timeout 30"
$CEPH -s >/dev/null

OSD_UUID=$(uuidgen)
$CEPH osd new "$OSD_UUID" 0 >/dev/null
cp "$KEYRING" "$D/osd/ceph-0/keyring"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>>"$D/log/mkfs.log"
ceph-osd -c "$CONF" -i 0 2>>"$D/log/stderr.log"
for _ in $(seq 120); do
    $CEPH osd stat 2>/dev/null | grep -q '1 up' && break
    sleep 0.5
done
$CEPH osd stat | grep -q '1 up'

radosgw -c "$CONF" -n client.rgw.a 2>>"$D/log/stderr.log"
radosgw-admin -c "$CONF" user create --uid=dspark-test --display-name=dspark-test \
    --access-key="$AK" --secret-key="$SK" >/dev/null
for _ in $(seq 120); do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/" && break
    sleep 0.5
done
curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/"

# Create the test bucket with a SigV4-signed PUT (curl >= 7.75 signs, but
# S3 also needs the payload hash header, here that of the empty body).
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
curl -sf --max-time 30 -X PUT --user "$AK:$SK" --aws-sigv4 "aws:amz:us-east-1:s3" \
    -H "x-amz-content-sha256: $EMPTY_SHA256" "http://127.0.0.1:$PORT/$BUCKET" -o /dev/null

cat >"$D/env" <<ENV
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export DSPARK_TEST_S3_BUCKET=$BUCKET
ENV
echo "rgw ready: http://127.0.0.1:$PORT bucket=$BUCKET env=$D/env"
