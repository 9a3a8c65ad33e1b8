"""The `webkit` engine: the driver choice and Playwright's recipe (no browser), then Debian's
WebKitGTK for real, inside a lab, through `Page` only.

Figures measured in the lab tests are printed by the last test (run with -s to see them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.engines.base import BrowserMissing, BrowserSpec, LaunchContext, PageTimeout
from harness.engines.webkit import (PLAYWRIGHT, PLAYWRIGHT_WEBKIT_FIX, WEBKITGTK, PlaywrightWebKitBrowser, WebKit,
                                    choose_driver, doctor_row, has_playwright_webkit, playwright_context_args,
                                    playwright_launch_args, playwright_webkit_executable, requested_driver)
from tests.labutil import wait_until

FIGURES: dict = {}
LAB = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("webkit")]


def ctx_for(tmp_path: Path, netns: str = "rtcm-x-client", env: dict | None = None) -> LaunchContext:
    return LaunchContext(netns=netns, page_origin="http://198.18.1.2:8080", workdir=tmp_path,
                         mic_wav=tmp_path / "mic.wav", env=env or {})


# --- the recipe and the choice, no browser -------------------------------------------------------

def test_playwright_launch_args(tmp_path):
    spec = BrowserSpec(name="webkit", engine="webkit", executable="/opt/pw/webkit/pw_run.sh")
    args = playwright_launch_args(ctx_for(tmp_path, env={"PULSE_SERVER": "unix:/x"}), spec, {"slow_mo": 5})
    assert args["headless"] is True and args["slow_mo"] == 5
    assert args["executable_path"] == "/opt/pw/webkit/pw_run.sh"
    assert args["env"]["PULSE_SERVER"] == "unix:/x" and "PATH" in args["env"]
    assert "executable_path" not in playwright_launch_args(ctx_for(tmp_path), BrowserSpec("webkit", "webkit"), {})


def test_playwright_context_grants_the_microphone():
    assert playwright_context_args() == {"permissions": ["microphone"]}
    merged = playwright_context_args({"permissions": ["camera"], "viewport": {"width": 1, "height": 2}},
                                      {"viewport": {"width": 9, "height": 9}, "is_mobile": True})
    assert merged == {"permissions": ["camera", "microphone"], "viewport": {"width": 1, "height": 2},
                      "is_mobile": True}
    assert playwright_context_args({"permissions": ["microphone"]})["permissions"] == ["microphone"]


def test_playwright_webkit_detection_with_a_fake_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))
    path = playwright_webkit_executable()
    assert path.parent.parent == tmp_path and path.name == "pw_run.sh" and path.parent.name.startswith("webkit-")
    assert not has_playwright_webkit() and doctor_row()[1] is False
    assert "playwright install webkit" in doctor_row()[3]
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    assert has_playwright_webkit()
    fake = SimpleNamespace(webkit=SimpleNamespace(executable_path=str(tmp_path / "elsewhere")))
    assert playwright_webkit_executable(fake) == tmp_path / "elsewhere" and not has_playwright_webkit(fake)
    assert WebKit().driver_for() == PLAYWRIGHT
    assert WebKit().binary() == str(path)
    assert doctor_row()[1:3] == (True, str(path))


@pytest.mark.parametrize("requested, pw, gtk, chosen", [
    (None, True, True, PLAYWRIGHT),  # Playwright's WebKit has WebRTC: it wins
    (None, False, True, WEBKITGTK),
    (PLAYWRIGHT, True, False, PLAYWRIGHT),
    (WEBKITGTK, True, True, WEBKITGTK),
    (PLAYWRIGHT, False, True, "missing"),  # asked for explicitly: no silent fallback
    (WEBKITGTK, True, False, "missing"),
    (None, False, False, "missing"),
])
def test_choose_driver(requested, pw, gtk, chosen):
    if chosen == "missing":
        with pytest.raises(BrowserMissing):
            choose_driver(requested, pw, gtk)
    else:
        assert choose_driver(requested, pw, gtk) == chosen


def test_requested_driver_and_the_fix_texts():
    assert requested_driver(None) is None
    assert requested_driver(BrowserSpec("w", "webkit", driver="playwright")) == PLAYWRIGHT
    assert requested_driver(BrowserSpec("w", "webkit", driver="webdriver")) == WEBKITGTK
    assert requested_driver(BrowserSpec("w", "webkit", executable="/x/MiniBrowser")) == WEBKITGTK
    assert requested_driver(BrowserSpec("w", "webkit", executable="/x/pw_run.sh")) == PLAYWRIGHT
    with pytest.raises(BrowserMissing, match="unknown webkit driver"):
        requested_driver(BrowserSpec("w", "webkit", driver="safari"))
    assert "playwright install webkit" in PLAYWRIGHT_WEBKIT_FIX and "install-deps webkit" in PLAYWRIGHT_WEBKIT_FIX
    with pytest.raises(BrowserMissing) as err:
        choose_driver(None, False, False)
    assert "playwright install webkit" in str(err.value) and "apt-get install webkit2gtk-driver xvfb" in str(err.value)


def test_engine_falls_back_to_webkitgtk_here(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))  # no Playwright WebKit there
    engine = WebKit()
    try:
        assert engine.driver_for() == WEBKITGTK
    except BrowserMissing as err:
        pytest.skip(str(err))
    assert engine.binary().endswith("MiniBrowser")
    assert engine.version().startswith("WebKitGTK 2.")
    with pytest.raises(BrowserMissing, match="playwright install webkit"):
        engine.driver_for(BrowserSpec("w", "webkit", driver="playwright"))


def test_launch_picks_playwright_when_present(tmp_path):
    """The Playwright branch, with a stand-in for the Playwright object (nothing is started)."""
    exe = tmp_path / "pw_run.sh"
    exe.write_text("#!/bin/sh\n")
    calls: dict = {}

    class FakeBrowser:
        version = "27.2"

        def new_context(self, **kwargs):
            calls["context"] = kwargs
            raise RuntimeError("stop here")

    def launch(**kwargs):
        calls["launch"] = kwargs
        return FakeBrowser()

    playwright = SimpleNamespace(webkit=SimpleNamespace(executable_path=str(exe), launch=launch), devices={})
    browser = WebKit().launch(playwright, ctx_for(tmp_path), BrowserSpec("webkit", "webkit"), {})
    assert isinstance(browser, PlaywrightWebKitBrowser) and browser.driver == "playwright-webkit"
    assert browser.version == "Playwright WebKit 27.2" and calls["launch"]["headless"] is True
    with pytest.raises(RuntimeError, match="stop here"):
        browser.new_page({"locale": "en-GB"})
    assert calls["context"] == {"locale": "en-GB", "permissions": ["microphone"]}


def test_two_x_servers_get_their_own_displays(tmp_path):
    from harness.engines.xvfb import Xvfb, xvfb_binary

    if not xvfb_binary():
        pytest.skip("Xvfb is not installed")
    with Xvfb(None, tmp_path / "a.log") as a, Xvfb(None, tmp_path / "b.log") as b:
        assert a.display != b.display
        assert Path(f"/tmp/.X{a.display[1:]}-lock").read_text().strip() == str(os.getpid())
    assert not Path(f"/tmp/.X{a.display[1:]}-lock").exists() and not a.alive() and not b.alive()


# --- WebKitGTK for real, in a lab ----------------------------------------------------------------

OURS = ("Xvfb", "WebKitWebDriver", "MiniBrowser", "WebKitWebProcess", "WebKitNetworkProcess", "WebKitGPUProcess")
INDEX = """<!doctype html><html><head><title>rtcm webkit</title><link rel="stylesheet" href="style.css">
<script>console.log("before the hook")</script><script src="app.js"></script></head>
<body><h1>WebKitGTK in the lab</h1><img src="dot.png" width="40" height="40"></body></html>"""
APP_JS = "window.appLoaded = true; setTimeout(() => console.info('after load', 1), 1500);"


DOT_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGMwmPAAAAKUAaHf1OIy"
                           "AAAAAElFTkSuQmCC")  # 1x1


def in_namespace(netns: str) -> dict[int, str]:
    """Our kind of processes whose network namespace is `netns`, pid -> name."""
    import psutil

    target = os.stat(f"/run/netns/{netns}").st_ino
    found = {}
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.info["name"] in OURS \
                    and os.stat(f"/proc/{proc.pid}/ns/net").st_ino == target:
                found[proc.pid] = proc.info["name"]
        except (OSError, psutil.Error):
            pass
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from harness.engines.webkitgtk import tools
    from impairments.lab import Lab
    from impairments.nsutil import run_in_netns

    try:
        tools()
    except BrowserMissing as err:
        pytest.skip(str(err))
    root = tmp_path_factory.mktemp("webkit-site")
    (root / "index.html").write_text(INDEX)
    (root / "app.js").write_text(APP_JS)
    (root / "style.css").write_text("body { background: #fafafa; font-family: sans-serif; }")
    (root / "dot.png").write_bytes(DOT_PNG)
    with Lab() as lab:
        port = 8391
        server = subprocess.Popen(["ip", "netns", "exec", lab.server_ns, sys.executable, "-m", "http.server",
                                   "--bind", lab.server_ip, str(port), "--directory", str(root)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def connects() -> bool:
                with contextlib.suppress(OSError), socket.create_connection((lab.server_ip, port), 0.5):
                    return True
                return False
            assert run_in_netns(lab.client_ns, lambda: wait_until(connects, 5, 0.05)), "no page server"
            yield SimpleNamespace(lab=lab, origin=f"http://{lab.server_ip}:{port}",
                                  workdir=tmp_path_factory.mktemp("webkit-work"))
        finally:
            server.terminate()
            server.wait(timeout=5)


@pytest.fixture(scope="module")
def browser(site):
    ctx = LaunchContext(netns=site.lab.client_ns, page_origin=site.origin, workdir=site.workdir,
                        mic_wav=site.workdir / "mic.wav", exclude_host=site.lab.server_ip)
    t0 = time.monotonic()
    running = WebKit().launch(None, ctx, BrowserSpec(name="webkit", engine="webkit", driver="webkitgtk"), {})
    FIGURES["launch_s"] = round(time.monotonic() - t0, 3)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def page(site, browser):
    t0 = time.monotonic()
    the_page = browser.new_page()
    FIGURES["new_page_s"] = round(time.monotonic() - t0, 3)
    t0 = time.monotonic()
    the_page.goto(site.origin + "/")
    FIGURES["goto_s"] = round(time.monotonic() - t0, 3)
    return the_page


class TestWebKitGTKInALab:
    """In file order; the last one closes the browser and looks for leftovers."""

    pytestmark = LAB

    def test_everything_runs_in_the_client_namespace(self, site, browser, page):
        names = sorted(set(in_namespace(site.lab.client_ns).values()))
        assert {"Xvfb", "WebKitWebDriver", "MiniBrowser", "WebKitWebProcess", "WebKitNetworkProcess"} <= set(names)
        assert browser.driver == page.driver == "webdriver" and browser.version.startswith("WebKitGTK 2.")
        assert page.capabilities["browserName"] == "MiniBrowser"
        FIGURES.update(version=browser.version, processes=names, display=browser.xvfb.display)

    def test_page_load_timing(self, site, page):
        page.wait_for("() => document.readyState === 'complete' && window.appLoaded")
        nav = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
        resources = page.evaluate("""() => performance.getEntriesByType('resource').map(
            (r) => ({name: r.name.split('/').pop(), ms: Math.round(r.duration), bytes: r.transferSize}))""")
        assert nav["name"] == site.origin + "/" and nav["type"] == "navigate"
        assert 0 < nav["domContentLoadedEventEnd"] <= nav["loadEventEnd"]
        assert {"style.css", "app.js", "dot.png"} <= {r["name"] for r in resources}
        FIGURES["page_load"] = {"domContentLoaded_ms": round(nav["domContentLoadedEventEnd"]),
                                "load_ms": round(nav["loadEventEnd"]), "ttfb_ms": round(nav["responseStart"]),
                                "protocol": nav["nextHopProtocol"], "resources": resources}

    def test_no_rtcpeerconnection_no_performance_memory_and_the_constraints(self, page):
        found = page.evaluate("""() => ({RTCPeerConnection: typeof RTCPeerConnection,
            webkitRTCPeerConnection: typeof webkitRTCPeerConnection, RTCRtpSender: typeof RTCRtpSender,
            MediaStream: typeof MediaStream, isSecureContext, performanceMemory: typeof performance.memory})""")
        assert found["RTCPeerConnection"] == found["webkitRTCPeerConnection"] == "undefined"
        assert found["MediaStream"] == "function" and found["performanceMemory"] == "undefined"  # Chromium only
        supported = page.evaluate("navigator.mediaDevices.getSupportedConstraints()")
        assert supported.get("echoCancellation") is True and supported.get("deviceId") is True
        FIGURES["facts"] = found
        FIGURES["supported_constraints"] = {k: supported.get(k, False) for k in (
            "echoCancellation", "noiseSuppression", "autoGainControl", "voiceIsolation", "sampleRate",
            "channelCount", "latency", "volume")}

    def test_getusermedia_with_the_mock_microphone(self, page):
        got = page.evaluate("""async () => {
            const stream = await navigator.mediaDevices.getUserMedia({audio: true});
            const track = stream.getAudioTracks()[0];
            const out = {label: track.label, kind: track.kind, readyState: track.readyState,
                settings: track.getSettings(), capabilities: track.getCapabilities ? track.getCapabilities() : null,
                devices: (await navigator.mediaDevices.enumerateDevices()).map((d) => d.kind + ": " + d.label)};
            try {  // is there sound? (bounded: an AudioContext may never start without an audio device)
                const ac = new AudioContext();
                const analyser = ac.createAnalyser();
                ac.createMediaStreamSource(stream).connect(analyser);
                await Promise.race([ac.resume(), new Promise((r) => setTimeout(r, 1000))]);
                await new Promise((r) => setTimeout(r, 500));
                const buf = new Float32Array(analyser.fftSize);
                analyser.getFloatTimeDomainData(buf);
                out.audioContext = ac.state;
                out.rms = Math.sqrt(buf.reduce((s, x) => s + x * x, 0) / buf.length);
                await ac.close();
            } catch (e) { out.audioContext = "error: " + e.message; }
            stream.getTracks().forEach((t) => t.stop());
            return out;
        }""")
        assert got["kind"] == "audio" and got["readyState"] == "live" and got["label"]
        assert got["settings"].get("sampleRate")
        FIGURES["getUserMedia"] = got

    def test_console_lines_are_captured_after_the_hook(self, page):
        page.evaluate("""() => { console.log('from the test', {n: 42}); console.warn('careful');
                                 setTimeout(() => { throw new Error('thrown later'); }, 0); }""")
        deadline = time.monotonic() + 8
        lines = page.console()
        while time.monotonic() < deadline and not {"info: after load 1", "pageerror: thrown later"} <= set(lines):
            time.sleep(0.2)
            lines = page.console()
        assert 'log: from the test {"n":42}' in lines and "warning: careful" in lines
        assert "pageerror: thrown later" in lines and "info: after load 1" in lines
        assert "log: before the hook" not in lines  # logged while loading, before goto's hook: lost
        FIGURES["console"] = lines

    def test_screenshot_is_a_png(self, page, tmp_path):
        data = page.screenshot(tmp_path / "shot.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 100 and height > 100
        FIGURES["screenshot"] = {"width": width, "height": height, "bytes": len(data)}

    def test_evaluate_semantics(self, page):
        from harness.engines.webkitgtk import ScriptError

        assert page.evaluate("(x) => x + 1", 1) == 2
        assert page.evaluate("function (o) { return o.a * 2 }", {"a": 21}) == 42
        assert page.evaluate("async () => { await new Promise((r) => setTimeout(r, 50)); return 'later'; }") == "later"
        assert page.evaluate("document.title") == "rtcm webkit" and page.evaluate("undefined") is None
        assert page.evaluate("[1, {a: null}, 'x']") == [1, {"a": None}, "x"]
        assert page.evaluate("Promise.resolve(7)") == 7
        with pytest.raises(ScriptError, match="boom"):
            page.evaluate("() => { throw new Error('boom'); }")
        with pytest.raises(ScriptError, match="rejected here"):
            page.evaluate("async () => { throw new TypeError('rejected here'); }")
        with pytest.raises(ScriptError, match="nope"):
            page.evaluate("nope.nope")
        assert page.wait_for("(n) => window.appLoaded && n", 5) == 5
        with pytest.raises(PageTimeout, match="window.never"):
            page.wait_for("() => window.never", timeout_s=0.3)
        box: dict = {}
        worker = threading.Thread(target=lambda: box.update(v=page.evaluate("(x) => x * 3", 3)))
        worker.start()
        worker.join()
        assert box["v"] == 9  # calls from any thread are marshalled onto the namespace thread

    def test_a_second_page_is_a_fresh_session(self, site, browser, page):
        page.evaluate("() => localStorage.setItem('who', 'first')")
        t0 = time.monotonic()
        second = browser.new_page({"viewport": {"width": 800, "height": 600}})
        FIGURES["second_page_s"] = round(time.monotonic() - t0, 3)
        try:
            second.goto(site.origin + "/")
            assert second.evaluate("localStorage.getItem('who')") is None
            assert second.evaluate("[innerWidth, innerHeight]")[0] <= 800
            assert second.session.session_id != page.session.session_id
            assert len([n for n in in_namespace(site.lab.client_ns).values() if n == "MiniBrowser"]) == 2
        finally:
            t0 = time.monotonic()
            second.close()
            FIGURES["page_close_s"] = round(time.monotonic() - t0, 3)
        assert list(in_namespace(site.lab.client_ns).values()).count("MiniBrowser") == 1
        assert page.evaluate("localStorage.getItem('who')") == "first"

    def test_close_leaves_nothing_in_the_namespace(self, site, browser, page):
        display = browser.xvfb.display
        t0 = time.monotonic()
        browser.close()
        FIGURES["browser_close_s"] = round(time.monotonic() - t0, 3)
        assert in_namespace(site.lab.client_ns) == {}
        assert not browser.is_connected() and not Path(f"/tmp/.X{display[1:]}-lock").exists()
        print("\nwebkitgtk figures:", json.dumps(FIGURES, indent=1))
