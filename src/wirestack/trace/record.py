"""A record of one simulated run, for the ladder diagram and the run viewer.

:class:`RunRecorder` watches a network (duck-typed: ``net.hosts``, ``net.media``,
``net.decisions``) from the moment it is attached: every frame as it was put on the wire
(with its decision-log id), the wire's decisions about it, when and where it arrived, and
what the receiving host's layers did with it (the host's counters that moved while it
processed the frame, and the events it logged). ``data()`` turns that into plain,
JSON-ready dicts: frames with decoded headers and a Wireshark-flow-graph label, host
events, and the series the viewer plots (time-sequence, cwnd/ssthresh, RTT/SRTT/RTO,
bottleneck queue).

Memory is bounded: at most ``max_frames`` frames are kept (``skipped`` counts the rest).
"""

from __future__ import annotations

from typing import Any

from ..wire import MalformedPacket, parse_frame
from ..wire.addr import ip_ntoa, mac_ntoa
from ..wire.tcp import flag_string
from .fate import DROPPED_AT_NIC, is_lost, summary
from .text import TextTrace

# What a counter that moved while a host handled a frame means, by layer.
COUNTER_WORDS = {
    "eth.rx_not_for_us": "not addressed to this host: ignored",
    "eth.rx_unknown_type": "unknown EtherType: dropped",
    "arp.in_requests": "ARP request received",
    "arp.in_replies": "ARP reply received",
    "arp.out_replies": "ARP reply sent",
    "ip.in_receives": "datagram received",
    "ip.in_delivers": "checksum ok, delivered to the transport layer",
    "ip.in_hdr_errors": "bad header: dropped",
    "ip.in_bad_checksum": "header checksum wrong: dropped",
    "ip.in_addr_errors": "not for this host: dropped",
    "ip.reasm_oks": "fragments reassembled",
    "icmp.in_msgs": "ICMP message received",
    "icmp.in_echos": "echo request: reply queued",
    "icmp.out_echo_reps": "echo reply sent",
    "icmp.in_echo_reps": "echo reply: handed to ping",
    "udp.in_datagrams": "checksum ok, delivered to the socket",
    "udp.in_csum_errors": "checksum wrong: dropped",
    "udp.no_ports": "no socket on that port: ICMP port unreachable sent",
    "tcp.in_segs": "segment received",
    "tcp.in_csum_errors": "checksum wrong: dropped",
    "tcp.in_dupacks": "duplicate ACK",
    "tcp.in_duplicate": "data already received (duplicate): ACK again",
    "tcp.ofo_queued": "out of order: kept, SACK block added",
    "tcp.ofo_dropped": "out of order: dropped (no buffering)",
    "tcp.delayed_acks": "ACK delayed",
    "tcp.fast_retransmits": "third duplicate ACK: fast retransmit",
    "tcp.in_out_of_window": "outside the window: dropped",
    "tcp.in_rsts": "RST received",
    "tcp.passive_opens": "SYN accepted: SYN-ACK queued",
    "tcp.in_no_socket": "no socket: RST sent",
    "tcp.in_dsack": "D-SACK: a spurious retransmission",
    "tcp.in_paws": "timestamp too old (PAWS): dropped",
    "tcp.time_wait_reopened": "SYN in TIME_WAIT: new incarnation",
}
LAYER_NAMES = {"eth": "Ethernet", "arp": "ARP", "ip": "IP", "icmp": "ICMP", "udp": "UDP", "tcp": "TCP"}
LAYER_ORDER = ("eth", "arp", "ip", "icmp", "udp", "tcp")


