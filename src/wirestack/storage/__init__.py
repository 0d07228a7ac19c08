"""Bounded containers used by the transports: a byte FIFO (send/receive buffers), the
out-of-order assembler (which also yields SACK blocks) and a bounded queue."""

from .assembler import Assembler
from .buffer import ByteFifo
from .queue import BoundedQueue

__all__ = ["Assembler", "ByteFifo", "BoundedQueue"]
