"""Nothing leaves the lab: a full run on every engine, captured inside the client namespace and on the host."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.engines import ENGINES
from harness.isolation import Capture
from impairments import sweep

pytestmark = [pytest.mark.slow, pytest.mark.lab]
CLI = [sys.executable, "-m", "harness.cli"]


def test_no_packet_leaves_the_lab_on_any_engine(tmp_path: Path):
    matrix = tmp_path / "isolation.yaml"
    matrix.write_text(json.dumps({"name": "isolation", "browsers": list(ENGINES), "profiles": ["ideal"],
                                  "scenarios": ["page-load", "outbound-call"],
                                  "options": {"stats_seconds": 2, "link_check_probes": 100}}))
    host = Capture(None).start()
    proc = subprocess.Popen(CLI + ["run", "--matrix", str(matrix), "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = None
    try:
        deadline = time.monotonic() + 60
        while client is None and time.monotonic() < deadline and proc.poll() is None:
            # This run's own lab (other labs may be up on the machine): the one its process owns.
            mine = [n for r in sweep.records() if r.pid == proc.pid for n in r.namespaces if n.endswith("-client")]
            if mine and mine[0] in sweep.our_namespaces():
                client = Capture(mine[0]).start()  # the browsers start seconds later, after the router boots
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
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {c["browser"] for c in results["cells"]} == set(ENGINES)
    evidence = {"client": client.summary(), "host_with_lab_source": host.with_lab_source()}
    (tmp_path / "isolation.json").write_text(json.dumps(evidence, indent=1))
    assert client.packets > 100, "the capture saw no call: it proves nothing"
    assert client.escaping() == [], f"packets left the lab: {client.escaping()[:10]}; groups {client.igmp_groups}"
    assert host.with_lab_source() == [], f"lab addresses seen on the host: {host.with_lab_source()[:10]}"
    print("lookups attempted inside the lab (all refused on its own loopback):", dict(client.lookups))
