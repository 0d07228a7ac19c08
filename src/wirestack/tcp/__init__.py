"""The TCP engine (RFC 9293), sans-I/O: ``TcpLayer`` (one per host), ``TcpSocket`` (the
application's handle), ``TcpConfig`` (switches and limits).

Layout, split by direction and by time like the RFC's event processing (§3.10):
``layer`` (demultiplexing, listeners, ports, resets, the timer heap), ``connection`` (the
TCB: segment arrival, output, timers), ``socket`` (the API), ``rtt`` (RFC 6298),
``congestion/`` (controllers behind one small interface: NewReno, CUBIC, none), ``sack``
(the RFC 6675 sender scoreboard), ``syncookie`` (RFC 4987 §3.6), ``isn`` (RFC 6528),
``states`` (the state diagram as data).
"""

from .config import TcpConfig
from .layer import TcpLayer
from .socket import TcpSocket
from .states import TRANSITIONS

__all__ = ["TcpConfig", "TcpLayer", "TcpSocket", "TRANSITIONS"]
