"""The reference path for bench/tap_bench.py: a TAP-to-TAP frame forwarder (not a test).

    python bench/tap_forwarder.py NS_A NS_B [--ip-a 198.18.1.1/24 --ip-b 198.18.1.2/24]

It opens one TAP device in each of two existing network namespaces, gives the kernel in
each an address, prints "ready" and then copies every frame read from one device to the
other until SIGTERM.  Linux TCP between the two namespaces then crosses one Python process
that does the least any user-space endpoint must do per frame -- wake up (epoll), read(),
write() -- and no protocol work at all.  That is the speed a pure-Python stack on a TAP
device is compared with: it shares the machine, the interpreter and the kernel's TAP code
with wirestack, so day-to-day drift moves both.

A frame the other side's queue refuses (EAGAIN/ENOBUFS) is dropped, as a wire would.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from wirestack.phy.tap import TapDevice  # noqa: E402  (only to open and configure the devices)

BATCH = 64          # frames copied per wake-up and direction before epoll is asked again
BUFSIZE = 1518 + 4  # one Ethernet frame at MTU 1500 (plus a VLAN tag): offloads are off


def forward(fd_a: int, fd_b: int) -> None:
    ep = select.epoll()
    ep.register(fd_a, select.EPOLLIN)
    ep.register(fd_b, select.EPOLLIN)
    other = {fd_a: fd_b, fd_b: fd_a}
    read, write = os.read, os.write

    def stop(*_: object) -> None:
        # Raise rather than set a flag: since PEP 475 epoll.poll() resumes by itself after a
        # handler returns, so a flag would not be seen until the next frame arrived.
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            for fd, _mask in ep.poll():
                out = other[fd]
                for _ in range(BATCH):
                    try:
                        frame = read(fd, BUFSIZE)
                    except BlockingIOError:
                        break
                    try:
                        write(out, frame)
                    except OSError:
                        pass    # the receiving kernel's queue is full: the frame is lost
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ns_a")
    ap.add_argument("ns_b")
    ap.add_argument("--ip-a", default="198.18.1.1/24")
    ap.add_argument("--ip-b", default="198.18.1.2/24")
    ap.add_argument("--tap", default="wsfwd0")
    args = ap.parse_args()
    a = TapDevice(args.tap, netns=args.ns_a)
    b = TapDevice(args.tap, netns=args.ns_b)
    a.configure_peer(args.ip_a)
    b.configure_peer(args.ip_b)
    print("ready", flush=True)
    try:
        forward(a.fileno(), b.fileno())
    finally:
        a.close()
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
