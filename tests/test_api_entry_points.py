"""The names a newcomer reaches for first: ``from wirestack import Network``."""

from __future__ import annotations

import subprocess
import sys

import pytest

A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def test_network_from_the_package_root_is_the_simulation_network():
    from wirestack import Network
    from wirestack.runtime import sim

    assert Network is sim.Network
    with pytest.raises(AttributeError):
        import wirestack
        wirestack.NoSuchThing  # noqa: B018


def test_importing_the_package_does_not_load_the_runtime():
    # `import wirestack.wire` (a codec user) must not pay for asyncio and every layer.
    code = ("import sys, wirestack, wirestack.wire; "
            "print('wirestack.runtime.sim' in sys.modules, 'asyncio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
