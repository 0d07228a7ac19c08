"""Runtimes that drive the sans-I/O host: virtual time (simulation) and real time (TAP)."""
