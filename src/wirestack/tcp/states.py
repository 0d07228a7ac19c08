"""The TCP states and the edges between them (RFC 9293 §3.3.2, Figure 5).

``TRANSITIONS`` is the state diagram as data. The engine changes state in exactly one
place (``Tcb._set_state`` in ``tcb.py``), which checks the edge against this table and logs it.
Edges to CLOSED that the figure leaves implicit (reset, abort, timeout) are included.

A state is a ``State`` (a ``StrEnum``): it compares equal to its name, so
``sock.state == "ESTABLISHED"`` and the event log's plain strings keep working.
"""

from enum import StrEnum


class State(StrEnum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"


# The names the engine uses (``state is ESTABLISHED``).
CLOSED = State.CLOSED
LISTEN = State.LISTEN
SYN_SENT = State.SYN_SENT
SYN_RECEIVED = State.SYN_RECEIVED
ESTABLISHED = State.ESTABLISHED
FIN_WAIT_1 = State.FIN_WAIT_1
FIN_WAIT_2 = State.FIN_WAIT_2
CLOSE_WAIT = State.CLOSE_WAIT
CLOSING = State.CLOSING
LAST_ACK = State.LAST_ACK
TIME_WAIT = State.TIME_WAIT

ALL = (CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2,
       CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT)

TRANSITIONS: dict[State, dict[State, str]] = {
    CLOSED: {LISTEN: "passive OPEN", SYN_SENT: "active OPEN / snd SYN"},
    LISTEN: {SYN_RECEIVED: "rcv SYN / snd SYN,ACK", CLOSED: "CLOSE"},
    SYN_SENT: {SYN_RECEIVED: "rcv SYN / snd SYN,ACK (simultaneous open)",
               ESTABLISHED: "rcv SYN,ACK / snd ACK", CLOSED: "CLOSE, RST or timeout"},
    SYN_RECEIVED: {ESTABLISHED: "rcv ACK of SYN", FIN_WAIT_1: "CLOSE / snd FIN",
                   LISTEN: "rcv RST (passive open)", CLOSED: "RST, abort or timeout"},
    ESTABLISHED: {FIN_WAIT_1: "CLOSE / snd FIN", CLOSE_WAIT: "rcv FIN / snd ACK",
                  CLOSED: "RST, abort or timeout"},
    FIN_WAIT_1: {FIN_WAIT_2: "rcv ACK of FIN", CLOSING: "rcv FIN / snd ACK",
                 TIME_WAIT: "rcv FIN,ACK of FIN / snd ACK", CLOSED: "RST, abort or timeout"},
    FIN_WAIT_2: {TIME_WAIT: "rcv FIN / snd ACK", CLOSED: "RST, abort or timeout"},
    CLOSE_WAIT: {LAST_ACK: "CLOSE / snd FIN", CLOSED: "RST, abort or timeout"},
    CLOSING: {TIME_WAIT: "rcv ACK of FIN", CLOSED: "RST, abort or timeout"},
    LAST_ACK: {CLOSED: "rcv ACK of FIN (or RST, timeout)"},
    TIME_WAIT: {CLOSED: "timeout 2·MSL (or RST)"},
}

# States in which the connection is synchronized (RFC 9293 §3.10.7.4).
SYNCHRONIZED = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING,
                          LAST_ACK, TIME_WAIT})
# States in which arriving text is accepted (RFC 9293 §3.10.7.4, seventh).
RECEIVING = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})
# States in which our queued data / FIN may still be (re)transmitted.
SENDING = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})
