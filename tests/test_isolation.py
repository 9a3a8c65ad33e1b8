"""Nothing leaves the lab: a full run on every engine, captured inside the client namespace and on the host."""

import errno
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.engines import ENGINES
from harness.isolation import Capture
from impairments import sweep

pytestmark = [pytest.mark.slow, pytest.mark.lab]
CLI = [sys.executable, "-m", "harness.cli"]


def _captured(tmp_path: Path, spec: dict) -> tuple[dict, Capture, Capture]:
    """Run `spec` through the CLI while capturing the client namespace and the host."""
    matrix = tmp_path / "isolation.yaml"
    matrix.write_text(json.dumps({"name": "isolation", "profiles": ["ideal"], **spec}))
    host = Capture(None).start()
    # One worker: the capture follows the one lab the run's own process owns.
    proc = subprocess.Popen(CLI + ["run", "--matrix", str(matrix), "--out", str(tmp_path / "out"), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = None
    try:
        deadline = time.monotonic() + 60
        while client is None and time.monotonic() < deadline and proc.poll() is None:
            # This run's own lab (other labs may be up on the machine): the one its process owns.
            mine = [n for r in sweep.records() if r.pid == proc.pid for n in r.namespaces if n.endswith("-client")]
            if mine and mine[0] in sweep.our_namespaces():
                try:
                    client = Capture(mine[0]).start()  # the browsers start seconds later, after the router boots
                except OSError as e:
                    # The name appears in /run/netns a moment before its bind mount does: EINVAL until then.
                    if e.errno != errno.EINVAL:
                        raise
            time.sleep(0.02)
        assert client is not None, "the run never made a client namespace"
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        host.stop()
        if client:
            client.stop()
    assert proc.returncode == 0, output
    return json.loads((tmp_path / "out" / "results.json").read_text()), client, host


RUNS = {
    "engines": {"browsers": list(ENGINES), "scenarios": ["page-load", "outbound-call"],
                "options": {"stats_seconds": 2, "link_check_probes": 100}},
    "plivo": {"sdks": ["plivo"], "browsers": ["chromium", "firefox"], "scenarios": ["outbound-call"],
              "options": {"stats_seconds": 4, "link_check_probes": 0, "connect_timeout_s": 5}},
}


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """Both runs at once, each captured in its own lab's client namespace; the host captures see both,
    and neither may show a lab address there. A run's failure is raised in the test that reads it."""
    with ThreadPoolExecutor(len(RUNS)) as pool:
        return {name: pool.submit(_captured, tmp_path_factory.mktemp(name), spec) for name, spec in RUNS.items()}


def test_no_packet_leaves_the_lab_on_any_engine(captured, tmp_path: Path):
    results, client, host = captured["engines"].result()
    assert {c["browser"] for c in results["cells"]} == set(ENGINES)
    evidence = {"client": client.summary(), "host_with_lab_source": host.with_lab_source()}
    (tmp_path / "isolation.json").write_text(json.dumps(evidence, indent=1))
    assert client.packets > 100, "the capture saw no call: it proves nothing"
    assert client.escaping() == [], f"packets left the lab: {client.escaping()[:10]}; groups {client.igmp_groups}"
    assert host.with_lab_source() == [], f"lab addresses seen on the host: {host.with_lab_source()[:10]}"
    print("lookups attempted inside the lab (all refused on its own loopback):", dict(client.lookups))


def test_a_plivo_run_sends_nothing_toward_plivo_com(captured, tmp_path: Path):
    """plivo-browser-sdk posts the user's password to stats.plivo.com after login and reaches for
    stun.plivo.com, nimbus.plivo.com and insights.plivo.com: in the lab every such lookup must fail
    on the namespace's own loopback (Chromium resolves nothing at all), and no packet may leave."""
    results, client, host = captured["plivo"].result()
    assert {c["sdk"] for c in results["cells"]} == {"plivo"}
    assert any(c["status"] == "supported" for c in results["cells"]), "no Plivo call ran: the capture proves nothing"
    (tmp_path / "isolation.json").write_text(json.dumps({"client": client.summary()}, indent=1))
    assert client.packets > 100
    assert client.escaping() == [], f"packets left the lab: {client.escaping()[:10]}"
    assert host.with_lab_source() == [], f"lab addresses seen on the host: {host.with_lab_source()[:10]}"
    plivo = {name: n for name, n in client.lookups.items() if name.endswith("plivo.com")}
    print("plivo.com lookups inside the lab (refused on its own loopback):", plivo)