class RunRecorder:
    def __init__(self, net, title: str = "run", max_frames: int = 50_000):
        self.net = net
        self.title = title
        self.max_frames = max_frames
        self.skipped = 0
        self.frames: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list] = {}
        self.queue: dict[str, list] = {}        # sender NIC -> [(t, depth)]
        self._sender: dict[int, str] = {}
        self._host_of_nic: dict[str, str] = {}
        self._host_of_mac: dict[bytes, str] = {}
        self.hosts = list(net.hosts)
        self.media = [m.name for m in net.media]
        for name, h in net.hosts.items():
            for nic in h.nics:
                self._host_of_nic[nic.name] = name
                self._host_of_mac[nic.mac] = name
                nic.add_frame_tap(lambda now, d, fid, frame, nic=nic: self._nic_frame(now, d, fid, frame, nic))
                self._wrap_receive(nic, h)
        for m in net.media:
            for part in (getattr(m, "links", None) or [m]):
                part.add_frame_tap(lambda now, fid, src, data, part=part: self._medium_frame(now, fid, src, data, part))
        net.decisions.add_watcher(self._on_decision)
        self._closed = False

    # -- taps ------------------------------------------------------------------------------
    def _medium_frame(self, now, fid, src, data, medium) -> None:
        if fid in self.frames:       # a switch forwarding it: one more hop, same frame
            self.frames[fid]["hops"].append(medium.name)
            return
        if len(self.frames) >= self.max_frames:
            self.skipped += 1
            return
        self.frames[fid] = {"id": fid, "t": now, "src_nic": src, "medium": medium.name,
                            "data": bytes(data[:-4]), "arrivals": [], "hops": [medium.name]}

    def _nic_frame(self, now, direction, fid, frame, nic) -> None:
        if direction == "rx" and fid in self.frames:
            self.frames[fid]["arrivals"].append({"t": now, "nic": nic.name,
                                                 "host": self._host_of_nic.get(nic.name, nic.name)})
        elif direction == "rx" and fid is not None:
            # A copy the wire made (a duplicate): it has an id of its own.
            parent = next((e.get("parent") for e in self.notes.get(fid, ()) if e["event"] == "duplicated"), None)
            if parent in self.frames and len(self.frames) < self.max_frames:
                p = self.frames[parent]
                self.frames[fid] = {"id": fid, "t": p["t"], "src_nic": p["src_nic"], "medium": p["medium"],
                                    "data": bytes(frame), "arrivals": [], "hops": list(p["hops"]),
                                    "dup_of": parent}
                self.frames[fid]["arrivals"].append({"t": now, "nic": nic.name,
                                                     "host": self._host_of_nic.get(nic.name, nic.name)})

    def _wrap_receive(self, nic, sim_host) -> None:
        inner = nic.on_receive
        if inner is None:
            return
        host = sim_host.host
        counters = host.counters
        log = host.log

        def on_receive(frame, *checksum_ok, inner=inner):
            # (an offloading NIC also says whether it checked the TCP checksum)
            before = dict(counters)
            n_events = len(log.entries)
            inner(frame, *checksum_ok)
            moved = {k: v - before.get(k, 0) for k, v in counters.items() if v != before.get(k, 0)}
            events = log.entries[n_events:] if len(log.entries) >= n_events else []
            fr = self._pending_rx
            if fr is not None:
                fr["layers"] = self._layers(nic.name, moved, events)
                fr["counters"] = moved

        nic.on_receive = on_receive
        # The NIC's rx frame tap runs just before on_receive: remember which arrival it was.
        self._pending_rx = None

        def mark(now, direction, fid, frame):
            if direction == "rx":
                rec = self.frames.get(fid)
                self._pending_rx = rec["arrivals"][-1] if rec and rec["arrivals"] else None

        nic.add_frame_tap(mark)

    def _on_decision(self, e) -> None:
        fid = e["frame"]
        if e["event"] == "sent":
            if len(self._sender) >= self.max_frames:
                return      # bounded: the recording is full (data() says how much was skipped)
            self._sender[fid] = e.get("src", "")
            if e.get("src"):
                self.queue.setdefault(e["src"], []).append((e["t"], 0))
        elif e["event"] == "queued":
            q = self.queue.get(self._sender.get(fid, ""))
            if q and q[-1][0] == e["t"]:
                q[-1] = (e["t"], e["depth"])
        elif e["event"] == "queue_overflow" and e.get("src"):
            self.queue.setdefault(e["src"], []).append((e["t"], e["limit"]))
        if e["event"] in ("sent", "queued", "delayed", "delivered", "forwarded", "deferred"):
            return
        for key in (fid, e.get("parent")):
            if key is not None and (key in self.frames or len(self.notes) < self.max_frames):
                self.notes.setdefault(key, []).append(e)

    # -- per-layer account -----------------------------------------------------------------
    @staticmethod
    def _layers(nic_name: str, moved: dict, events: list) -> list[dict]:
        out = [{"layer": "NIC", "text": f"{nic_name}: FCS ok, frame accepted"}]
        for layer in LAYER_ORDER:
            words = [text for k, text in COUNTER_WORDS.items() if k.startswith(layer + ".") and k in moved]
            # Output counters moved too when the host answered at once; they are not about
            # this frame's way up.
            other = [f"{k} +{moved[k]}" for k in sorted(moved)
                     if k.startswith(layer + ".") and k not in COUNTER_WORDS and ".out_" not in k]
            if layer == "ip":
                # Name the protocol IP handed the datagram to.
                up = next((LAYER_NAMES[p] for p in ("tcp", "udp", "icmp")
                           if any(k.startswith(p + ".in") for k in moved)), None)
                if up:
                    words = [w.replace("the transport layer", up) for w in words]
            if words or other:
                out.append({"layer": LAYER_NAMES[layer], "text": "; ".join(words + other)})
        for e in events:
            out.append({"layer": "TCP" if "conn" in e else "host", "text": event_text(e)})
        return out

    # -- the result ------------------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        tracer = TextTrace()
        isn: dict[tuple, int] = {}
        frames = []
        for fid in sorted(self.frames, key=lambda k: (self.frames[k]["t"], k)):
            rec = self.frames[fid]
            notes = self.notes.get(fid, [])
            frames.append(self._frame_data(rec, notes, tracer, isn))
        _answers(frames)
        # Sequence numbers in events relative to the connection's ISN, as in the labels.
        isn_of = {f"{ip_ntoa(k[0])}:{k[1]}>{ip_ntoa(k[2])}:{k[3]}": v for k, v in isn.items()}
        events = []
        for name, h in self.net.hosts.items():
            for e in h.host.log.entries:
                base = isn_of.get(e.get("conn", ""))
                if base is not None and isinstance(e.get("seq"), int):
                    e = dict(e, seq=(e["seq"] - base) & 0xFFFFFFFF)
                text = event_text(e)
                if text:
                    events.append({"t": e["t"], "host": name, "kind": e["kind"], "text": text,
                                   "conn": e.get("conn", "")})
        events.sort(key=lambda e: (e["t"], e["host"]))
        return {"title": self.title, "hosts": self.hosts, "media": self.media, "frames": frames,
                "events": events, "series": self._series(frames), "skipped": self.skipped,
                "end": max([f["t_end"] for f in frames] + [e["t"] for e in events] + [0])}

    def _frame_data(self, rec, notes, tracer, isn) -> dict[str, Any]:
        fid = rec["id"]
        data = rec["data"]
        src_host = self._host_of_nic.get(rec["src_nic"], rec["src_nic"])
        dst_mac = data[:6]
        if dst_mac[0] & 1:
            dst = "*"
        else:
            dst = self._host_of_mac.get(bytes(dst_mac), "?")
        arrivals = rec["arrivals"]
        reason = summary(notes, fid)
        lost = is_lost(notes, fid)
        drop = next((e for e in notes if e["frame"] == fid and e["event"] in DROPPED_AT_NIC), None)
        fate, where = "delivered", ""
        if lost:
            fate = "lost"
        elif drop is not None:
            fate, where = "dropped", "NIC"
        elif not arrivals:
            fate = "lost" if not (dst == "*" and len(self.hosts) > 1) else "delivered"
        for a in arrivals:
            c = a.get("counters", {})
            for key, layer in (("ip.in_bad_checksum", "IP"), ("ip.in_hdr_errors", "IP"),
                               ("tcp.in_csum_errors", "TCP"), ("udp.in_csum_errors", "UDP")):
                if c.get(key):
                    fate, where = "dropped", layer
        if drop is not None:
            by = self._host_of_nic.get(drop.get("by", ""), drop.get("by", ""))
            arrivals = arrivals + [{"t": drop["t"], "nic": drop.get("by", ""), "host": by,
                                    "layers": [{"layer": "NIC", "text": f"{drop.get('by')}: FCS (CRC-32) "
                                                "does not match: frame dropped, nothing above sees it"}]}]
        if dst == "?" and arrivals:
            dst = arrivals[0]["host"]
        headers, label, proto, conn = decode(data, isn)
        t_end = max([a["t"] for a in arrivals] + [rec["t"]])
        out = {"id": fid, "t": rec["t"], "t_end": t_end, "src": src_host, "dst": dst, "medium": rec["medium"],
               "len": len(data), "proto": proto, "conn": conn, "label": label,
               "summary": tracer.format(data), "headers": headers, "fate": fate, "where": where,
               "reason": reason, "decisions": [dict(e) for e in notes],
               "arrivals": [{k: v for k, v in a.items() if k != "counters"} for a in arrivals]}
        if "dup_of" in rec:
            out["dup_of"] = rec["dup_of"]
        return out

    def _series(self, frames: list[dict]) -> dict[str, Any]:
        """The first TCP connection's sender view (tcptrace style) and its engine's figures."""
        syn = next((f for f in frames if f["proto"] == "TCP" and f["headers"]["TCP"]["flags"] == "S"), None)
        out: dict[str, Any] = {"segments": [], "acks": [], "sacks": [], "cwnd": [], "ssthresh": [],
                               "rtt": [], "srtt": [], "rto": [], "queue": [], "sender": None, "conn": None}
        if syn is None:
            return out
        sender = syn["src"]
        th = syn["headers"]["TCP"]
        ip = syn["headers"]["IP"]
        conn = f"{ip['src']}:{th['sport']}>{ip['dst']}:{th['dport']}"
        out["sender"], out["conn"] = sender, conn
        key_fwd = (ip["src"], th["sport"], ip["dst"], th["dport"])
        isn = th["seq_abs"]
        wscale = 0
        max_end = 0
        for f in frames:
            if f["proto"] != "TCP":
                continue
            t = f["headers"]["TCP"]
            i = f["headers"]["IP"]
            k = (i["src"], t["sport"], i["dst"], t["dport"])
            if k == key_fwd and t["len"]:
                start = (t["seq_abs"] - isn) & 0xFFFFFFFF
                end = start + t["len"]
                out["segments"].append([f["t"], start, end, end <= max_end, f["id"], f["fate"]])
                max_end = max(max_end, end)
            elif k == (key_fwd[2], key_fwd[3], key_fwd[0], key_fwd[1]):
                if "S" in t["flags"]:
                    wscale = t.get("wscale") or 0
                    continue
                arr = [a for a in f["arrivals"] if a["host"] == sender]
                if "." in t["flags"] and arr and f["fate"] == "delivered":
                    ack = (t["ack_abs"] - isn) & 0xFFFFFFFF
                    ta = arr[0]["t"]
                    out["acks"].append([ta, ack, ack + (t["win"] << wscale)])
                    for left, right in t.get("sack_abs", []):
                        out["sacks"].append([ta, (left - isn) & 0xFFFFFFFF, (right - isn) & 0xFFFFFFFF])
        log = self.net.hosts[sender].host.log.entries
        for e in log:
            if e.get("conn") != conn:
                continue
            if e["kind"] == "cwnd":
                out["cwnd"].append([e["t"], e["cwnd"]])
                if e["ssthresh"] < 1 << 30:
                    out["ssthresh"].append([e["t"], e["ssthresh"]])
            elif e["kind"] == "rtt":
                out["rtt"].append([e["t"], e["rtt_ms"]])
                out["srtt"].append([e["t"], e["srtt_ms"]])
                out["rto"].append([e["t"], e["rto_ms"], 0])
            elif e["kind"] == "rto":
                out["rto"].append([e["t"], e["rto"] / 1e6, e.get("backoff", 0)])
        sender_nics = [n.name for n in self.net.hosts[sender].nics]
        for nic in sender_nics:
            out["queue"] += [[t, d] for t, d in self.queue.get(nic, [])]
        return out


