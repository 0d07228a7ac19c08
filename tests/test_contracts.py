"""The named contracts between layers (wirestack.contracts): the host's transports and the
runtimes' devices fit them, and the verbs mean the same thing for every transport."""

from wirestack.contracts import DUE_NOW, Device, MediumEndpoint, Transport
from wirestack.iface import Host
from wirestack.phy.stream import StreamDevice
from wirestack.phy.tap import TapDevice
from wirestack.sim import Nic, Scheduler


def test_tcp_udp_and_icmp_are_transports():
    host = Host("a")
    assert host.transports == (host.udp, host.icmp, host.tcp)
    for transport in host.transports:
        assert isinstance(transport, Transport), transport
        assert transport.poll_at() is None   # a fresh host waits for nothing


def test_a_queued_datagram_is_due_now_and_poll_sends_it():
    """Socket calls queue; poll_at says DUE_NOW; poll hands the datagram to IP."""
    host = Host("a")
    host.add_interface(b"\x02\0\0\0\0\x01", "198.18.0.1/24")
    host.transmit(0)   # the gratuitous ARP
    sock = host.udp_socket()
    sock.sendto(b"hi", ("198.18.0.1", 9))   # to ourselves: no ARP needed
    assert host.udp.poll_at() == DUE_NOW
    assert host.poll_at() == 0
    host.udp.poll(0)
    assert host.udp.poll_at() is None
    assert host.counters["udp.out_datagrams"] == 1
    pinger = host.ping_socket()
    pinger.send("198.18.0.1", 1, b"x")
    assert host.icmp.poll_at() == DUE_NOW
    host.icmp.poll(0)
    assert host.icmp.poll_at() is None
    assert host.counters["icmp.out_echos"] == 1


def test_the_simulated_nic_is_a_device():
    sent = []
    nic = Nic(Scheduler(), "a.eth0", b"\x02\0\0\0\0\x01")
    assert isinstance(nic, Device) and isinstance(nic, MediumEndpoint)
    nic.attach(None, sent.append)  # a medium that just keeps what it is given
    assert nic.send(bytes(60)) is True
    assert len(sent) == 1


def test_tap_and_stream_devices_send_with_the_same_verb():
    for cls in (TapDevice, StreamDevice):
        assert cls.send is cls.write
        for name in ("fileno", "read_frames", "close"):
            assert callable(getattr(cls, name))
    assert StreamDevice.offload is False


def test_a_switch_port_is_a_medium_endpoint():
    from wirestack.sim import Switch
    sched = Scheduler()
    sw = Switch(sched)
    nic = Nic(sched, "a.eth0", b"\x02\0\0\0\0\x01")
    link = sw.attach(nic)
    assert isinstance(link.nic_b, MediumEndpoint)   # the switch's side of the port's link
    assert link.nic_b is not nic and nic.medium is link


def _imports(package: str) -> set[str]:
    """Every wirestack package a package's modules import (lazily or not), by ast."""
    import ast
    import pathlib

    import wirestack
    root = pathlib.Path(wirestack.__file__).parent
    found = set()
    for path in (root / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.level == 2:        # from ..x import y
                    found.add(node.module.split(".")[0])
                elif node.module.startswith("wirestack."):
                    found.add(node.module.split(".")[1])
    return found


def test_imports_point_downward_only():
    """runtime/ drives the host for applications; it never imports them (ARCHITECTURE)."""
    assert not _imports("runtime") & {"apps", "cli", "labs", "wireproc"}
    assert not _imports("sim") & {"runtime", "apps", "cli", "labs", "wireproc", "iface", "tcp"}
    assert not _imports("iface") & {"runtime", "apps", "cli", "labs", "wireproc", "sim", "phy"}
