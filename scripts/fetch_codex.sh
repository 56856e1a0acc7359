#!/bin/sh
# Fetch the reference Codex CLI 0.131.0 (linux x64) into ./vendor/codex-0.131.0/ and print the
# path of its binary.  Idempotent: a second run only prints the path.  Needs npm and tar.
# The end-to-end test (tests/test_codex_cli_e2e.py) finds the binary there.
set -eu

VERSION="0.131.0"
PACKAGE="@openai/codex@${VERSION}-linux-x64"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${ROOT}/vendor/codex-${VERSION}"
BIN="${DEST}/package/vendor/x86_64-unknown-linux-musl/codex/codex"

if [ -x "${BIN}" ]; then
    echo "${BIN}"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) echo "fetch_codex.sh: only linux x86_64 is supported (got $(uname -s)-$(uname -m))" >&2
       exit 1 ;;
esac

mkdir -p "${DEST}"
WORK="$(mktemp -d "${DEST}/.fetch.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT INT TERM

# npm pack downloads the tarball without installing anything or running package scripts.
(cd "${WORK}" && npm pack --silent "${PACKAGE}" >/dev/null)
TARBALL="$(ls "${WORK}"/*.tgz)"
tar -xzf "${TARBALL}" -C "${WORK}"
test -x "${WORK}/package/vendor/x86_64-unknown-linux-musl/codex/codex"
rm -rf "${DEST}/package"
mv "${WORK}/package" "${DEST}/package"
echo "${BIN}"
