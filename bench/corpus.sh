#!/usr/bin/env bash
# Build a benchmark corpus of real text as zstd JSONL from Debian
# documentation packages (downloaded with `apt-get download`, unpacked with
# `dpkg -x`, never installed).
#
#   bench/corpus.sh                 ~1 GiB corpus: bench/data/corpus.jsonl.zst
#   bench/corpus.sh linux-doc       linux-doc 6.1 + 6.12 only:
#                                   bench/data/linux-doc.jsonl.zst
#
# Environment: CORPUS_BYTES (uncompressed text bytes to stop at, default
# 1073741824), CORPUS_DIR (default bench/data). Files are cached: a second
# run reuses the downloads and the finished corpus. One record per file:
# {"id": "<package>/<path>", "text": "..."}; HTML is reduced to its text,
# gzip-compressed files are decompressed, binary files are skipped.
# Records come in a fixed order (packages as listed, paths sorted), so the
# same packages give the same corpus.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CORPUS_DIR:-$root/bench/data}
target=${CORPUS_BYTES:-1073741824}
kind=${1:-full}

case "$kind" in
full)
    out=$dir/corpus.jsonl.zst
    # linux-doc comes first in both versions, so the corpus has real exact
    # and near duplicates; the others add different kinds of text.
    packages="linux-doc-6.1 linux-doc-6.12 python3.11-doc rust-doc openjdk-17-doc
              debian-reference-en debian-reference-de debian-reference-fr
              debian-reference-ja manpages manpages-dev manpages-de manpages-fr
              libreoffice-help-en-us libreoffice-help-de libreoffice-help-fr
              libreoffice-help-es libreoffice-help-it libreoffice-help-ja
              postgresql-doc-15 perl-doc git-doc ruby3.1-doc
              libreoffice-help-pt libreoffice-help-pt-br libreoffice-help-ru
              libreoffice-help-zh-cn libreoffice-help-zh-tw libreoffice-help-ko
              libreoffice-help-nl libreoffice-help-pl libreoffice-help-sv
              libreoffice-help-da libreoffice-help-fi libreoffice-help-nb
              libreoffice-help-cs libreoffice-help-hu libreoffice-help-tr
              libreoffice-help-el libreoffice-help-ca libreoffice-help-sl
              libreoffice-help-et libreoffice-help-uk
              boost1.74-doc libstdc++-12-doc golang-1.19-doc llvm-15-doc
              manpages-es manpages-it manpages-ja manpages-pl manpages-pt-br
              manpages-ru manpages-nl libreoffice-help-en-gb libreoffice-help-sk
              libreoffice-help-vi libreoffice-help-gl libreoffice-help-eu
              libreoffice-help-bg libreoffice-help-id libreoffice-help-lt
              libreoffice-help-lv libreoffice-help-he libreoffice-help-hi
              libreoffice-help-km libreoffice-help-ta libreoffice-help-si
              libreoffice-help-bn libreoffice-help-gu libreoffice-help-is
              libreoffice-help-mk libreoffice-help-dz libreoffice-help-om"
    ;;
linux-doc)
    out=$dir/linux-doc.jsonl.zst
    packages="linux-doc-6.1 linux-doc-6.12"
    target=0
    ;;
*)
    echo "usage: $0 [full|linux-doc]" >&2
    exit 2
    ;;
esac

if [ -s "$out" ]; then
    echo "corpus: $out exists, reusing it" >&2
    exit 0
fi

mkdir -p "$dir/debs" "$dir/unpacked"
for p in $packages; do
    if ! ls "$dir/debs/${p}_"*.deb >/dev/null 2>&1; then
        (cd "$dir/debs" && apt-get download "$p" >/dev/null 2>&1) ||
            echo "corpus: apt-get download $p failed, skipping it (run apt-get update?)" >&2
    fi
    deb=$(ls "$dir/debs/${p}_"*.deb 2>/dev/null | head -1 || true)
    if [ -n "$deb" ] && [ ! -d "$dir/unpacked/$p" ]; then
        dpkg -x "$deb" "$dir/unpacked/$p.tmp" && mv "$dir/unpacked/$p.tmp" "$dir/unpacked/$p"
    fi
done

python3 - "$dir/unpacked" "$target" "$out.tmp" $packages <<'EOF'
import gzip, html, json, os, re, subprocess, sys

base, target, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
packages = sys.argv[4:]
text_ext = ('.txt', '.rst', '.md', '.html', '.htm', '.xhtml', '.tex', '.py', '.c', '.h')
tag = re.compile(r'<script.*?</script>|<style.*?</style>|<[^>]+>', re.S | re.I)
blank = re.compile(r'\n\s*\n\s*\n+')

def load(path):
    name = path[:-3] if path.endswith('.gz') else path
    data = gzip.open(path).read() if path.endswith('.gz') else open(path, 'rb').read()
    is_man = re.search(r'/man\d?/', path) is not None or re.search(r'\.\d\w*$', name)
    if not (name.lower().endswith(text_ext) or is_man):
        return None
    if b'\0' in data[:4096]:
        return None
    text = data.decode('utf-8', 'replace')
    if name.lower().endswith(('.html', '.htm', '.xhtml')):
        text = blank.sub('\n\n', html.unescape(tag.sub(' ', text)))
    return text

zstd = subprocess.Popen(['zstd', '-q', '-3', '-T1', '-o', out, '-f'], stdin=subprocess.PIPE)
total = docs = 0
for p in packages:
    top = os.path.join(base, p)
    if not os.path.isdir(top):
        continue
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs)
    for path in paths:
        if os.path.islink(path):
            continue
        try:
            text = load(path)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        if not text or not text.strip():
            continue
        line = json.dumps({'id': p + '/' + os.path.relpath(path, top), 'text': text},
                          ensure_ascii=False) + '\n'
        zstd.stdin.write(line.encode('utf-8'))
        total += len(line.encode('utf-8'))
        docs += 1
        if target and total >= target:
            break
    if target and total >= target:
        break
zstd.stdin.close()
if zstd.wait() != 0:
    sys.exit('corpus: zstd failed')
print(f'corpus: {docs} documents, {total} bytes of JSONL', file=sys.stderr)
EOF
mv "$out.tmp" "$out"
echo "corpus: wrote $out" >&2