def _answers(frames: list[dict]) -> None:
    """Add to each arrival what the receiving host sent in the same instant (its ACK, its
    echo reply...), and number duplicate ACKs per connection, as a learner reads them."""
    last_ack: dict[str, tuple[int, int]] = {}
    sent_at: dict[tuple[str, int], list[dict]] = {}
    for f in frames:
        if "dup_of" in f:
            continue
        sent_at.setdefault((f["src"], f["t"]), []).append(f)
        t = f["headers"].get("TCP")
        if t is not None and "." in t["flags"] and not t["len"] and t["flags"] == ".":
            ack, n = last_ack.get(f["conn"], (-1, 0))
            if t["ack"] == ack:
                n += 1
                f["dup_ack"] = n
            else:
                n = 0
            last_ack[f["conn"]] = (t["ack"], n)
        elif t is not None:
            last_ack.pop(f["conn"], None)
    for f in frames:
        for a in f["arrivals"]:
            if "layers" not in a:
                continue
            for g in sent_at.get((a["host"], a["t"]), ()):
                if g["id"] == f["id"]:
                    continue
                what = f"duplicate ACK #{g['dup_ack']}: " if "dup_ack" in g else ""
                a["layers"].append({"layer": "sent", "text": f"at the same instant {a['host']} sent "
                                    f"#{g['id']}: {what}{g['label']}"})


