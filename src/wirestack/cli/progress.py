"""A progress bar for long transfers: on stderr, only on a terminal, only once the transfer
has run for a second (short runs stay quiet), never with --quiet. No dependency."""

from __future__ import annotations

import sys
import time

WIDTH = 30


class Progress:
    def __init__(self, label: str, enabled: bool = True, stream=None, delay: float = 1.0):
        self.stream = stream or sys.stderr
        self.label = label
        self.enabled = enabled and _is_tty(self.stream)
        self.start = time.monotonic()
        self.delay = delay
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int = 0) -> None:
        """``total`` 0: unknown (a body without Content-Length), only the bytes so far."""
        if not self.enabled:
            return
        t = time.monotonic()
        if t - self.start < self.delay or (t - self.last < 0.1 and (not total or done < total)):
            return
        self.last = t
        if total > 0:
            filled = WIDTH * done // total
            self.stream.write(f"\r{self.label} [{'#' * filled}{' ' * (WIDTH - filled)}] "
                              f"{100 * done // total:3d}% {done:,}/{total:,} bytes")
        else:
            self.stream.write(f"\r{self.label} {done:,} bytes, {done / (t - self.start) / 1e6:.2f} MB/s")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """Erase the bar, so what is printed next starts on a clean line."""
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Ticker:
    """For work that cannot report its progress (a lab's runs): the time it has taken so
    far, on a terminal only, once it has run for ``delay`` seconds; erased at the end.

        with Ticker("lab congestion"):
            text = run_lab("congestion")
    """

    def __init__(self, label: str, enabled: bool = True, stream=None, delay: float = 1.0):
        self.bar = Progress(label, enabled=enabled, stream=stream, delay=delay)
        self._stop = None

    def __enter__(self):
        import threading
        if self.bar.enabled:
            self._stop = threading.Event()
            threading.Thread(target=self._run, name="ticker", daemon=True).start()
        return self

    def _run(self) -> None:
        bar = self.bar
        while not self._stop.wait(0.25):
            t = time.monotonic() - bar.start
            if t >= bar.delay:
                bar.stream.write(f"\r{bar.label}: running, {t:.0f} s")
                bar.stream.flush()
                bar.shown = True

    def __exit__(self, *exc) -> None:
        if self._stop is not None:
            self._stop.set()
        self.bar.close()
