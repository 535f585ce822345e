#!/bin/bash
# docs/spec.md against the spec parser, through `dspark explain`.
#
# It reads the member tables of docs/spec.md (tables whose header starts
# with "| member |") and checks that:
# - the documented members are exactly those in the field lists of
#   planner/spec.c (top_fields, output_fields, option_fields);
# - the parser accepts each documented member: a value of the wrong type is
#   rejected with an error that names the member, not "unknown field";
# - setting a member to its documented default plans the same job as
#   leaving it out. The input is a 200 MiB sparse plain JSONL file, so
#   target_task_bytes shows in the task count, target_shard_bytes and
#   lease_seconds show in the `explain --json` output. NOTE: defaults that
#   do not change the plan (text_field, max_attempts, max_record_bytes,
#   ...) are only checked for being accepted, because only a run shows them;
# - integer and size ranges written as "`A` to `B`" hold at both ends;
# - choices written as "one of `"a"`, `"b"`" are exactly the values that
#   the parser accepts and lists in its error.
set -u
DSPARK_BIN=${DSPARK_BIN:?set DSPARK_BIN to the dspark binary}
DSPARK_ROOT=${DSPARK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
export AWS_EC2_METADATA_DISABLED=true

work=$(mktemp -d /tmp/dspark-spec-doc.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
# Sparse, so it takes no disk space. Planning reads only its first bytes.
truncate -s 200M "$work/in/big.jsonl"

python3 - "$DSPARK_BIN" "$DSPARK_ROOT" "$work" <<'EOF'
import json, re, subprocess, sys

dspark, root, work = sys.argv[1:4]
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message, file=sys.stderr)


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


# Member rows of docs/spec.md: path -> {"type", "default", "values"}.
documented = {}
in_table = False
with open(root + "/docs/spec.md") as f:
    for line in f:
        if not line.startswith("|"):
            in_table = False
            continue
        row = cells(line)
        if row[0] == "member":
            in_table = True
            continue
        if not in_table or set(row[0]) <= set("-"):
            continue
        m = re.fullmatch(r"`([a-z_.]+)`", row[0])
        if not m:
            fail("docs/spec.md: member cell %r is not one `name`" % row[0])
            continue
        documented[m.group(1)] = {"type": row[1], "default": row[2], "values": row[3]}

# Accepted members: the field lists of planner/spec.c.
with open(root + "/planner/spec.c") as f:
    source = f.read()
accepted = set()
for array, prefix in (("top_fields", ""), ("output_fields", "output."),
                      ("option_fields", "options.")):
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % array, source, re.S)
    if not m:
        fail("planner/spec.c: no array %s; update this test" % array)
        continue
    accepted |= {prefix + name for name in re.findall(r'"([^"]+)"', m.group(1))}

for path in sorted(accepted - set(documented)):
    fail("%s: accepted by planner/spec.c but not in docs/spec.md" % path)
for path in sorted(set(documented) - accepted):
    fail("%s: in docs/spec.md but not accepted by planner/spec.c" % path)

BASE = {"name": "spec-doc", "input": work + "/in/big.jsonl",
        "output": {"uri": work + "/out"}}


def spec_with(path, value):
    spec = json.loads(json.dumps(BASE))
    parts = path.split(".")
    node = spec
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return spec


def differences(a, b, path=""):
    """List the paths where two explain documents differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            found += differences(a.get(key), b.get(key), path + "." + key if path else key)
        return found
    return [] if a == b else ["%s: %s instead of %s" % (path, json.dumps(a), json.dumps(b))]


def explain(spec):
    """Run `dspark explain --json` and return (exit code, output JSON or None, stderr)."""
    with open(work + "/spec.json", "w") as f:
        json.dump(spec, f)
    p = subprocess.run([dspark, "explain", work + "/spec.json", "--json"],
                       capture_output=True, text=True, cwd=work)
    out = json.loads(p.stdout) if p.returncode == 0 else None
    if out:
        out.pop("spec_hash", None)
    return p.returncode, out, p.stderr.strip()


rc, base_out, err = explain(BASE)
if rc != 0:
    print("FAIL: the base spec does not plan: " + err, file=sys.stderr)
    sys.exit(1)
if base_out["total_tasks"] != 4:
    fail("200 MiB at 64 MiB per task: expected 4 tasks, got %s" % base_out["total_tasks"])

# The wrong-type check below can tell a known member from an unknown one.
rc, _, err = explain(spec_with("options.no_such_option", [[]]))
if rc != 2 or "unknown field" not in err:
    fail("options.no_such_option: expected an unknown field error, got %d: %s" % (rc, err))

for path, row in sorted(documented.items()):
    if path not in accepted:
        continue

    # A list of a list is the wrong type for every member.
    rc, _, err = explain(spec_with(path, [[]]))
    if rc != 2 or "unknown field" in err or "spec.json: " + path not in err:
        fail("%s: a wrong type gave exit %d: %s" % (path, rc, err))

    m = re.match(r"`([^`]+)`", row["default"])
    if m:
        default = json.loads(m.group(1))
        rc, out, err = explain(spec_with(path, default))
        if rc != 0:
            fail("%s: documented default %s is rejected: %s" % (path, m.group(1), err))
        elif out != base_out:
            fail("%s: documented default %s plans another job than no value: %s"
                 % (path, m.group(1), "; ".join(differences(out, base_out))))
    elif row["default"] != "required":
        fail("%s: default %r is neither `JSON` nor required" % (path, row["default"]))

    m = re.fullmatch(r"`(-?\d+)` to `(-?\d+)`( bytes)?", row["values"])
    if m and row["type"] in ("integer", "size"):
        low, high = int(m.group(1)), int(m.group(2))
        for value, ok in ((low, True), (high, True), (low - 1, False), (high + 1, False)):
            if value > 2 ** 53:
                continue  # JSON numbers above 2^53 are not exact
            rc, _, err = explain(spec_with(path, value))
            if ok and rc != 0:
                fail("%s: %d is documented as allowed but rejected: %s" % (path, value, err))
            if not ok and (rc != 2 or "spec.json: " + path not in err):
                fail("%s: %d is outside the documented range but gave exit %d: %s"
                     % (path, value, rc, err))

    if row["values"].startswith("one of "):
        choices = [json.loads(v) for v in re.findall(r"`([^`]+)`", row["values"])]
        for value in choices:
            rc, _, err = explain(spec_with(path, value))
            if rc != 0:
                fail("%s: documented value %r is rejected: %s" % (path, value, err))
        rc, _, err = explain(spec_with(path, "no-such-value"))
        listed = re.search(r"expected one of (.*)$", err)
        if rc != 2 or not listed:
            fail("%s: an invalid value gave exit %d: %s" % (path, rc, err))
        elif re.findall(r'"([^"]*)"', listed.group(1)) != choices:
            fail("%s: the parser expects %s, docs/spec.md lists %s"
                 % (path, listed.group(1), choices))

print("spec_doc.sh: checked %d documented members" % len(documented))
sys.exit(1 if failures else 0)
EOF
rc=$?
if [ "$rc" != 0 ]; then
    echo "spec_doc.sh: docs/spec.md and the spec parser disagree"
    exit 1
fi
echo "spec_doc.sh: all checks passed"
exit 0