def decode(data: bytes, isn: dict) -> tuple[dict, str, str, str]:
    """Headers by layer (plain dicts), a flow-graph label, the protocol, a connection key."""
    try:
        f = parse_frame(data, verify_checksums=False)
    except MalformedPacket as exc:
        return {"error": exc.reason}, f"malformed ({exc.reason})", "?", ""
    h: dict[str, Any] = {"Ethernet": {"src": mac_ntoa(f.eth.src), "dst": mac_ntoa(f.eth.dst),
                                      "type": f"0x{f.eth.ethertype:04x}"}}
    if f.arp is not None:
        a = f.arp
        h["ARP"] = {"op": "request" if a.op == 1 else "reply" if a.op == 2 else a.op,
                    "sender": f"{ip_ntoa(a.spa)} {mac_ntoa(a.sha)}", "target": f"{ip_ntoa(a.tpa)} {mac_ntoa(a.tha)}"}
        if a.op == 1 and a.spa == a.tpa:
            label = f"ARP announcement: {ip_ntoa(a.spa)} is at {mac_ntoa(a.sha)}"
        elif a.op == 1:
            label = f"ARP who has {ip_ntoa(a.tpa)}? tell {ip_ntoa(a.spa)}"
        else:
            label = f"ARP {ip_ntoa(a.spa)} is at {mac_ntoa(a.sha)}"
        return h, label, "ARP", ""
    ip = f.ip
    if ip is None:
        return h, f"EtherType 0x{f.eth.ethertype:04x}", "other", ""
    h["IP"] = {"src": ip_ntoa(ip.src), "dst": ip_ntoa(ip.dst), "ttl": ip.ttl, "id": ip.ident,
               "len": ip.total_length, "proto": ip.proto, "DF": ip.df, "MF": ip.mf,
               "frag_offset": ip.frag_offset}
    if f.tcp is not None:
        t = f.tcp
        key = (ip.src, t.sport, ip.dst, t.dport)
        back = (ip.dst, t.dport, ip.src, t.sport)
        if t.syn or key not in isn:
            isn[key] = t.seq
        rseq = (t.seq - isn[key]) & 0xFFFFFFFF
        rack = (t.ack - isn[back]) & 0xFFFFFFFF if back in isn else t.ack
        n = len(f.payload)
        flags = flag_string(t.flags)
        o = t.options
        th = {"sport": t.sport, "dport": t.dport, "flags": flags, "seq": rseq, "ack": rack,
              "seq_abs": t.seq, "ack_abs": t.ack, "win": t.window, "len": n}
        if o.mss is not None:
            th["mss"] = o.mss
        if o.wscale is not None:
            th["wscale"] = o.wscale
        if o.sack_permitted:
            th["sack_permitted"] = True
        if o.sack_blocks:
            base = isn.get(back, 0)
            th["sack"] = [[(left - base) & 0xFFFFFFFF, (right - base) & 0xFFFFFFFF] for left, right in o.sack_blocks]
            th["sack_abs"] = [list(b) for b in o.sack_blocks]
        if o.ts_val is not None:
            th["ts"] = [o.ts_val, o.ts_ecr]
        h["TCP"] = th
        names = {"S": "SYN", "F": "FIN", "R": "RST", "P": "PSH", ".": "ACK", "U": "URG"}
        words = ", ".join(names[c] for c in flags if c in names)
        label = f"{t.sport} → {t.dport} [{words}] Seq={rseq}" + (f" Ack={rack}" if t.ack_flag else "") + \
            f" Win={t.window} Len={n}"
        if o.sack_blocks:
            label += " SACK=" + ",".join(f"{a}-{b}" for a, b in th["sack"])
        return h, label, "TCP", f"{ip_ntoa(ip.src)}:{t.sport}>{ip_ntoa(ip.dst)}:{t.dport}"
    if f.udp is not None:
        u = f.udp
        h["UDP"] = {"sport": u.sport, "dport": u.dport, "len": u.length}
        return h, f"UDP {u.sport} → {u.dport} Len={u.length - 8}", "UDP", ""
    if f.icmp is not None:
        m = f.icmp
        h["ICMP"] = {"type": m.type, "code": m.code}
        if m.type in (0, 8):
            h["ICMP"].update(id=m.ident, seq=m.seq)
            kind = "Echo (ping) request" if m.type == 8 else "Echo (ping) reply"
            return h, f"ICMP {kind} id={m.ident} seq={m.seq}", "ICMP", ""
        return h, f"ICMP type {m.type} code {m.code}", "ICMP", ""
    return h, f"IP proto {ip.proto}", "IP", ""


