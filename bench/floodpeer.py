"""A harness that opens N streams as fast as it can and never reads (run as its own process).

    python bench/floodpeer.py HOST PORT EXECUTOR_ID TOKEN N
    python bench/floodpeer.py probe HOST PORT SECONDS

It upgrades ``/harness/EXECUTOR_ID`` with the bearer, shrinks its receive buffer so that the
rendezvous's replies back up at once, writes N ``resume`` frames on distinct stream ids (each
a masked binary websocket frame) and prints ``sent N`` when done; it then waits for stdin to
close. Plain blocking sockets on purpose: it is the attacker, not part of the system.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from twisted_exec.wire.frames import encodeResume


def frame(payload: bytes) -> bytes:
    """One masked binary frame; a zero mask keeps the payload bytes as they are."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x82, 0x80 | length)
    else:
        head = struct.pack("!BBH", 0x82, 0x80 | 126, length)
    return head + b"\0\0\0\0" + payload


def probe(host: str, port: int, seconds: float) -> None:
    """``probe HOST PORT SECONDS``: GET /readyz every 20 ms; prints each latency (ms), one
    per line, as soon as it is measured (the test reads them live)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.monotonic()
        with socket.create_connection((host, port), timeout=30) as conn:
            conn.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
        status = reply.split(b" ", 2)[1].decode() if b" " in reply else "none"
        print(f"{(time.monotonic() - began) * 1000:.1f} {status}", flush=True)
        time.sleep(0.02)


def main() -> None:
    if sys.argv[1] == "probe":
        probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        return
    host, port, executorId, token, count = sys.argv[1:6]
    # The flood is the attacker: on 2 cores it must not win the CPU from the rendezvous and the
    # prober it is measured against (what is measured is the rendezvous's loop, not the kernel's
    # scheduling of three busy processes). Its frames still all arrive.
    os.nice(10)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        (
            f"GET /harness/{executorId} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"closed during the upgrade: {reply[:200]!r}")
        reply += chunk
    status = reply.split(b"\r\n")[0]
    if b" 101 " not in status:
        raise SystemExit(f"upgrade refused: {status!r}")
    frames = [frame(encodeResume(f"flood-{i:06d}")) for i in range(int(count))]
    sent = 0
    try:
        for start in range(0, len(frames), 1000):
            sock.sendall(b"".join(frames[start : start + 1000]))
            sent = min(start + 1000, len(frames))
        print(f"sent {sent}", flush=True)
    except OSError:  # the rendezvous closed the flood's websocket
        print(f"cut off after {sent}", flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
