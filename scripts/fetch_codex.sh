#!/bin/sh
# Fetch the reference Codex CLIs (linux x64) into ./vendor/codex-VERSION/ and print the path of
# each binary.  With no argument both generations we serve are fetched (0.131.0 and 0.171.0);
# with arguments, just those versions.  Idempotent: a second run only prints the paths.
# Needs npm and tar.  The end-to-end tests (tests/test_codex_cli_e2e*.py) find the binaries there.
set -eu

if [ "$#" -eq 0 ]; then
    set -- 0.131.0 0.171.0
fi
if [ "$#" -gt 1 ]; then
    status=0
    for v in "$@"; do
        sh "$0" "$v" || status=1
    done
    exit "$status"
fi

VERSION="$1"
PACKAGE="@openai/codex@${VERSION}-linux-x64"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${ROOT}/vendor/codex-${VERSION}"
# 0.131 ships the binary as vendor/<triple>/codex/codex, 0.171 as vendor/<triple>/bin/codex
# (codex-package.json names it); ./vendor/codex-VERSION/codex is a stable link to either.
BIN="${DEST}/codex"

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
TRIPLE="package/vendor/x86_64-unknown-linux-musl"
if [ -x "${WORK}/${TRIPLE}/codex/codex" ]; then
    REL="${TRIPLE}/codex/codex"
elif [ -x "${WORK}/${TRIPLE}/bin/codex" ]; then
    REL="${TRIPLE}/bin/codex"
else
    echo "fetch_codex.sh: no codex binary in ${PACKAGE}" >&2
    exit 1
fi
rm -rf "${DEST}/package"
mv "${WORK}/package" "${DEST}/package"
ln -sf "${REL}" "${BIN}"
echo "${BIN}"
