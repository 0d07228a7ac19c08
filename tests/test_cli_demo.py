"""`wirestack demo` tells the truth, the same way everywhere: the text, --json and the plot
agree; --trace prints the frames; numbers are printed for people (no 2**62, no repr)."""

from __future__ import annotations

import json
import re


from wirestack.cli import main


def run(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_trace_prints_every_frame_with_its_id_and_fate(capsys):
    status, out, err = run(capsys, ["demo", "--size", "50000", "--no-pcap", "--trace"])
    assert status == 0, err
    frames = [line for line in out.splitlines() if re.match(r"^#\d+ +\d+\.\d{6} ", line)]
    total = int(re.match(r"#(\d+) ", frames[-1]).group(1))
    assert len(frames) == total > 50                    # every frame, in order, numbered
    assert [int(line[1:].split()[0]) for line in frames] == list(range(1, total + 1))
    lost = [line for line in frames if line.endswith("[LOST on the wire]")]
    decided = int(re.search(r"dropped_loss (\d+)", out).group(1))
    assert len(lost) == decided > 0                     # the decision log and the trace agree
    assert "Flags [S]" in out and "Flags [S.]" in out   # the handshake is in it


def test_absolute_sequence_numbers_with_S(capsys):
    _, rel, _ = run(capsys, ["demo", "--size", "20000", "--no-pcap", "--trace"])
    _, absolute, _ = run(capsys, ["demo", "--size", "20000", "--no-pcap", "--trace", "-S"])
    syn_rel = next(line for line in rel.splitlines() if "Flags [S]" in line)
    syn_abs = next(line for line in absolute.splitlines() if "Flags [S]" in line)
    assert ", seq 0," in syn_rel and ", seq 0," not in syn_abs


def test_failed_transfer_still_reports_the_retransmissions(capsys):
    status, out, err = run(capsys, ["demo", "--loss", "1", "--size", "1000", "--no-pcap"])
    assert status == 1
    n = int(re.search(r"retransmissions (\d+) \(host a's tcp.retrans_segs\)", out).group(1))
    assert n == int(re.search(r"^ +(\d+)  tcp\.retrans_segs$", out, re.M).group(1))


def test_numbers_are_printed_for_people(capsys):
    status, out, err = run(capsys, ["demo", "--size", "100000", "--no-pcap", "--loss", "0",
                                    "--reorder", "0", "--duplicate", "0"])
    assert status == 0
    assert "ssthresh infinite" in out and "4611686018427387904" not in out
    assert "to a closed port: Connection refused (b answered with ICMP port unreachable)" in out
    assert "Error(" not in out                         # no Python repr


def test_demo_explains_costly_losses_goodput_and_next_steps(capsys):
    status, out, err = run(capsys, ["demo", "--no-pcap"])          # seed 1 loses the first SYN
    assert status == 0
    assert re.search(r"1 of 2 SYNs were lost .* that cost 1\.0 s before a SYN got through", out)
    assert "the TCP connection opens (SYN, SYN-ACK, ACK)" in out
    assert re.search(r"that is \d+% of the 100 Mbit/s link: TCP sends at most one window", out)
    assert "next steps:" in out and "wirestack lab" in out


def test_json_records_inputs_with_units_null_error_and_ping_rtts(capsys):
    status, out, err = run(capsys, ["demo", "--size", "20000", "--no-pcap", "--json", "--seed", "2"])
    assert status == 0
    res = json.loads(out)
    assert res["inputs"] == {"seed": 2, "size_bytes": 20000, "loss": 0.02, "delay_ms": 5.0,
                             "jitter_ms": 1.0, "reorder": 0.02, "duplicate": 0.01, "corrupt": 0.0,
                             "rate_mbps": 100.0, "check_fcs": True, "pcap": None}
    assert res["error"] is None
    assert len(res["ping_rtts_ms"]) == res["ping_received"] > 0
    assert res["size_bytes"] == 20000 and "bytes" not in res
    st = res["tcp_stats"]
    assert "srtt_ms" in st and "srtt" not in st and 1 < st["srtt_ms"] < 100
    assert "cwnd_bytes" in st


def test_no_pcap_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, ["demo", "--size", "10000", "--no-pcap"])
    assert status == 0 and list(tmp_path.iterdir()) == []
    assert "no pcap written (--no-pcap)" in out


def test_plot_of_a_connection_that_never_opened_is_drawn_without_warnings(tmp_path):
    import subprocess
    import sys
    png = tmp_path / "p.png"
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "wirestack", "demo", "--loss", "1",
                           "--size", "1000", "--no-pcap", "--plot", str(png)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1                    # the transfer failed: that is the run's result
    assert proc.stderr == ""                       # but nothing else went wrong
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
