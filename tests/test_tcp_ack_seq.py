"""The sequence number of a pure ACK when the peer's window has shrunk below what we sent.

A peer whose window closed to zero while our segments were in flight judges every segment
by RFC 9293 §3.10.7.4: with RCV.WND = 0 only SEG.SEQ = RCV.NXT is acceptable, and an
unacceptable segment is dropped, its ACK field unread. If our ACKs carried SND.NXT (beyond
the window) the peer would never learn that we took its data, and both sides would stall
until the connection timed out (seen with `wirestack nc` moving 20 MB through an echo
server at 5% loss). So a pure ACK carries min(SND.NXT, SND.UNA + SND.WND), as Linux does."""

from tcp_harness import RawPeer
from wirestack.units import MS


def test_pure_ack_after_the_window_closed_carries_the_window_edge():
    p = RawPeer()
    _, s, their_next, our_next = p.passive()
    s.send(b"x" * 2920)
    p.poll()
    sent = [seg for seg in p.take() if seg.data]
    assert sum(len(seg.data) for seg in sent) == 2920          # in flight, beyond the window soon
    # The peer acknowledges nothing and closes its window, then sends us data.
    p.inject(".", their_next, our_next, window=0)
    p.inject(".", their_next, our_next, data=b"hello", window=0)
    p.advance(300 * MS)                                        # the delayed ACK at the latest
    acks = [seg for seg in p.take() if not seg.data and seg.has(".") and seg.ack == their_next + 5]
    assert acks, "no ACK for the peer's data"
    # Acceptable to the peer: exactly its RCV.NXT (= our SND.UNA, its window being 0).
    assert acks[0].seq == our_next


def test_pure_ack_inside_the_window_carries_snd_nxt():
    p = RawPeer()
    _, s, their_next, our_next = p.passive()
    s.send(b"x" * 1000)
    p.poll()
    p.take()
    p.inject(".", their_next, our_next, data=b"hello", window=65535)
    p.advance(300 * MS)
    acks = [seg for seg in p.take() if not seg.data and seg.ack == their_next + 5]
    assert acks and acks[0].seq == our_next + 1000


def test_pure_ack_after_an_rto_carries_snd_max_not_the_rewound_snd_nxt():
    """An RTO rewinds SND.NXT to SND.UNA (go-back-N) while the peer may already hold the
    later segments. A pure ACK must still carry the highest sequence sent: with SND.NXT
    it would be an old duplicate to the peer, dropped with its ACK field unread -- and
    two such peers answer each other's ACKs forever (seen in nc at 5% loss)."""
    p = RawPeer()
    _, s, their_next, our_next = p.passive()
    s.send(b"x" * 2920)
    p.poll()
    assert sum(len(seg.data) for seg in p.take()) == 2920
    p.next_timer()                                   # the RTO: the first segment again
    again = [seg for seg in p.take() if seg.data]
    assert again and again[0].seq == our_next and len(again[0].data) < 2920   # SND.NXT rewound
    # The peer's data, acknowledging nothing new (its ACK was lost): we must ACK it.
    p.inject(".", their_next, our_next, data=b"hello", window=65535)
    p.advance(300 * MS)
    acks = [seg for seg in p.take() if not seg.data and seg.ack == their_next + 5]
    assert acks and acks[0].seq == our_next + 2920
