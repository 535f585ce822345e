#!/bin/bash
# A job name of the maximum 64 characters works with explain, submit and
# run. run's default id adds the spec hash, the time and random digits to
# the name. So run cuts the name to keep the id within the 64 characters of
# a job id, and two runs of the same spec still get different ids.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in"
gen_jsonl "$WORK/in/a.jsonl" 200 3
name=$(printf 'long-job-name-%050d' 7)
[ "${#name}" = 64 ] || die "the test name has ${#name} characters"

write_spec "$WORK/spec.json" "$WORK/in/*.jsonl" "$WORK/out" 100000
jq --arg name "$name" '.name = $name' "$WORK/spec.json" >"$WORK/long.json"

"$BIN" explain "$WORK/long.json" >"$WORK/explain.out" 2>&1 || { cat "$WORK/explain.out"; die "explain failed"; }

"$BIN" submit "$WORK/long.json" --store "$STORE" >"$WORK/submit.out" 2>"$WORK/submit.err" ||
    { cat "$WORK/submit.err"; die "submit of a 64-character name failed"; }
submitted=$(cat "$WORK/submit.out")
[ "${#submitted}" -le 64 ] || die "submit made an id of ${#submitted} characters: $submitted"
"$BIN" cancel "$submitted" --store "$STORE" >/dev/null 2>&1 || die "cancel $submitted failed"

ids=()
for i in 1 2; do
    "$BIN" run "$WORK/long.json" --store "$STORE" --workers 1 >"$WORK/run$i.out" 2>"$WORK/run$i.err" ||
        { tail -5 "$WORK/run$i.err"; die "run $i of a 64-character name failed"; }
    id=$(sed -n 's/^dspark: job \([^:]*\): .*/\1/p' "$WORK/run$i.err" | head -1)
    [ -n "$id" ] || { cat "$WORK/run$i.err"; die "run $i printed no job id"; }
    [ "${#id}" -le 64 ] || die "run made an id of ${#id} characters: $id"
    case "$id" in
        "${name:0:29}"-*) ;;
        *) die "run's id $id does not start with the first 29 characters of the name" ;;
    esac
    [ -f "$WORK/out/_SUCCESS" ] || die "run $i published no output"
    ids+=("$id")
done
[ "${ids[0]}" != "${ids[1]}" ] || die "two runs got the same id ${ids[0]}"
echo "ok: submit id $submitted, run ids ${ids[*]}"
