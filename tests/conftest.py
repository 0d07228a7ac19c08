"""Shared pytest fixtures.

`netns` is a factory for throw-away network namespaces: every real-network test
runs inside namespaces it creates and deletes itself (names start with `ws-`,
addresses come from 198.18.0.0/15, RFC 2544), so the machine's own network is
never touched.
"""

from __future__ import annotations

import itertools
import os
import shutil

import pytest


def interop_skip_reason() -> str | None:
    """Why a TAP/netns test cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create network namespaces and TAP devices"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no TUN/TAP support in this kernel/container)"
    if shutil.which("ip") is None:
        return "iproute2 ('ip' command) is not installed"
    return None


def require_tools(*names: str) -> None:
    """Skip the calling test, naming the Debian package, when a peer tool is absent."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"missing tool(s): {', '.join(missing)} (see .ci/run for the Debian packages)")


@pytest.fixture
def require_interop():
    reason = interop_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def netns(request):
    """Factory: `ns = netns()` or `netns("srv")` -> an entered wirestack.phy.netns.Namespace.

    Names are `ws-<tag>-<pid>-<n>` so parallel test runs do not collide; every
    namespace made through the factory is deleted at teardown, even on failure.
    """
    reason = interop_skip_reason()
    if reason:
        pytest.skip(reason)
    from wirestack.phy.netns import Namespace

    made: list[Namespace] = []
    counter = itertools.count()

    def make(tag: str = "test") -> Namespace:
        name = f"ws-{tag}-{os.getpid()}-{next(counter)}"
        if len(name) > 64:
            raise ValueError(f"namespace name too long: {name}")
        ns = Namespace(name)
        ns.__enter__()
        made.append(ns)
        return ns

    yield make
    for ns in reversed(made):
        try:
            ns.__exit__(None, None, None)
        except Exception as e:  # keep cleaning the others; report at the end
            print(f"warning: could not delete namespace {ns.name}: {e}")
