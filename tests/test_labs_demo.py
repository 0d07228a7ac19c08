"""The demo's figures agree wherever they are shown: the text, --json and the plot count
retransmissions the same way (host a's tcp.retrans_segs)."""

import pytest

from wirestack.labs.demo import DemoOptions, run_demo


@pytest.mark.parametrize("argv", [
    [],                                  # seed 1: a lost SYN, fast retransmits
    ["--seed", "3", "--loss", "0.05"],
    ["--loss", "1", "--size", "1000"],   # nothing gets through: only SYN/ARP retries
])
def test_text_json_and_plot_agree_on_retransmissions(tmp_path, argv):
    opt = DemoOptions(pcap=None, plot=str(tmp_path / "p.png"))
    names = {"--seed": ("seed", int), "--loss": ("loss", float), "--size": ("size", int)}
    for flag, value in zip(argv[::2], argv[1::2]):
        name, kind = names[flag]
        setattr(opt, name, kind(value))
    res = run_demo(opt)
    assert res.retransmissions == res.counters["a"].get("tcp.retrans_segs", 0)
    if res.sha256_ok:
        # What the plot draws (segments seen again on a's NIC, data and SYN/FIN) is what
        # a's counter says. (With --loss 1 the retried SYNs never pass ARP: nothing to draw.)
        assert res.wire_retransmissions == res.retransmissions > 0
