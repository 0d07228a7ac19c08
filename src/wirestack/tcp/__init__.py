"""The TCP engine (RFC 9293), sans-I/O: ``TcpLayer`` (one per host), ``TcpSocket`` (the
application's handle), ``TcpConfig`` (switches and limits).

Layout, split by direction and by time like the RFC's event processing (§3.10):
``layer`` (demultiplexing, ports, resets, the timer heap), ``listener`` (LISTEN, backlog,
SYN cookies), ``connection`` (the TCB, ``tcb``, and its parts: ``output``, ``timers``,
``opening``, ``segment_arrives``), ``recovery`` (loss recovery), ``socket`` (the API),
``rtt`` (RFC 6298), ``congestion/`` (controllers behind one small interface: NewReno,
CUBIC, none; HyStart++ inside), ``sack`` (the RFC 6675 sender scoreboard), ``syncookie``
(RFC 4987 §3.6), ``isn`` (RFC 6528), ``seq`` (sequence arithmetic), ``states`` (the state
diagram as data). The segments themselves are built and parsed by ``wire.tcp``.
"""

from .config import TcpConfig
from .layer import TcpLayer
from .socket import TcpSocket
from .states import TRANSITIONS, State

__all__ = ["State", "TcpConfig", "TcpLayer", "TcpSocket", "TRANSITIONS"]
