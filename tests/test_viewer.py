"""The run viewer: one self-contained HTML file, checked in a real headless browser (Debian's
chromium + chromedriver through selenium): no console errors, the frame count of the pcap,
a lost frame's reason on click, the receiving host's layers, stepping, and a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

import wirestack
from wirestack.apps.ping import ping
from wirestack.runtime.sim import Network
from wirestack.trace.pcapng import PcapngReader

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(wirestack.__file__)))
    return subprocess.run([sys.executable, "-m", "wirestack"] + args, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, check=True)


def test_report_from_the_api_is_self_contained(tmp_path):
    net = Network(seed=4)
    a = net.host("a", "198.18.0.1/24")
    b = net.host("b", "198.18.0.2/24")
    net.link(a, b, delay_ms=5, loss=0.2)
    with pytest.raises(RuntimeError):
        net.report(str(tmp_path / "none.html"))
    net.record("ping on a lossy wire")
    net.run(ping(a, "198.18.0.2", count=10, interval=0.1, timeout=0.5))
    net.report(str(tmp_path / "r.html"))
    net.close()
    html = (tmp_path / "r.html").read_text()
    # Nothing is fetched: no external script, style, image or link.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "fetch(" not in html and "XMLHttpRequest" not in html
    assert "ping on a lossy wire" in html and "lost: loss p=0.20" in html


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium / chromedriver not installed: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="wirestack-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                f"--user-data-dir={profile}", "--window-size=1500,1300"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_demo_viewer_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    cli(["demo", "--size", "200000", "--loss", "0.05", "--corrupt", "0.01", "--html", "run.html",
         "--pcap", "run.pcapng"], tmp_path)
    browser.get((tmp_path / "run.html").as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    with PcapngReader(tmp_path / "run.pcapng") as r:
        n_pcap = sum(1 for _ in r)
    assert int(browser.find_element(By.ID, "frame-count").text) == n_pcap
    # Click a lost frame's arrow: the page says why it was lost.
    lost = browser.execute_script("return RUNS[0].frames.filter(f => f.fate === 'lost').map(f => f.id)")
    assert lost
    arrow = browser.find_element(By.CSS_SELECTOR, f'g.frame[data-id="{lost[0]}"] line')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", arrow)
    arrow.click()
    assert browser.find_element(By.ID, "frame-title").text.startswith(f"Frame #{lost[0]}")
    assert "Lost on the wire: loss p=0.05" in browser.find_element(By.ID, "wire-decision").text
    # Step forward to the next delivered TCP data segment: each layer of the receiver speaks.
    for _ in range(40):
        browser.find_element(By.ID, "next").click()
        info = browser.find_element(By.ID, "frame-info").text
        if "Len=1448" in info and "What host b did" in info:
            break
    assert "NIC b.eth0: FCS ok" in info
    assert "IP datagram received; checksum ok, delivered to TCP" in info
    assert "TCP segment received" in info
    # Somewhere in the run: an out-of-order segment kept, and the duplicate ACK b sent for it.
    said = browser.execute_script(
        "return RUNS[0].frames.flatMap(f => f.arrivals.flatMap(a => (a.layers || []).map(l => l.text)))")
    assert any("out of order: kept, SACK block added" in x for x in said)
    assert any(re.search(r"at the same instant b sent #\d+: duplicate ACK #2", x) for x in said)
    browser.find_element(By.ID, "prev").click()
    assert "frame" in browser.find_element(By.ID, "position").text
    # The graphs have labelled axes and a legend.
    charts = browser.find_element(By.ID, "charts").text
    for words in ("time (s)", "sequence number (bytes)", "cumulative ACK", "cwnd", "ssthresh", "SRTT", "RTO",
                  "milliseconds (ms)", "frames waiting"):
        assert words in charts
    browser.find_element(By.ID, "zoom-in").click()
    assert browser.get_log("browser") == []
    shot = tmp_path / "viewer.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("WIRESTACK_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
