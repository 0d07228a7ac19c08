"""The progress bar: on a terminal only, after a delay, erased when done."""

import io

from wirestack.cli.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_is_drawn_on_a_terminal_and_erased_at_the_end():
    tty = Terminal()
    bar = Progress("TCP transfer", stream=tty, delay=0)
    bar(500, 1000)
    assert tty.getvalue() == "\rTCP transfer [###############               ]  50% 500/1,000 bytes"
    bar(1000, 1000)                       # the last step is always drawn
    assert tty.getvalue().endswith("[##############################] 100% 1,000/1,000 bytes")
    bar.close()
    assert tty.getvalue().endswith("\r\033[K")


def test_unknown_total_shows_the_bytes_so_far():
    tty = Terminal()
    bar = Progress("GET", stream=tty, delay=0)
    bar(2_000_000)
    assert tty.getvalue().startswith("\rGET 2,000,000 bytes, ")


def test_nothing_when_not_a_terminal_quiet_or_short():
    pipe = io.StringIO()
    for bar in (Progress("x", stream=pipe, delay=0), Progress("x", stream=Terminal(), enabled=False),
                Progress("x", stream=Terminal(), delay=60)):
        bar(1, 2)
        bar.close()
        assert bar.stream.getvalue() == ""


def test_ticker_shows_the_running_time_then_erases_it():
    import time

    from wirestack.cli.progress import Ticker
    tty = Terminal()
    with Ticker("lab x", stream=tty, delay=0):
        time.sleep(0.6)
    text = tty.getvalue()
    assert text.startswith("\rlab x: running, 0 s") and text.endswith("\r\033[K")
    pipe = io.StringIO()
    with Ticker("lab x", stream=pipe, delay=0):
        time.sleep(0.3)
    assert pipe.getvalue() == ""
