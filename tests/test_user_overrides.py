"""A user's own pytest run, as the README shows it: their conftest overrides `browser_launch_args`,
`browser_context_args` and `connect_options`, and their own probe reads on the page what each
changed. The remote column is a Playwright browser server that the conftest starts inside the
lab's client namespace, as `harness/engines/remote.py` asks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("chromium")]

CONFTEST = '''
import json
import subprocess

import pytest
from playwright._impl._driver import compute_driver_executable


@pytest.fixture(scope="session")
def browser_launch_args():
    return {"chromium": {"args": ["--user-agent=rtcmatrix-user-launch-args"]}}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"locale": "de-DE"}


@pytest.fixture(scope="session")
def connect_options(lab, tmp_path_factory):
    """A browser server in the lab's client namespace, so its traffic crosses the lab link."""
    node, cli = compute_driver_executable()
    config = tmp_path_factory.mktemp("server") / "server.json"
    config.write_text(json.dumps({"executablePath": "/usr/bin/chromium", "host": "127.0.0.1", "port": 0,
                                  "args": ["--user-agent=rtcmatrix-remote-server"]}))
    server = subprocess.Popen(["ip", "netns", "exec", lab.client_ns, node, cli, "launch-server",
                               "--browser", "chromium", "--config", str(config)], stdout=subprocess.PIPE, text=True)
    endpoint = server.stdout.readline().strip()
    assert endpoint.startswith("ws://"), endpoint
    yield {"chromium-remote": {"ws_endpoint": endpoint}}
    server.terminate()
    server.wait(timeout=15)
'''

PROBE = '''
import pytest

pytestmark = [pytest.mark.scenario("page-load")]


def test_what_the_overrides_changed(cell, softphone):
    softphone.open()
    seen = softphone.page.evaluate("() => ({language: navigator.language, userAgent: navigator.userAgent})")
    cell.prove("page", "the page runs in the locale of browser_context_args", seen["language"] == "de-DE", **seen)
    wanted = {"chromium": "rtcmatrix-user-launch-args", "chromium-remote": "rtcmatrix-remote-server"}[cell.cell.browser]
    cell.prove("page", "the browser is the one its arguments launched", seen["userAgent"] == wanted, **seen)
'''


def test_a_users_conftest_overrides_launch_context_and_connect(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_overrides.py").write_text(PROBE)
    matrix = tmp_path / "overrides.json"
    matrix.write_text(json.dumps({"name": "overrides", "profiles": ["ideal"], "scenarios": ["page-load"],
                                  "browsers": ["chromium", {"name": "chromium-remote", "engine": "chromium"}],
                                  "options": {"link_check_probes": 0}}))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(project), "--matrix", str(matrix), "--rtcm-out", str(out),
                           "-p", "no:cacheprovider", "--rootdir", str(project), "-c", "/dev/null", "-q"],
                          cwd=project, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    cells = {c["browser"]: c for c in results["cells"]}
    assert set(cells) == {"chromium", "chromium-remote"}
    for name, c in cells.items():
        assert c["status"] == "supported", (name, c["reason"])
        assert len(c["proofs"]) == 2 and all(p["ok"] for p in c["proofs"]), c["proofs"]
    engines = results["engines"]
    assert engines["chromium"]["driver"] == "playwright-cdp"
    assert engines["chromium-remote"]["driver"] == "playwright-cdp (connect)"
    assert engines["chromium"]["capabilities"]["userAgent"] == "rtcmatrix-user-launch-args"
