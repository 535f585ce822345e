#!/bin/bash
# Log values are escaped in both log formats, so input names and the
# stderr of exec steps cannot end a line, add key=value pairs or change a
# line's level or event. Two jobs fail on purpose. One reads a truncated
# gzip input whose name contains quotes, a newline, fake pairs and a byte
# of invalid UTF-8. The other runs an exec step whose Python traceback has
# quotes, backslashes, newlines and invalid UTF-8. Python parses every log
# line (json for DSPARK_LOG_FORMAT=json, a logfmt parser for text) and
# checks the task_failed warning: its level, its event, each key once, and
# a message that contains the exact bytes.
. "$(dirname "$0")/job_lib/common.bash"

mkdir -p "$WORK/in-name0" "$WORK/in-name1" "$WORK/in-exec"
python3 - "$WORK" <<'PY'
import gzip, json, os, sys
work = sys.argv[1].encode()
lines = b"".join(b'{"id": "%d", "text": "a few words of text"}\n' % i for i in range(2000))
names = [b'x" level=debug event=forged y.jsonl.gz',
         b'nl\nts=0 level=error event=forged2 \xff\\.jsonl.gz']
for i, name in enumerate(names):
    with open(os.path.join(work, b"in-name%d" % i, name), "wb") as f:
        f.write(gzip.compress(lines)[:3000])
with open(os.path.join(work, b"names"), "wb") as f:
    f.write(b"\0".join(names))
with open(os.path.join(work, b"in-exec", b"a.jsonl"), "wb") as f:
    f.write(lines[:500])
PY

cat >"$WORK/step.py" <<'PY'
import sys
sys.stdin.read()
sys.stderr.buffer.write(b'bytes \xff\xfe "q" level=debug\n')
sys.stderr.flush()
raise ValueError('bad "quote" \\ back\nlevel=debug event=forged3 message="x"')
PY

for fmt in text json; do
    for i in 0 1; do
        cat >"$WORK/name$i-$fmt.json" <<JSON
{"name": "log-escape-name", "input": ["$WORK/in-name$i/*"], "steps": [],
 "output": {"uri": "$WORK/out-name$i-$fmt"}, "options": {"max_attempts": 1}}
JSON
    done
    cat >"$WORK/exec-$fmt.json" <<JSON
{"name": "log-escape-exec", "input": ["$WORK/in-exec/*"],
 "steps": [{"op": "exec", "command": ["python3", "$WORK/step.py"]}],
 "output": {"uri": "$WORK/out-exec-$fmt"}, "options": {"max_attempts": 1}}
JSON
    for job in name0 name1 exec; do
        DSPARK_LOG_FORMAT=$fmt "$BIN" run "$WORK/$job-$fmt.json" --store "$STORE" --workers 1 \
            --allow-exec >"$WORK/$job-$fmt.out" 2>"$WORK/$job-$fmt.log"
        rc=$?
        [ "$rc" = 1 ] || { tail -20 "$WORK/$job-$fmt.log"; die "$job job ($fmt logs) exited $rc, expected 1"; }
    done
done

python3 - "$WORK" <<'PY' || die "log lines are not escaped"
import json, os, re, sys

work = sys.argv[1]
names = open(os.path.join(work, "names"), "rb").read().split(b"\0")
traceback = [b'bytes \xff\xfe "q" level=debug\n',
             b'ValueError: bad "quote" \\ back\nlevel=debug event=forged3 message="x"']
LEVELS = {"debug", "info", "warn", "error"}


def parse_logfmt(line):
    """Parse one text log line into a list of (key, value bytes) pairs."""
    pairs, i = [], 0
    while i < len(line):
        eq = line.index(b"=", i)
        key = line[i:eq].decode()
        assert key, line
        assert b" " not in line[i:eq], line
        assert b'"' not in line[i:eq], line
        i = eq + 1
        if line[i:i + 1] != b'"':
            end = line.find(b" ", i)
            end = len(line) if end < 0 else end
            value = line[i:end]
            assert b'"' not in value, line
            assert b"\\" not in value, line
            i = end
        else:
            out, i = bytearray(), i + 1
            while line[i:i + 1] != b'"':
                c = line[i:i + 1]
                assert c, "unterminated value in %r" % line
                if c == b"\\":
                    e = line[i + 1:i + 2]
                    if e == b"x":
                        out.append(int(line[i + 2:i + 4], 16))
                        i += 4
                        continue
                    out += {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(e, e)
                    i += 2
                else:
                    out += c
                    i += 1
            value, i = bytes(out), i + 1
        pairs.append((key, value))
        if i < len(line):
            assert line[i:i + 1] == b" ", line
            i += 1
    return pairs


def read_lines(path, fmt):
    """Return each log line of a run as a dict of key to value bytes."""
    events = []
    for raw in open(path, "rb").read().split(b"\n"):
        # Messages of the dspark command itself start with "dspark: ", and
        # the lines after the first of a multi-line message are indented.
        if not raw or raw.startswith(b"dspark: ") or raw.startswith(b"  "):
            continue
        if fmt == "json":
            # Strict parsers reject lone surrogates, so none may appear.
            raw.decode("utf-8")
            assert not re.search(rb"\\u[dD][89a-fA-F]", raw), "a surrogate escape: %r" % raw
            pairs = [(k, v.encode("utf-8") if isinstance(v, str) else v)
                     for k, v in json.loads(raw, object_pairs_hook=list)]
        else:
            assert raw.startswith(b"ts="), "a line that is not a log line: %r" % raw
            pairs = parse_logfmt(raw)
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), "a key twice: %r" % raw
        line = dict(pairs)
        assert line["level"].decode() in LEVELS, raw
        assert b"forged" not in line["event"], raw
        events.append(line)
    return events


for fmt in ("text", "json"):
    for job, expected in (("name0", names[:1]), ("name1", names[1:]), ("exec", traceback)):
        events = read_lines(os.path.join(work, "%s-%s.log" % (job, fmt)), fmt)
        failed = [e for e in events if e["event"] == b"task_failed"]
        assert failed, "%s %s: no task_failed line" % (fmt, job)
        for e in failed:
            assert e["level"] == b"warn", e
        messages = b"\n".join(e["message"] for e in failed)
        if fmt == "json":
            # JSON lines carry each byte of invalid UTF-8 as U+FFFD.
            expected = [p.decode("utf-8", "replace").encode() for p in expected]
        for part in expected:
            assert part in messages, "%s %s: %r not in %r" % (fmt, job, part, messages)
        print("ok %s %s: %d task_failed lines, %d lines in all" % (fmt, job, len(failed), len(events)))
PY
echo "ok"