def event_text(e: dict) -> str:
    """A host event in words (the annotations of ladders and the viewer)."""
    k = e["kind"]
    if k == "state":
        return f"TCP {e.get('old')} → {e.get('new')}"
    if k == "rto":
        return (f"RTO fired: retransmit seq {e.get('seq')}, timer now {e['rto'] / 1e6:.0f} ms"
                f" (backoff ×{2 ** e.get('backoff', 0)})")
    if k == "cwnd":
        return f"cwnd {e['cwnd']} B, ssthresh {_big(e['ssthresh'])} ({e.get('reason', '')})"
    if k == "retransmit":
        return f"retransmit seq {e.get('seq')} ({e.get('reason', '')})"
    if k == "dupack":
        return f"duplicate ACK #{e.get('count')}"
    if k == "rtt":
        return f"RTT sample {e['rtt_ms']:.1f} ms, SRTT {e['srtt_ms']:.1f} ms, RTO {e['rto_ms']:.0f} ms"
    if k == "arp_resolved":
        return f"ARP: {e['ip']} is at {e['mac']} ({e.get('released', 0)} packet(s) released)"
    if k == "arp_failed":
        return f"ARP: {e['ip']} did not answer ({e.get('dropped', 0)} packet(s) dropped)"
    fields = {x: v for x, v in e.items() if x not in ("t", "host", "kind", "conn")}
    return f"{k} " + ", ".join(f"{x}={v}" for x, v in fields.items())


def _big(v) -> str:
    return "∞" if isinstance(v, int) and v >= 1 << 30 else str(v)
