"""One line per frame, in the style of ``tcpdump -n``.

    1.000120 a > IP 198.18.0.1.49152 > 198.18.0.2.80: Flags [S], seq 0, win 65535,
             options [mss 1460,sackOK,TS val 1 ecr 0,wscale 7], length 0

With ``relative=True`` TCP sequence numbers are shown relative to each direction's first
sequence number seen (as tcpdump does by default), which makes a trace readable; the
absolute numbers are one switch away.
"""

from __future__ import annotations

from ..wire import MalformedPacket, parse_frame
from ..wire import arp as arp_codec
from ..wire import icmp as icmp_codec
from ..wire.addr import ip_ntoa, mac_ntoa
from ..wire.tcp import describe_options, flag_string


def fmt_time(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{(ns % 1_000_000_000) // 1000:06d}"


class TextTrace:
    """Formats frames; remembers each TCP direction's initial sequence number."""

    def __init__(self, relative: bool = True, link_level: bool = False, verify_checksums: bool = True):
        self.relative = relative
        self.link_level = link_level
        # False for a device with checksum offload: the frames it hands over and takes carry
        # a TCP checksum still to be done (virtio-net NEEDS_CSUM), so a failed check would
        # call a good frame malformed -- tcpdump on such a NIC does not check either.
        self.verify_checksums = verify_checksums
        self._isn: dict[tuple, int] = {}

    def format(self, frame, now: int | None = None, tag: str = "") -> str:
        prefix = (fmt_time(now) + " " if now is not None else "") + (tag + " " if tag else "")
        try:
            f = parse_frame(frame, verify_checksums=self.verify_checksums)
        except MalformedPacket as exc:
            return f"{prefix}[malformed frame, {len(frame)} bytes: {exc.reason}]"
        link = ""
        if self.link_level:
            link = f"{mac_ntoa(f.eth.src)} > {mac_ntoa(f.eth.dst)}, "
        return prefix + link + self._body(f, len(frame))

    def _body(self, f, frame_len: int) -> str:
        if f.arp is not None:
            a = f.arp
            if a.op == arp_codec.REQUEST:
                if a.spa == a.tpa:
                    return f"ARP, Announcement {ip_ntoa(a.tpa)}, length 28"
                return f"ARP, Request who-has {ip_ntoa(a.tpa)} tell {ip_ntoa(a.spa)}, length 28"
            if a.op == arp_codec.REPLY:
                return f"ARP, Reply {ip_ntoa(a.spa)} is-at {mac_ntoa(a.sha)}, length 28"
            return f"ARP, op {a.op}, length 28"
        ip = f.ip
        if ip is None:
            return f"ethertype 0x{f.eth.ethertype:04x}, length {frame_len}"
        src, dst = ip_ntoa(ip.src), ip_ntoa(ip.dst)
        frag = ""
        if ip.mf or ip.frag_offset:
            frag = f" (frag {ip.ident}:{ip.total_length - ip.header_length}@{ip.frag_offset}{'+' if ip.mf else ''})"
        if ip.frag_offset:
            return f"IP {src} > {dst}: ip-proto-{ip.proto}{frag}"
        if f.tcp is not None:
            return self._tcp(f, src, dst) + frag
        if f.udp is not None:
            u = f.udp
            return f"IP {src}.{u.sport} > {dst}.{u.dport}: UDP, length {u.length - 8}{frag}"
        if f.icmp is not None:
            return f"IP {src} > {dst}: {self._icmp(f.icmp)}{frag}"
        return f"IP {src} > {dst}: ip-proto-{ip.proto}, length {ip.total_length - ip.header_length}{frag}"

    def _icmp(self, m) -> str:
        n = len(m.payload) + 8
        if m.type in (icmp_codec.ECHO_REQUEST, icmp_codec.ECHO_REPLY):
            kind = "echo request" if m.type == icmp_codec.ECHO_REQUEST else "echo reply"
            return f"ICMP {kind}, id {m.ident}, seq {m.seq}, length {n}"
        if m.is_error:
            # tcpdump's wording: "udp port 9 unreachable", "host X unreachable", ...
            try:
                qh, qd = m.quoted()
                dst = ip_ntoa(qh.dst)
                port = int.from_bytes(qd[2:4], "big") if qh.proto in (6, 17) and len(qd) >= 4 else None
            except MalformedPacket:
                qh, dst, port = None, "?", None
            if m.type == icmp_codec.DEST_UNREACHABLE:
                code = m.code
                if code == icmp_codec.FRAG_NEEDED:
                    return f"ICMP {dst} unreachable - need to frag (mtu {m.next_hop_mtu}), length {n}"
                if code == icmp_codec.PORT_UNREACHABLE and port is not None:
                    return f"ICMP {dst} {'tcp' if qh.proto == 6 else 'udp'} port {port} unreachable, length {n}"
                if code == icmp_codec.PROTO_UNREACHABLE and qh is not None:
                    return f"ICMP {dst} protocol {qh.proto} unreachable, length {n}"
                if code == icmp_codec.NET_UNREACHABLE:
                    return f"ICMP net {dst} unreachable, length {n}"
                if code == icmp_codec.HOST_UNREACHABLE:
                    return f"ICMP host {dst} unreachable, length {n}"
                return f"ICMP {dst} unreachable - code {code}, length {n}"
            if m.type == icmp_codec.TIME_EXCEEDED:
                why = "in-transit" if m.code == 0 else "reassembly"
                return f"ICMP time exceeded {why}, length {n}"
        return f"ICMP type {m.type} code {m.code}, length {n}"

    def _tcp(self, f, src: str, dst: str) -> str:
        t = f.tcp
        key = (f.ip.src, t.sport, f.ip.dst, t.dport)
        back = (f.ip.dst, t.dport, f.ip.src, t.sport)
        n = len(f.payload)
        seq, ack = t.seq, t.ack
        parts = [f"Flags [{flag_string(t.flags)}]"]
        if self.relative:
            if t.syn or key not in self._isn:
                self._isn[key] = t.seq
            if len(self._isn) > 65536:
                self._isn.clear()
            base = self._isn[key]
            rseq = (seq - base) & 0xFFFFFFFF
            rack = (ack - self._isn[back]) & 0xFFFFFFFF if back in self._isn else ack
            sack_base = self._isn.get(back)
        else:
            rseq, rack, sack_base = seq, ack, None
        if n or t.syn or t.fin or t.rst:
            parts.append(f"seq {rseq}:{(rseq + n) & 0xFFFFFFFF}" if n else f"seq {rseq}")
        if t.ack_flag:
            parts.append(f"ack {rack}")
        parts.append(f"win {t.window}")
        if t.urg:
            parts.append(f"urg {t.urgent}")
        o = t.options
        opts = describe_options(o)
        if o.sack_blocks and sack_base is not None:
            # Show SACK edges relative too, like tcpdump.
            opts = [p for p in opts if not p.startswith("sack ")]
            opts.append("sack %d %s" % (len(o.sack_blocks), " ".join(
                f"{{{(l - sack_base) & 0xFFFFFFFF}:{(r - sack_base) & 0xFFFFFFFF}}}" for l, r in o.sack_blocks)))
        if opts:
            parts.append("options [" + ",".join(opts) + "]")
        parts.append(f"length {n}")
        return f"IP {src}.{t.sport} > {dst}.{t.dport}: " + ", ".join(parts)
