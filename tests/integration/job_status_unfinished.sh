#!/bin/bash
# Status of a job no worker has touched yet: the text form prints zeros and
# exits 0, and the JSON form carries every documented counter.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 50 3
write_spec "$WORK/a.json" "$WORK/in/*.jsonl" "$WORK/out" 4000
id=$("$BIN" submit "$WORK/a.json" --store "$STORE") || die "submit failed"

"$BIN" status "$id" --store "$STORE" >"$WORK/status.txt" 2>"$WORK/status.err"
rc=$?
[ "$rc" = 0 ] || { cat "$WORK/status.err"; die "status of an unfinished job exited $rc"; }
grep -q "^job $id: running" "$WORK/status.txt" || { cat "$WORK/status.txt"; die "status text lacks the job line"; }
grep -q "^documents in 0, out 0, rejected 0; bytes in 0, out 0" "$WORK/status.txt" ||
    { cat "$WORK/status.txt"; die "status text lacks zero counters"; }

"$BIN" status "$id" --store "$STORE" --json >"$WORK/status.json" || die "status --json failed"
for field in records_in records_out records_rejected bytes_in bytes_out cpu_seconds \
             requests coord_requests retries; do
    [ "$(jq -r ".counters.$field | type" "$WORK/status.json")" = number ] ||
        die "counters.$field is missing from status --json of an unfinished job"
done
[ "$(jq -r '.counters.operators | type' "$WORK/status.json")" = array ] ||
    die "counters.operators is not an array"
echo "ok"
