"""The simulated wire as a real-time process that other programs plug into.

``driver`` runs the simulation's own media (sim/link.py, sim/hub.py, sim/switch.py) on the
monotonic clock; ``ports`` are the adapters that connect real things to a station on a
medium (stream sockets with QEMU framing, TAP, AF_PACKET, pcap replay); ``topology``
reads the TOML description of several media. The CLI is `wirestack wire`.
"""
