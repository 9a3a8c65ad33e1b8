"""The seed's table as a specification: a claims file is validated, and the report prints the
vendor's words beside each measured cell and flags where they disagree."""

from pathlib import Path

import pytest

from harness.matrix import MatrixError, load
from harness.scenarios import SCENARIOS
from reports.claims import differs, expects
from reports.html import write_html
from reports.results import CellResult, RunResult, Status

ROOT = Path(__file__).resolve().parents[1]


def test_the_seed_table_loads_with_the_sdks_matrix():
    m = load(ROOT / "matrices" / "sdks.yaml", known_scenarios=list(SCENARIOS))
    rows = m.claims["plivo"]["rows"]
    assert rows["quality-warnings"] == {"chromium": "Supported", "firefox": "Supported", "webkit": "Not supported"}
    assert rows["devices"]["firefox"] == "Not Supported"
    perf = m.claims["plivo"]["performance"]
    assert perf["cpu_call_pct"]["chromium"] == "Max 7%" and perf["rtt_ms"]["webkit"] == "150.48ms, 100.28ms"


def test_claim_words_are_judged_only_when_plain():
    assert expects("Supported") is True and expects("Not Supported") is False
    assert expects("Rings only when the browser is brought to the foreground") is None
    assert differs("Supported", "failed") and differs("Not supported", "supported")
    assert not differs("Supported", "degraded") and not differs("Supported", "error")


@pytest.mark.parametrize("claims, message", [
    ("{nope: x.yaml}", r"claims.nope: no SDK of the matrix is named 'nope'"),
    ("{plivo: missing.yaml}", r"claims.plivo: .*missing.yaml"),
    ("{plivo: c.yaml}", r"rows.calls: unknown scenario"),  # c.yaml names a row that is no scenario
    ("{plivo: p.yaml}", r"performance.cpu: unknown metric; use a results.json metric name"),
])
def test_bad_claims_name_the_field(tmp_path, claims, message):
    (tmp_path / "c.yaml").write_text("source: s\nrows: {calls: {chromium: Supported}}\n")
    (tmp_path / "p.yaml").write_text("source: s\nrows: {mute: {chromium: Supported}}\nperformance: {cpu: {chromium: 7%}}\n")
    f = tmp_path / "m.yaml"
    f.write_text(f"sdks: [plivo]\nbrowsers: [chromium]\nprofiles: [ideal]\nscenarios: [mute]\nclaims: {claims}\n")
    with pytest.raises(MatrixError, match=message):
        load(f, known_scenarios=list(SCENARIOS))


def test_report_prints_the_claim_verbatim_and_flags_a_difference(tmp_path):
    cell = lambda scenario, status: CellResult(id=f"plivo-firefox-ideal-{scenario}", sdk="plivo", browser="firefox",  # noqa: E731
                                               profile="ideal", scenario=scenario, feature=SCENARIOS[scenario],
                                               status=status)
    run = RunResult(rtcmatrix_version="t", matrix="m", started_at=0,
                    claims={"plivo": {"source": "Plivo FAQ <table 1>", "rows": {
                        "quality-warnings": {"firefox": "Supported"}, "mute": {"firefox": "Supported"}}}},
                    cells=[cell("quality-warnings", Status.not_supported), cell("mute", Status.supported)])
    html = write_html(run, tmp_path / "r.html").read_text()
    assert "Plivo FAQ &lt;table 1&gt; says: Supported (differs from what was measured)" in html
    assert html.count("differs from what was measured") == 1


def test_report_prints_the_vendors_figures_beside_the_measured_ones(tmp_path):
    from reports.results import Metrics

    run = RunResult(rtcmatrix_version="t", matrix="m", started_at=0,
                    claims={"plivo": {"source": "Plivo FAQ", "rows": {"mute": {"chromium": "Supported"}},
                                      "performance": {"cpu_call_pct": {"chromium": "Max 7% <on call>"}}}},
                    cells=[CellResult(id="plivo-chromium-ideal-mute", sdk="plivo", browser="chromium", profile="ideal",
                                      scenario="mute", feature=SCENARIOS["mute"], status=Status.supported,
                                      metrics=Metrics(cpu_call_pct=23.4))])
    html = write_html(run, tmp_path / "r.html").read_text()
    row = html[html.index("CPU on call, max"):]
    row = row[:row.index("</tr>")]
    assert "23.4" in row and "Plivo FAQ says: Max 7% &lt;on call&gt;" in row


def test_expect_bad_input_is_one_message_before_the_run(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    runner = CliRunner()
    got = runner.invoke(app, ["run", "--expect", "plivo=matrices/claims/plivo-seed.yaml", "--out", str(tmp_path / "o")])
    assert got.exit_code == 2 and "--expect plivo=" in got.output and "no SDK named 'plivo'" in got.output
    bad = tmp_path / "c.yaml"
    bad.write_text("source: x\nrows: {no-such-row: {chromium: Supported}}\n")
    got = runner.invoke(app, ["run", "--expect", str(bad), "--out", str(tmp_path / "o")])
    assert got.exit_code == 2 and "rows.no-such-row: unknown scenario" in got.output, got.output
    assert not (tmp_path / "o").exists()  # nothing started


def test_disagreements_are_exactly_the_contradicted_cells():
    from reports.claims import disagreements
    from reports.results import CellResult, RunResult, Status

    def cell(browser, scenario, status):
        return CellResult(id=f"{browser}-{scenario}", sdk="plivo", browser=browser, profile="ideal", scenario=scenario,
                          feature=scenario, status=status)

    run = RunResult(rtcmatrix_version="t", matrix="m", started_at=0, cells=[
        cell("chromium", "dtmf", Status.supported), cell("firefox", "dtmf", Status.failed),
        cell("firefox", "devices", Status.supported), cell("webkit", "dtmf", Status.error),
        cell("chromium", "background", Status.degraded), cell("chromium", "interruption", Status.failed)])
    claims = {"plivo": {"rows": {"dtmf": {"chromium": "Supported", "firefox": "Supported", "webkit": "Supported"},
                                 "devices": {"firefox": "Not Supported"}, "background": {"chromium": "Call continues"},
                                 "interruption": {"chromium": "Both calls happen in parallel."}}}}
    assert sorted(c.id for c, _ in disagreements(run, claims)) == ["chromium-interruption", "firefox-devices",
                                                                   "firefox-dtmf"]
    assert disagreements(run, {"other": claims["plivo"]}) == []
