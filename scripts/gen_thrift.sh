#!/bin/sh
# Regenerate backends/impalad/gen/ from the vendored IDL in backends/impalad/thrift/.
#
# The IDL is impyla 0.24.0's trimmed copy of Impala's (Apache-2.0), with the
# `py` namespaces moved to backends.impalad.gen.*. The output is committed, so
# only whoever changes the IDL needs the compiler (Debian: thrift-compiler).
set -eu
cd "$(dirname "$0")/.."
THRIFT=${THRIFT:-thrift}
command -v "$THRIFT" >/dev/null || { echo "gen_thrift.sh: '$THRIFT' not found (apt-get install thrift-compiler)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for idl in backends/impalad/thrift/*.thrift; do
    "$THRIFT" --gen py:twisted -out "$tmp" "$idl"
done
rm -rf backends/impalad/gen
mv "$tmp/backends/impalad/gen" backends/impalad/gen
find backends/impalad/gen -name "*-remote" -delete
# The generator leaves out the package's own __init__; add it so imports work.
[ -f backends/impalad/gen/__init__.py ] || : > backends/impalad/gen/__init__.py
echo "generated backends/impalad/gen with $("$THRIFT" --version)"
