"""Bad input gets one clear message naming the field, and no traceback."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.engines import ENGINES
from harness.cli import app
from harness.matrix import DEFAULT_MATRIX, MatrixError, load
from harness.scenarios import SCENARIOS

runner = CliRunner()


def test_default_matrix_expands_profile_major():
    m = load(DEFAULT_MATRIX, known_scenarios=list(SCENARIOS), known_browsers=list(ENGINES))
    ids = [c.id for c in m.cells()]
    assert ids[:2] == ["chromium-ideal-outbound-call", "chromium-ideal-inbound-call"]
    assert len(ids) == 3 * 2 * len(SCENARIOS) and ids[-1] == "webkit-3g-page-load"
    assert set(m.scenarios) == set(SCENARIOS) and set(m.browsers) == {"chromium", "firefox", "webkit"}


def test_browser_columns_with_options(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("browsers: [chromium, {name: chromium-pixel7, engine: chromium, device: 'Pixel 7', cpu_throttle: 4},"
                 " {name: ff-fake, engine: firefox, audio: fake}]\nprofiles: [ideal]\nscenarios: [outbound-call]\n")
    m = load(f, known_scenarios=list(SCENARIOS), known_browsers=list(ENGINES), executables={"firefox": "/opt/ff"})
    assert m.browsers == ["chromium", "chromium-pixel7", "ff-fake"]
    assert m.specs["chromium-pixel7"].device == "Pixel 7" and m.specs["chromium-pixel7"].cpu_throttle == 4
    assert m.specs["chromium"].audio == "pulse" and m.specs["ff-fake"].audio == "fake"
    assert m.specs["ff-fake"].executable == "/opt/ff" and m.specs["chromium"].executable is None
    assert [c.id for c in m.cells()][1] == "chromium-pixel7-ideal-outbound-call"


@pytest.mark.parametrize("browsers, message", [
    ("[{name: x, engine: netscape}]", "browsers[0]: unknown engine 'netscape'"),
    ("[chromium, {name: chromium, engine: chromium}]", "two columns are named 'chromium'"),
    ("[{name: 'a b', engine: chromium}]", "browsers.0.Column.name"),
    ("[{name: x, engine: chromium, cpu_throttle: 0}]", "cpu_throttle"),
])
def test_bad_columns_name_the_field(tmp_path, browsers, message):
    f = tmp_path / "m.yaml"
    f.write_text(f"browsers: {browsers}\nprofiles: [ideal]\nscenarios: [outbound-call]\n")
    with pytest.raises(MatrixError, match=re.escape(message)):
        load(f, known_scenarios=list(SCENARIOS), known_browsers=list(ENGINES))


def test_filters_narrow_and_validate(tmp_path):
    m = load(DEFAULT_MATRIX, profiles=["lossy-5"], known_scenarios=list(SCENARIOS), known_browsers=list(ENGINES))
    assert [p.name for p in m.profiles] == ["lossy-5"]
    with pytest.raises(MatrixError, match="unknown browser 'netscape'"):
        load(DEFAULT_MATRIX, browsers=["netscape"], known_browsers=list(ENGINES))


@pytest.mark.parametrize("body, message", [
    ("browsers: chromium\nprofiles: [ideal]\nscenarios: [outbound-call]\n", "browsers: Input should be a valid list"),
    ("browsers: [chromium]\nprofiles: [ideal]\n", "scenarios: Field required"),
    ("browsers: [chromium]\nprofiles: [ideal]\nscenarios: [x]\noptions: {stats_seconds: -1}\n", "options.stats_seconds"),
    ("browsers: [chromium]\nprofiles: [ideal]\nscenarios: [x]\ncolour: blue\n", "colour: unknown field"),
    ("browsers: [chromium\n", "not valid YAML"),
])
def test_matrix_errors_name_the_field(tmp_path: Path, body, message):
    f = tmp_path / "m.yaml"
    f.write_text(body)
    with pytest.raises(MatrixError, match=message.replace("[", r"\[")):
        load(f)


def test_cli_bad_input_is_one_message_and_exit_2(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("both: {loss_pct: 150}\n")
    for args, needle in ((["run", "--profile", str(bad)], "loss_pct"),
                         (["run", "--browser", "netscape"], "unknown browser"),
                         (["run", "--matrix", str(tmp_path / "none.yaml")], "cannot read the matrix file"),
                         (["run", "--backend", "vmware"], "--backend"),
                         (["run", "--browser-path", "firefox"], "give NAME=VALUE"),
                         (["run", "--browser-path", "opera=/x"], "no browser column or engine named 'opera'")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert needle in result.output and "Traceback" not in result.output


def test_profiles_lists_numbers_and_sources():
    result = runner.invoke(app, ["profiles"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Network Link Conditioner" in result.output and "330kbit/s" in result.output


def test_not_root_is_one_message():
    import os
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to drop to nobody) and setpriv")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-m", "harness.cli", "run"], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[1])
    if "Permission denied" in r.stderr or "No module named" in r.stderr:
        pytest.skip("this Python is not usable by an unprivileged user here")
    assert r.returncode == 2, r.stderr
    assert "needs root" in r.stderr and "Traceback" not in r.stderr


def test_sdk_axis_expands_and_filters(tmp_path):
    own = tmp_path / "mine.js"
    own.write_text("window.rtcmatrixAdapter = {};")
    f = tmp_path / "m.yaml"
    f.write_text("sdks: [reference, jssip, {name: mine, adapter: mine.js, backend: sip}]\n"
                 "browsers: [chromium]\nprofiles: [ideal]\nscenarios: [outbound-call]\n")
    m = load(f, known_scenarios=list(SCENARIOS), known_browsers=list(ENGINES))
    assert list(m.sdks) == ["reference", "jssip", "mine"] and m.sdks["mine"].adapter == own
    assert [c.id for c in m.cells()] == ["chromium-ideal-outbound-call", "jssip-chromium-ideal-outbound-call",
                                         "mine-chromium-ideal-outbound-call"]
    assert list(load(f, sdks=["jssip"]).sdks) == ["jssip"]
    with pytest.raises(MatrixError, match=r"--sdk nope: unknown SDK; known: reference, jssip, mine"):
        load(f, sdks=["nope"])
    f.write_text("sdks: [reference, {name: reference-silent, base: reference, page: {break: call}}]\n"
                 "browsers: [chromium]\nprofiles: [ideal]\nscenarios: [outbound-call]\noptions: {page: {dscp: true}}\n")
    m = load(f, known_scenarios=list(SCENARIOS), known_browsers=list(ENGINES))
    assert m.sdks["reference-silent"].page == {"break": "call"} and m.sdks["reference"].page == {}
    assert m.sdks["reference-silent"].adapter == m.sdks["reference"].adapter


@pytest.mark.parametrize("sdks, message", [
    ("[nope]", r"sdks\[0\]: unknown SDK 'nope'; built in: reference, jssip"),
    ("[{name: mine}]", r"sdks\[0\].adapter: 'mine' is not built in; give its adapter file"),
    ("[{name: mine, adapter: gone.js}]", r"sdks\[0\]: mine: no such file: .*gone.js"),
    ("[{name: jssip, workarounds: [magic]}]", r"sdks\[0\].workarounds: unknown 'magic'"),
    ("[reference, reference]", r"sdks\[1\]: two SDKs are named 'reference'"),
])
def test_bad_sdks_name_the_field(tmp_path, sdks, message):
    f = tmp_path / "m.yaml"
    f.write_text(f"sdks: {sdks}\nbrowsers: [chromium]\nprofiles: [ideal]\nscenarios: [outbound-call]\n")
    with pytest.raises(MatrixError, match=message):
        load(f)
