"""What a wire consists of: media, their impairments and the ports plugged into them.

Built from the command line (one medium) or from a TOML file (several media)::

    seed = 7
    pcap = "wire.pcap"             # optional: capture every medium
    decisions = "wire.jsonl"       # optional: the decision log, written on exit

    [[medium]]
    name = "lan"
    kind = "switch"                # link | hub | switch
    params = { delay_ms = 20, loss = 0.01 }     # default for every port / both link directions

    [[medium.port]]
    spec = "tap:ws-a:198.18.0.1/24"
    params = { loss = 0.2 }        # switch: this port's cable, both directions
    # inbound / outbound: only the station->switch or switch->station direction

    [[medium.port]]
    spec = "unix:/tmp/lan.sock"

A link also takes scripted faults and down/up windows (times in seconds since the wire
started)::

    [[medium.fault]]
    action = "drop"                # drop | corrupt | duplicate | delay | truncate
    match = "tcp.syn"              # arp ip icmp udp tcp tcp.syn tcp.fin tcp.rst tcp.data (default: any)
    nth = 1                        # or every = N; count, start_s, end_s, delay_ms, bits
    direction = "a>b"              # a>b | b>a | both (default)

    [[medium.down]]
    at_s = 10
    for_s = 2

A link takes ``a_to_b`` / ``b_to_a`` tables for per-direction parameters (end a is the
first station to attach); a hub takes ``csma_cd = true`` and ``rate_mbps`` (a hub has no
per-port impairments: collisions are its impairment).

Parameter keys are those of :class:`~wirestack.sim.LinkParams`, with friendlier units
where the name says so: ``rate_mbps``, ``delay_ms``, ``jitter_ms``, ``reorder_delay_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..sim import Fault, LinkParams
from ..units import MS, SEC

_SCALED = {"delay_ms": ("delay", MS), "jitter_ms": ("jitter", MS), "reorder_delay_ms": ("reorder_delay", MS)}
_NATIVE = {"rate_bps", "delay", "jitter", "jitter_dist", "keep_order", "queue_limit", "mtu", "loss",
           "gilbert", "duplicate", "reorder", "reorder_delay", "corrupt", "corrupt_bits", "truncate"}


class TopologyError(ValueError):
    """The topology is inconsistent; str() says where."""


def params_from(d: dict[str, Any] | None, where: str, base: LinkParams | None = None) -> LinkParams | None:
    """LinkParams from a TOML table: ``base``'s values, overridden by the table's keys."""
    if d is None:
        return base
    if not isinstance(d, dict):
        raise TopologyError(f"{where}: expected a table of link parameters")
    out: dict[str, Any] = dict(vars(base)) if base is not None else {}
    for key, value in d.items():
        if key in _SCALED:
            name, scale = _SCALED[key]
            out[name] = int(round(float(value) * scale))
        elif key == "rate_mbps":
            out["rate_bps"] = int(float(value) * 1_000_000) if value else None
        elif key in _NATIVE:
            out[key] = tuple(value) if key == "gilbert" else value
        else:
            raise TopologyError(f"{where}: unknown link parameter {key!r}")
    try:
        return LinkParams(**out)
    except (TypeError, ValueError) as e:
        raise TopologyError(f"{where}: {e}") from None


@dataclass
class PortConfig:
    spec: str
    name: str
    medium: str
    params_in: LinkParams | None = None
    params_out: LinkParams | None = None
    replay_delay: float = 0.0        # pcap ports: seconds between "ready" and the first frame


# What a scripted fault may match, by name: a TOML file cannot hold a Python predicate.
MATCHES = {
    "arp": lambda f: f.arp is not None,
    "ip": lambda f: f.ip is not None,
    "icmp": lambda f: f.icmp is not None,
    "udp": lambda f: f.udp is not None,
    "tcp": lambda f: f.tcp is not None,
    "tcp.syn": lambda f: f.tcp is not None and f.tcp.syn,
    "tcp.fin": lambda f: f.tcp is not None and f.tcp.fin,
    "tcp.rst": lambda f: f.tcp is not None and f.tcp.rst,
    "tcp.data": lambda f: f.tcp is not None and len(f.payload) > 0,
}
_FAULT_KEYS = {"action", "match", "nth", "every", "count", "start_s", "end_s", "delay_ms", "bits",
               "direction", "name"}


def fault_from(d: dict[str, Any], where: str) -> tuple[Fault, str]:
    bad = set(d) - _FAULT_KEYS
    if bad:
        raise TopologyError(f"{where}: unknown key(s) {sorted(bad)}")
    match = d.get("match")
    if match is not None and match not in MATCHES:
        raise TopologyError(f"{where}: match must be one of {sorted(MATCHES)}, not {match!r}")
    direction = d.get("direction", "both")
    if direction not in ("both", "a>b", "b>a"):
        raise TopologyError(f"{where}: direction must be a>b, b>a or both")

    def secs(key):
        return None if key not in d else int(round(float(d[key]) * SEC))
    try:
        f = Fault(d.get("action", ""), match=MATCHES[match] if match else None, nth=d.get("nth"),
                  every=d.get("every"), start=secs("start_s"), end=secs("end_s"), count=d.get("count"),
                  delay=int(round(float(d.get("delay_ms", 0)) * MS)), bits=int(d.get("bits", 1)),
                  name=d.get("name", ""))
    except (TypeError, ValueError) as e:
        raise TopologyError(f"{where}: {e}") from None
    return f, direction


@dataclass
class MediumConfig:
    name: str
    kind: str = "link"
    params: LinkParams | None = None
    b_to_a: LinkParams | None = None
    csma_cd: bool = False
    rate_bps: int | None = None
    check_fcs: bool = True
    faults: list[tuple[Fault, str]] = field(default_factory=list)   # (fault, direction): links only
    down: list[tuple[int, int]] = field(default_factory=list)       # (from, until) ns: links only


@dataclass
class Topology:
    media: list[MediumConfig] = field(default_factory=list)
    ports: list[PortConfig] = field(default_factory=list)
    seed: Any = 1
    pcap: str | None = None
    decisions: str | None = None

    def check(self) -> None:
        names = [m.name for m in self.media]
        if len(set(names)) != len(names):
            raise TopologyError("two media with the same name")
        if not self.ports:
            raise TopologyError("no ports: give at least one --port SPEC")
        pnames = [p.name for p in self.ports]
        if len(set(pnames)) != len(pnames):
            raise TopologyError("two ports with the same name")
        for m in self.media:
            if m.kind not in ("link", "hub", "switch"):
                raise TopologyError(f"medium {m.name}: kind must be link, hub or switch, not {m.kind!r}")
            if m.kind != "link" and (m.faults or m.down):
                raise TopologyError(f"medium {m.name}: scripted faults and down windows are for links")
            if m.kind == "hub" and m.params is not None and not m.params.is_plain():
                raise TopologyError(f"medium {m.name}: a hub has no impairments of its own "
                                    "(use a switch or a link for loss/delay/...)")
        for p in self.ports:
            if p.medium not in names:
                raise TopologyError(f"port {p.name}: no medium named {p.medium!r}")


_MEDIUM_KEYS = {"name", "kind", "params", "a_to_b", "b_to_a", "csma_cd", "rate_mbps", "check_fcs", "port",
                "fault", "down"}
_PORT_KEYS = {"spec", "name", "params", "inbound", "outbound", "replay_delay"}


def from_toml(path: str) -> Topology:
    import tomllib
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise TopologyError(f"{path}: {e}") from None
    return from_dict(doc, path)


def from_dict(doc: dict[str, Any], where: str = "topology") -> Topology:
    unknown = set(doc) - {"seed", "pcap", "decisions", "medium"}
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {sorted(unknown)}")
    topo = Topology(seed=doc.get("seed", 1), pcap=doc.get("pcap"), decisions=doc.get("decisions"))
    n = 0
    for i, m in enumerate(doc.get("medium", [])):
        bad = set(m) - _MEDIUM_KEYS
        if bad:
            raise TopologyError(f"{where}: medium {i}: unknown key(s) {sorted(bad)}")
        name = m.get("name", f"m{i}")
        at = f"{where}: medium {name}"
        base = params_from(m.get("params"), at + " params")
        a_to_b = params_from(m.get("a_to_b"), at + " a_to_b", base)
        b_to_a = params_from(m.get("b_to_a"), at + " b_to_a", base)
        rate = m.get("rate_mbps")
        topo.media.append(MediumConfig(name, m.get("kind", "link"), a_to_b, b_to_a if "b_to_a" in m else None,
                                       bool(m.get("csma_cd", False)),
                                       int(float(rate) * 1_000_000) if rate else None,
                                       bool(m.get("check_fcs", True))))
        for j, fd in enumerate(m.get("fault", [])):
            topo.media[-1].faults.append(fault_from(fd, f"{at} fault {j}"))
        for j, dd in enumerate(m.get("down", [])):
            try:
                t0 = int(round(float(dd["at_s"]) * SEC))
                t1 = t0 + int(round(float(dd["for_s"]) * SEC))
            except (KeyError, TypeError, ValueError):
                raise TopologyError(f"{at} down {j}: needs at_s and for_s (seconds)") from None
            topo.media[-1].down.append((t0, t1))
        for p in m.get("port", []):
            bad = set(p) - _PORT_KEYS
            if bad:
                raise TopologyError(f"{at}: port {n}: unknown key(s) {sorted(bad)}")
            if "spec" not in p:
                raise TopologyError(f"{at}: port {n}: no spec")
            pname = p.get("name", f"p{n}")
            pat = f"{at} port {pname}"
            both = params_from(p.get("params"), pat + " params", base)
            topo.ports.append(PortConfig(p["spec"], pname, name,
                                         params_from(p.get("inbound"), pat + " inbound", both),
                                         params_from(p.get("outbound"), pat + " outbound", both),
                                         float(p.get("replay_delay", 0.0))))
            n += 1
    topo.check()
    return topo
