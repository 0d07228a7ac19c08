"""ping, in the style of iputils ping: the same lines, the same statistics."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from ..iface.icmp import EchoReply


@dataclass
class PingResult:
    dst: str
    transmitted: int = 0
    received: int = 0
    duplicates: int = 0
    errors: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    elapsed_ms: float = 0.0
    interrupted: bool = False

    @property
    def loss_percent(self) -> float:
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted

    def summary_lines(self) -> list[str]:
        lines = [f"--- {self.dst} ping statistics ---"]
        parts = [f"{self.transmitted} packets transmitted", f"{self.received} received"]
        if self.duplicates:
            parts.append(f"+{self.duplicates} duplicates")
        if self.errors:
            parts.append(f"+{self.errors} errors")
        parts.append(f"{self.loss_percent:.4g}% packet loss")
        parts.append(f"time {self.elapsed_ms:.0f}ms")
        lines.append(", ".join(parts))
        if self.rtts_ms:
            n = len(self.rtts_ms)
            avg = sum(self.rtts_ms) / n
            # iputils' mdev: the standard deviation sqrt(E[x^2] - E[x]^2).
            mdev = math.sqrt(max(0.0, sum(r * r for r in self.rtts_ms) / n - avg * avg))
            lines.append(f"rtt min/avg/max/mdev = {min(self.rtts_ms):.3f}/{avg:.3f}/"
                         f"{max(self.rtts_ms):.3f}/{mdev:.3f} ms")
        return lines


def _payload(size: int) -> bytes:
    # iputils fills the data with a rising byte pattern; we do the same (no real time inside).
    return bytes(i & 0xFF for i in range(size))


MAX_PAYLOAD = 65507   # 65535 - 20 (IPv4 header) - 8 (ICMP header): iputils refuses more


async def ping(runtime, dst: str, count: int = 4, interval: float = 1.0, size: int = 56,
               timeout: float = 2.0, on_line=None, ttl: int | None = None,
               first_seq: int = 1) -> PingResult:
    """Send ``count`` echo requests ``interval`` seconds apart; wait up to ``timeout`` after
    the last for stragglers. ``on_line(str)`` receives each line as iputils would print it.

    The ICMP sequence number has 16 bits: request number ``first_seq + i`` goes out as
    ``(first_seq + i) mod 65536``, and its bookkeeping (send time, "already answered") is
    reset when the number is used again, as iputils does, so a long run never mistakes a
    reply for a duplicate of one 65,536 requests earlier. ``first_seq`` only exists to test
    the wrap without sending 65,536 requests.

    Cancelling the task (Ctrl-C) stops sending and still prints the statistics, as iputils
    does on SIGINT; the result says ``interrupted``."""
    if not 0 <= size <= MAX_PAYLOAD:
        raise ValueError(f"invalid -s value: {size} (0 to {MAX_PAYLOAD} bytes)")
    loop = runtime.loop
    emit = on_line or (lambda line: None)
    sock = runtime.ping_socket()
    result = PingResult(dst)
    payload = _payload(size)
    sent_at: dict[int, int] = {}   # 16-bit seq -> send time, ns on the host's clock
    seen: set[int] = set()         # 16-bit seqs answered since they were last sent
    emit(f"PING {dst} ({dst}) {size}({size + 28}) bytes of data.")
    start = runtime.now_ns()
    last_sent = last_reply = start
    all_answered = asyncio.Event()

    async def receiver():
        nonlocal last_reply
        while True:
            item = await sock.receive()
            if isinstance(item, EchoReply):
                t0 = sent_at.get(item.seq)
                if t0 is None:
                    continue
                rtt_ms = (item.time - t0) / 1e6  # arrival stamped by the host, same clock
                last_reply = max(last_reply, item.time)
                dup = item.seq in seen
                if dup:
                    result.duplicates += 1
                else:
                    seen.add(item.seq)
                    result.received += 1
                    result.rtts_ms.append(rtt_ms)
                emit(f"{item.size} bytes from {dst}: icmp_seq={item.seq} ttl={item.ttl} "
                     f"time={_fmt_ms(rtt_ms)} ms{' (DUP!)' if dup else ''}")
                if result.received == count:
                    all_answered.set()
            else:
                result.errors += 1
                emit(item.describe())

    task = loop.create_task(receiver())
    try:
        for i in range(count):
            seq = (first_seq + i) & 0xFFFF
            last_sent = sent_at[seq] = runtime.now_ns()
            seen.discard(seq)
            try:
                sock.send(dst, seq, payload, ttl)
            except OSError as err:
                emit(f"ping: sendmsg: {err.strerror or err}")
                result.errors += 1
            result.transmitted += 1
            if i + 1 < count:
                await asyncio.sleep(interval)
        # Wait up to `timeout` for the replies still missing (iputils' -W), then stop listening.
        try:
            await asyncio.wait_for(all_answered.wait(), timeout)
        except asyncio.TimeoutError:
            pass
    except asyncio.CancelledError:
        # Ctrl-C: the statistics of what was sent so far, then return normally.
        result.interrupted = True
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
    finally:
        task.cancel()
        sock.close()
    # Like iputils: from the first request to the last request or reply, whichever is later.
    result.elapsed_ms = (max(last_sent, last_reply) - start) / 1e6
    emit("")
    for line in result.summary_lines():
        emit(line)
    return result


def _fmt_ms(ms: float) -> str:
    """iputils' precision: 3 decimals below 1 ms, 2 below 10 ms, 1 below 100 ms, else none."""
    us = round(ms * 1000)
    if us >= 100_000 - 50:
        return f"{(us + 500) // 1000}"
    if us >= 10_000 - 5:
        return f"{(us + 50) // 1000}.{((us + 50) % 1000) // 100}"
    if us >= 1_000:
        return f"{(us + 5) // 1000}.{((us + 5) % 1000) // 10:02d}"
    return f"{us // 1000}.{us % 1000:03d}"
