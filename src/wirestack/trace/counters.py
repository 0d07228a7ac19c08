"""Named counters, in the spirit of `netstat -s`.

Every frame the stack drops is counted under a dotted name that says where and why
(``ip.in_bad_checksum``, ``tcp.in_csum_errors``, ``eth.rx_fcs_errors`` ...), so a learner can
ask the host what happened instead of guessing.
"""

from __future__ import annotations


class Counters(dict):
    """A ``dict`` of name -> int that starts every name at zero."""

    __slots__ = ()

    def incr(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + n

    def __missing__(self, name: str) -> int:
        return 0

    def nonzero(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.items()) if v}

    def format(self, title: str = "") -> str:
        """Group counters by layer, like `netstat -s` prints them."""
        lines = [title] if title else []
        layer = None
        for name, value in sorted(self.items()):
            if not value:
                continue
            head, _, rest = name.partition(".")
            if head != layer:
                layer = head
                lines.append(f"{head}:")
            lines.append(f"    {value:>10}  {rest or head}")
        return "\n".join(lines)
