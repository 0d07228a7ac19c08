"""The command line's one error path: every bad input is one line on stderr,
`wirestack CMD: error: ...`, and exit status 2, whatever the subcommand and whichever
option; a run that fails is status 1. No traceback, no usage dump, nothing on stdout."""

from __future__ import annotations

import pytest

from wirestack.cli import build_parser, main

MISSING_DIR = "/nonexistent-wirestack-dir/out"
TAP = ["--tap", "wstest0", "--ip", "198.18.9.2/24"]
# The options every command with a real-network mode shares (TUN device, DNS, a shared wire).
NET = [["--tun", "bad/name"], ["--tun", "much-too-long-name0"], ["--dns", "x"], ["--dns", "198.18.0.300"],
       ["--wire", "bogus"], ["--wire", "tcp:127.0.0.1:0"]]
C = ["-c", "198.18.0.2"]
TWO_TAPS = ["--tap", "wsl:tapL:198.18.1.1/24:198.18.1.2/24", "--tap", "wsr:tapR:198.18.2.1/24:198.18.2.2/24"]

# Every subcommand, a bad value for each of its options (and positional arguments).
BAD = {
    "ping": [
        ["-c", "x"], ["-c", "0"], ["-s", "-1"], ["-s", "65508"], ["-s", "70000"], ["-i", "-1"],
        ["-i", "nan"], ["-W", "x"], ["-t", "0"], ["-t", "256"], ["--seed", "x"], ["--loss", "2"],
        ["--loss", "-0.1"], ["--delay", "-1"], ["--jitter", "x"], ["--pcap", MISSING_DIR + "/p.pcap"],
        ["--tap", "bad/name"], ["--tap", "much-too-long-name0"], ["--ip", "1.2.3"],
        ["--ip", "198.18.9.2/33"], ["--gateway", "x"], ["--mac", "zz:zz"],
        ["--mac", "01:00:5e:00:00:01"], ["--netns", "a/b"], ["--peer-ip", "198.18.9.300/24"],
        ["not.an.address"],
    ] + NET,
    "demo": [
        ["--size", "-1"], ["--size", "x"], ["--reorder", "2"], ["--duplicate", "-1"],
        ["--corrupt", "x"], ["--rate", "-1"], ["--plot", "x.txt"], ["--plot", MISSING_DIR + "/x.png"],
        ["--decisions", MISSING_DIR + "/d.jsonl"], ["--events", MISSING_DIR + "/e.jsonl"],
        ["--seed", "x"], ["--loss", "5"], ["--delay", "-1"], ["--jitter", "-1"],
        ["--pcap", MISSING_DIR + "/d.pcap"], ["--pcap", "/"],
        ["--pcap-at", "a b"], ["--pcap-at", ""],
        ["--ladder", MISSING_DIR + "/l.txt"], ["--html", MISSING_DIR + "/run.html"], ["--html", "/"],
        ["--kill", "0"], ["--kill", "x"], ["--corrupt-frame", "-1"], ["--delay-frame", "3"],
        ["--delay-frame", "3:-1"], ["--delay-frame", "0:5"], ["--what-if", "loss"],
    ],
    "lab": [
        ["no-such-lab"], ["--seed", "x"], ["handshake", "--pcap", MISSING_DIR + "/h.pcap"],
        ["handshake", "--pcap-at", "a/b"],
        ["handshake", "--ladder", MISSING_DIR + "/l.svg"], ["handshake", "--html", MISSING_DIR + "/h.html"],
        ["handshake", "--plot", "x.txt"], ["handshake", "--plot", MISSING_DIR + "/x.png"],
    ],
    "serve": [
        ["--echo", "0"], ["--echo", "99999"], ["--discard", "x"], ["--chargen", "-1"],
        ["--iperf3", "70000"], ["--udp-echo", "0"], ["--http", "99999"],
        ["--http", "8080:/nonexistent-wirestack-dir"], ["--pcap", MISSING_DIR + "/s.pcap"],
        ["--tap", "bad/name"], ["--ip", "x"], ["--gateway", "1.2.3"], ["--mac", "x"],
        ["--netns", ".."], ["--peer-ip", "x"], ["--offload", "tso"],
        # refused before anything is created (no root needed to see it):
        ["--tap", "wstest0", "--ip", "198.18.9.2"],                                   # no prefix
        TAP + ["--peer-ip", "198.18.9.2/24"],                                          # same address
        TAP + ["--peer-ip", "198.18.10.1/24"],                                         # other subnet
        TAP + ["--echo", "7", "--discard", "7"],                                       # same port
    ] + NET,
    "nc": [
        ["--loss", "5"], ["--delay", "-1"], ["--seed", "x"], ["198.18.0.2", "0"],
        ["198.18.0.2", "99999"], ["not-an-ip", "7"], ["198.18.0.2"], ["-l", "0"], ["-w", "0"],
        ["-w", "x"], ["--tap", "bad/name"], ["--ip", "x"], ["--mac", "x"], ["--netns", "a b"],
        ["--peer-ip", "x"], ["--gateway", "x"], ["--ip", "198.18.9.2/24"],              # no --tap
        ["-l", "5000", "198.18.0.2", "7"],
    ] + NET,
    "get": [
        ["http://198.18.9.1:99999/"], ["http://198.18.9.1:0/"], ["ftp://198.18.9.1/"],
        ["http://example.com/"], ["http://198.18.9.1/", "-o", MISSING_DIR + "/index.html"],
        ["http://198.18.9.1/", "-w", "-1"], ["http://198.18.9.1/", "--pcap", MISSING_DIR + "/g.pcap"],
        ["http://198.18.9.1/", "--tap", "bad/name"], ["http://198.18.9.1/", "--ip", "x"],
        ["http://198.18.9.1/", "--mac", "x"], ["http://198.18.9.1/", "--netns", ""],
        ["http://198.18.9.1/", "--peer-ip", "x"], ["http://198.18.9.1/", "--gateway", "x"],
        ["http://198.18.9.1/", "--tap", "wstest0", "--ip", "198.18.9.2"],
    ] + [["http://198.18.9.1/"] + argv for argv in NET],
    "iperf3": [
        [], ["-c", "x"], ["-c", "198.18.0.2", "-p", "0"], ["-c", "198.18.0.2", "-t", "-1"],
        ["-c", "198.18.0.2", "-t", "0"], ["-c", "198.18.0.2", "-P", "0"], ["-c", "198.18.0.2", "-R", "x"],
        ["-c", "198.18.0.2", "--seed", "x"], ["-c", "198.18.0.2", "--loss", "2"],
        ["-c", "198.18.0.2", "--delay", "-1"], ["-c", "198.18.0.2", "--rate", "-1"],
        ["-c", "198.18.0.2", "--tap", "bad/name"], ["-c", "198.18.0.2", "--ip", "x"],
        ["-c", "198.18.0.2", "--gateway", "x"], ["-c", "198.18.0.2", "--mac", "x"],
        ["-c", "198.18.0.2", "--netns", "a/b"], ["-c", "198.18.0.2", "--peer-ip", "x"],
        ["-c", "198.18.0.2", "--ip", "198.18.9.2/24"],                                # no --tap
    ] + [C + argv for argv in NET],
    "traceroute": [
        ["x"], ["198.18.0.300"], ["-m", "0"], ["-m", "x"], ["-q", "0"], ["-w", "-1"], ["-w", "x"],
        ["--routers", "0"], ["--mtu", "0"], ["--silent", "0"], ["--silent", "x"], ["--seed", "x"],
        ["--loss", "2"], ["--delay", "-1"], ["--jitter", "x"], ["--pcap", MISSING_DIR + "/t.pcap"],
        ["--tap", "bad/name"], ["--ip", "x"], ["--gateway", "x"], ["--mac", "x"], ["--netns", "a/b"],
        ["--peer-ip", "x"],
    ] + NET,
    "arp": [
        ["x"], ["198.18.0.2", "198.18.0"], ["--seed", "x"], ["--loss", "-1"], ["--delay", "x"],
        ["--jitter", "-1"], ["--pcap", MISSING_DIR + "/a.pcap"], ["--tap", "bad/name"], ["--ip", "x"],
        ["--gateway", "x"], ["--mac", "x"], ["--netns", "a/b"], ["--peer-ip", "x"],
    ] + NET,
    "route": [
        ["get"], ["show", "198.18.0.2"], ["get", "x"], ["--routers", "0"], ["--routers", "x"],
        ["--host", "a/b"], ["--host", "nobody"], ["--tap", "bad/name"], ["--ip", "x"],
        ["--gateway", "x"], ["--mac", "x"], ["--netns", "a/b"], ["--peer-ip", "x"],
    ] + NET,
    "router": [
        [], ["--tap", "a:t:198.18.1.1/24"], ["--tap", "a:t:198.18.1.1/24:x/24"],
        ["--tap", "a:t:198.18.1.1/24:198.18.1.2/24:67"], ["--tap", "a:t:198.18.1.1/24:198.18.1.2/24:x"],
        ["--tap", "a:t:198.18.1.1/24:198.18.1.2/24"],                                 # only one
        ["--route", "198.18.3.0/24", "x"], ["--route", "x", "198.18.1.2"], ["--route", "default"],
        TWO_TAPS + ["--route", "default", "default"], TWO_TAPS + ["--route", "198.18.3.0/24", "198.18.1.2/24"],
        ["--rate", "0"], ["--rate", "x"], ["--queue", "0"], ["--pcap", MISSING_DIR + "/r.pcap"],
    ],
    "dhcp": [
        ["--serve", "198.18.5.50"], ["--serve", "198.18.5.99-198.18.5.50"], ["--serve", "x-y"],
        ["--router", "x"], ["--dns-server", "1.2.3"], ["--lease", "0"], ["--timeout", "0"],
        ["--timeout", "x"], ["--seed", "x"], ["--loss", "2"], ["--delay", "-1"], ["--jitter", "x"],
        ["--pcap", MISSING_DIR + "/d.pcap"], ["--tap", "bad/name"], ["--ip", "x"], ["--gateway", "x"],
        ["--mac", "x"], ["--netns", "a/b"], ["--peer-ip", "x"],
    ] + NET,
    "dns": [
        [], ["--serve"], ["--zone", "www.lab.test"], ["--zone", "www.lab.test=x"], ["--zone", "=198.18.6.10"],
        ["--timeout", "0"], ["--timeout", "-1"], ["--seed", "x"], ["--loss", "2"], ["--delay", "-1"],
        ["--jitter", "x"], ["--pcap", MISSING_DIR + "/d.pcap"], ["--tap", "bad/name"], ["--ip", "x"],
        ["--gateway", "x"], ["--mac", "x"], ["--netns", "a/b"], ["--peer-ip", "x"],
    ] + NET,
    "wire": [
        [], ["--medium", "bus"], ["--port", "bogus"], ["--port", "unix:"], ["--topology", MISSING_DIR + "/t.toml"],
        ["--seed", "x"], ["--loss", "2"], ["--delay", "-1"], ["--jitter", "x"], ["--rate", "-1"],
        ["--queue", "-1"], ["--mtu", "0"], ["--reorder", "x"], ["--reorder-delay", "-1"],
        ["--duplicate", "2"], ["--corrupt", "-1"], ["--truncate", "x"], ["--gilbert", "0.1"],
        ["--gilbert", "0.1,2"], ["--replay-delay", "-1"], ["--pcap", MISSING_DIR + "/w.pcap"],
        ["--decisions", MISSING_DIR + "/w.jsonl"], ["--log-level", "loud"], ["--log-max", "0"],
    ],
}

