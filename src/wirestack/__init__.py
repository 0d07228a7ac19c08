"""wirestack: a TCP/IP stack written from scratch in pure Python, the unreliable
wire it runs on, and a lab for learning networking from first principles."""

__version__ = "0.1.0"
