"""The one exception the codecs raise."""


class MalformedPacket(ValueError):
    """Raised by every parser in :mod:`wirestack.wire` for input it cannot accept.

    ``reason`` is a short human sentence; ``counter`` is the dotted counter name a host
    increments when it drops the frame for this reason (``ip.in_bad_checksum`` ...).
    """

    def __init__(self, reason: str, counter: str = "eth.rx_malformed"):
        super().__init__(reason)
        self.reason = reason
        self.counter = counter
