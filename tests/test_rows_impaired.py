"""Every row on Chromium and Firefox under three impaired profiles of the nightly matrix, through
`rtcmatrix run` as a user's nightly job runs it (`make test-nightly`; 9.5 minutes here on 2 workers, so it is
not part of `make test`, whose row tests run each row on an ideal link beside its broken-SDK run).

Under impairment a row may be `degraded` or even `failed`: that is a finding about the SDK on that link,
and the test does not judge it. What it does require is that every cell ran (no `error`), that each
verdict carries its proofs, and that none rests on the page alone: the far end or the wire took part.
"""

from pathlib import Path

import pytest
import yaml

from tests.rowutil import run_matrix

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.nightly]

NIGHTLY = Path(__file__).resolve().parent.parent / "matrices" / "nightly.yaml"
PROFILES = ["3g", "wifi-congested", "lossy-5"]
BROWSERS = ["chromium", "firefox"]
# Rows the harness cannot drive on an engine: reported as skipped with the reason, never as passed.
CANNOT: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    args = [a for p in PROFILES for a in ("--profile", p)] + [a for b in BROWSERS for a in ("--browser", b)]
    return run_matrix(tmp_path_factory.mktemp("impaired"), "impaired", NIGHTLY, timeout_s=1800, workers=2,
                      args=args)["_run"]


def test_every_row_ran_under_each_impaired_profile(run):
    rows = yaml.safe_load(NIGHTLY.read_text())["scenarios"]
    assert set(PROFILES) <= set(yaml.safe_load(NIGHTLY.read_text())["profiles"])
    cells = {(c["browser"], c["profile"], c["scenario"]): c for c in run["cells"]}
    missing = [(b, p, r) for b in BROWSERS for p in PROFILES for r in rows if (b, p, r) not in cells]
    assert not missing, missing
    errors = {k: c["reason"] for k, c in cells.items() if c["status"] == "error"}
    assert not errors, errors


def test_each_verdict_states_its_proof_beyond_the_page(run):
    for c in run["cells"]:
        key = (c["browser"], c["profile"], c["scenario"])
        if c["status"] == "skipped":
            assert (c["browser"], c["scenario"]) in CANNOT and c["reason"], (key, c["reason"])
            continue
        assert c["proofs"], key
        bys = {p["by"] for p in c["proofs"]}
        assert bys & {"far-end", "wire"}, (key, c["status"], bys)
        if c["status"] in ("supported", "degraded"):
            assert all(p["ok"] for p in c["proofs"]) and set(c["proven_by"]) & {"far-end", "wire"}, key
        if c["status"] == "degraded":
            assert c["reason"], key
        if c["status"] == "failed":  # a finding: the proof that did not hold is kept, with its figures
            bad = [p for p in c["proofs"] if not p["ok"]]
            assert bad and bad[0]["claim"] in c["reason"], (key, c["reason"])