CASES = [pytest.param([cmd] + argv, id=" ".join([cmd] + argv)) for cmd, bad in BAD.items() for argv in bad]


def run(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("argv", CASES)
def test_a_bad_value_is_one_line_and_status_2(capsys, argv):
    status, out, err = run(capsys, argv)
    assert status == 2, (status, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"wirestack {argv[0]}: error: "), err
    assert "Traceback" not in err


def test_every_subcommand_and_every_option_is_covered():
    """The table above names every option of every subcommand, so a new option cannot
    slip in without a bad-value case."""
    parser = build_parser()
    for name, sub in parser.commands.items():
        if name not in BAD:
            continue   # commands added elsewhere carry their own tests
        tried = {a for argv in BAD[name] for a in argv if a.startswith("-")}
        for action in sub._actions:
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                assert set(action.option_strings) & tried, f"{name}: no bad value for {action.option_strings}"


def test_every_option_has_help_text_and_every_default_is_shown():
    parser = build_parser()
    for name, sub in parser.commands.items():
        for action in sub._actions:
            assert action.help, f"wirestack {name} {action.option_strings or action.dest}: no help"
        text = sub.format_help()
        for action in sub._actions:
            if action.option_strings and not (action.default is None or action.default is False
                                              or action.default == "==SUPPRESS=="):
                assert f"default: {action.default}" in " ".join(text.split()), \
                    f"wirestack {name} {action.option_strings}: default not shown"


def test_loss_help_says_per_frame_and_per_direction(capsys):
    for cmd in ("ping", "demo", "nc"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "for each frame in each direction" in text, cmd


def test_version(capsys):
    from wirestack import __version__
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"wirestack {__version__}\n"


def test_a_run_that_fails_is_status_1_not_2(capsys):
    status, out, err = run(capsys, ["ping", "-c", "2", "-i", "0.2", "--loss", "1"])
    assert status == 1 and err == ""


def test_plot_without_matplotlib_says_how_to_install_it(capsys, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    status, out, err = run(capsys, ["demo", "--size", "1000", "--no-pcap", "--plot", "/tmp/x.png"])
    assert status == 2 and out == ""
    assert err == "wirestack demo: error: --plot needs matplotlib: pip install 'wirestack[plot]'\n"


@pytest.mark.parametrize("argv, status, stderr", [
    (["nc", "198.18.0.2", "5"], 1,
     "wirestack nc: error: connect to 198.18.0.2 port 5 (tcp) failed: Connection refused\n"),
    (["nc", "198.18.0.9", "7", "-w", "30"], 1,
     "wirestack nc: error: connect to 198.18.0.9 port 7 (tcp) failed: No route to host\n"),
    (["nc", "198.18.0.2", "7", "--loss", "1", "-w", "5"], 1,
     "wirestack nc: error: connect to 198.18.0.2 port 7 (tcp) failed: No route to host\n"),
])
def test_failed_simulated_connections_say_what_happened_without_noise(argv, status, stderr):
    """In a fresh process, so that asyncio's complaints at exit ("Task was destroyed but it
    is pending!") would be seen: there must be none."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "wirestack"] + argv, input=b"", capture_output=True,
                          timeout=120)
    assert (proc.returncode, proc.stderr.decode()) == (status, stderr)
    assert proc.stdout == b""


def test_simulated_wire_defaults_are_the_same_in_ping_nc_and_iperf3():
    parser = build_parser()
    defaults = {name: {k: parser.commands[name].get_default(k) for k in ("delay", "loss", "seed")}
                for name in ("ping", "nc", "iperf3")}
    assert defaults["ping"] == defaults["nc"] == defaults["iperf3"] == {"delay": 0.5, "loss": 0.0, "seed": 1}


@pytest.mark.parametrize("argv, message", [
    (["get", "http://web.lab.test/", *TAP],
     "http://web.lab.test/: web.lab.test is a name: give a DNS server with --dns ADDR (or use the IPv4 address)"),
    (["get", "http://bad_name.test/", *TAP, "--dns", "198.18.9.1"],
     "http://bad_name.test/: HOST must be an IPv4 address or a host name "
     "(letters, digits, '-', labels of 1-63 separated by '.')"),
    (["get", f"http://{'a' * 64}.test/", *TAP, "--dns", "198.18.9.1"],
     f"http://{'a' * 64}.test/: HOST must be an IPv4 address or a host name "
     "(letters, digits, '-', labels of 1-63 separated by '.')"),
])
def test_get_takes_a_host_name_only_with_a_resolver_to_ask(capsys, argv, message):
    """A name in the URL needs --dns: without one, get says so before touching any device."""
    assert run(capsys, argv) == (2, "", f"wirestack get: error: {message}\n")
