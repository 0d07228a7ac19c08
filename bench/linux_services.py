"""Linux's own discard (9), chargen (19) and echo (7) services, for the reference path of
bench/tap_bench.py (not a test).

    ip netns exec NS python bench/linux_services.py

The kernel does all of the TCP work; a thread per connection only moves bytes, the same
job wirestack's services do on top of its own stack.  Prints "ready" once listening and
runs until SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

CHUNK = 256 * 1024


def discard(c: socket.socket) -> None:
    buf = bytearray(CHUNK)
    while c.recv_into(buf):
        pass


def chargen(c: socket.socket) -> None:
    data = b"\xa5" * CHUNK
    try:
        while True:
            c.sendall(data)
    except OSError:
        pass


def echo(c: socket.socket) -> None:
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(65536)
        if not b:
            return
        c.sendall(b)


def serve(port: int, handler) -> None:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(512)

    def one(c: socket.socket) -> None:
        with c:
            try:
                handler(c)
            except OSError:
                pass

    def loop() -> None:
        while True:
            c, _ = ls.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def main() -> int:
    for port, handler in ((9, discard), (19, chargen), (7, echo)):
        serve(port, handler)
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.exit(main())
