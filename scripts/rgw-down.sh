#!/bin/bash
# Stop the daemons that scripts/rgw-up.sh started, by the PIDs in their PID
# files, and delete the cluster's state. The state is thrown away, so the
# default signal is KILL; SIG=TERM stops them gently (about 2 s each).
set -u
D=${RGW_DIR:-/tmp/dspark-rgw}
SIG=${SIG:-KILL}
[ -d "$D" ] || exit 0

gone() {
    # A killed daemon may stay a zombie until init reaps it; that counts as gone.
    [ ! -r "/proc/$1/stat" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

for name in client.rgw.a osd.0 mon.a; do
    pidfile="$D/run/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
        ceph-mon | ceph-osd | radosgw) ;;
        *) continue ;;
    esac
    kill -"$SIG" "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do
        gone "$pid" && break
        sleep 0.05
    done
    gone "$pid" || kill -9 "$pid" 2>/dev/null
done
rm -rf "$D"
echo "rgw stopped"
