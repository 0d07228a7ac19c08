"""wirestack: a TCP/IP stack written from scratch in pure Python, the unreliable wire it
runs on, and a lab for learning networking from first principles.

The entry point for a simulation is :class:`wirestack.Network` (``wirestack.runtime.sim``)::

    from wirestack import Network
    net = Network(seed=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Network", "__version__"]

if TYPE_CHECKING:
    from .runtime.sim import Network


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562): the simulation runtime pulls in asyncio and every
    # layer (~85 ms), which `import wirestack.wire` alone should not pay for.
    if name == "Network":
        from .runtime.sim import Network
        return Network
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
