"""Network namespaces: the sandbox every real-network experiment runs in.

wirestack only ever touches the Linux network from inside a namespace it created
itself, so a test or a demo can never disturb the host's own interfaces, routes or
firewall.  This module is the thin edge around iproute2 (`ip netns ...`) plus one
system call, setns(2), which Python 3.11 does not expose (os.setns arrived in 3.12).

Namespaces created with `ip netns add NAME` are pinned by a bind mount at
/var/run/netns/NAME; opening that file gives a namespace file descriptor for setns.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import re
import subprocess
from typing import Iterator, Sequence

NETNS_RUN_DIR = "/var/run/netns"

# <sched.h>: the namespace type argument of setns(2); passing it (rather than 0)
# makes the kernel check that the fd really refers to a network namespace.
CLONE_NEWNET = 0x40000000

# Names go into a path and onto command lines: keep them to a safe alphabet.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class NetnsError(RuntimeError):
    """A namespace operation failed; the message is one sentence a CLI can print."""


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"invalid network namespace name {name!r}")
    return name


def path(name: str) -> str:
    """The bind-mounted namespace file that `ip netns add` creates."""
    return os.path.join(NETNS_RUN_DIR, _check_name(name))


def _ip(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["ip", *argv], capture_output=True, text=True)
    except FileNotFoundError:
        raise NetnsError("the 'ip' command (iproute2) is not installed") from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        detail = msg[-1] if msg else f"exit status {proc.returncode}"
        raise NetnsError(f"'ip {' '.join(argv)}' failed: {detail}")
    return proc


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def create(name: str) -> None:
    """Create an empty network namespace and bring its loopback up.

    A fresh namespace has only `lo`, and it is down; many tools (and the kernel's
    own replies to 127.0.0.1) expect it up, so we do it here once.
    """
    _check_name(name)
    if os.geteuid() != 0:
        raise NetnsError("creating a network namespace needs root (try sudo)")
    _ip(["netns", "add", name])
    _ip(["-n", name, "link", "set", "lo", "up"])


def delete(name: str) -> None:
    """Delete the namespace (its interfaces, including TAPs born there, go with it)."""
    _check_name(name)
    if exists(name):
        _ip(["netns", "delete", name])


def run_in(name: str, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
    """Run a command inside the namespace: `ip netns exec NAME argv...`.

    Keyword arguments go to subprocess.run; by default output is captured as text.
    """
    _check_name(name)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(["ip", "netns", "exec", name, *argv], **kw)


def popen_in(name: str, argv: Sequence[str], **kw) -> subprocess.Popen:
    """Start a long-running command (a server, tshark) inside the namespace."""
    _check_name(name)
    return subprocess.Popen(["ip", "netns", "exec", name, *argv], **kw)


@functools.cache
def _libc():
    """The C library's setns, looked up once per process: find_library runs `ldconfig -p`
    as a child process (about 1.5 ms, and a fork on the other CPU) every time it is called,
    and a thread that enters a namespace per socket would pay that twice per socket."""
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.setns.restype = ctypes.c_int
    return lib


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):          # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


@contextlib.contextmanager
def enter(name: str) -> Iterator[None]:
    """Switch the *calling thread* into namespace NAME for the duration of the block.

    setns(2) changes the network namespace of the calling thread only, so other
    threads (and the asyncio loop, if it runs elsewhere) are unaffected.  Sockets
    and TAP devices created inside the block belong to NAME for their whole life,
    even after we switch back: the namespace is fixed at creation time.
    """
    target = path(name)
    try:
        new_fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError(f"network namespace {name!r} does not exist") from None
    except PermissionError:
        raise NetnsError(f"no permission to open {target} (needs root)") from None
    try:
        # Remember where we came from: this thread's current namespace.
        orig_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # very old kernels lack /proc/thread-self
        orig_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(new_fd)
        try:
            yield
        finally:
            _setns(orig_fd)
    finally:
        os.close(new_fd)
        os.close(orig_fd)


class Namespace:
    """A namespace that exists for the lifetime of a `with` block.

        with Namespace("ws-demo") as ns:
            ns.run(["ip", "addr"])

    It is created on entry (an existing one with the same name is an error,
    unless `reuse=True`) and deleted on exit, always.
    """

    def __init__(self, name: str, reuse: bool = False):
        self.name = _check_name(name)
        self.reuse = reuse
        self._created = False

    def __enter__(self) -> "Namespace":
        if exists(self.name):
            if not self.reuse:
                raise NetnsError(f"network namespace {self.name!r} already exists")
        else:
            create(self.name)
            self._created = True
        return self

    def __exit__(self, *exc) -> None:
        if self._created:
            delete(self.name)
            self._created = False

    def run(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        return run_in(self.name, argv, **kw)

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        return popen_in(self.name, argv, **kw)

    def enter(self):
        return enter(self.name)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`ip -n NAME args...`"""
        return _ip(["-n", self.name, *args], check=check)

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"
