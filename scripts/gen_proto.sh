#!/bin/sh
# Regenerate twisted_exec/wire/relay_pb2.py and relay_pb2.pyi from proto/.
#
#   scripts/gen_proto.sh [OUTDIR]        (default OUTDIR: twisted_exec/wire)
#
# Needs grpcio-tools (the "dev" extra); PYTHON selects the interpreter (default: python3).
# protoc names its output after the proto package (codex/exec_server/relay/v1_pb2.py); we
# generate into a scratch directory and copy that module under our own name. The module has no
# imports of other generated modules, so the rename is safe; the descriptor keeps the proto's
# own file name, codex.exec_server.relay.v1.proto.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/twisted_exec/wire"}
python=${PYTHON:-python3}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM

"$python" -m grpc_tools.protoc \
    --proto_path="$root/proto" \
    --python_out="$scratch" \
    --pyi_out="$scratch" \
    "$root/proto/codex.exec_server.relay.v1.proto"

cp "$scratch/codex/exec_server/relay/v1_pb2.py" "$out/relay_pb2.py"
# Without types-protobuf, google.protobuf is untyped (Any) for mypy --strict; say so in the stub.
{
    echo '# mypy: disable-error-code="misc,type-arg"'
    cat "$scratch/codex/exec_server/relay/v1_pb2.pyi"
} >"$out/relay_pb2.pyi"
