"""docs/ci.md is a working pipeline: its workflow parses, and every rtcmatrix command and option it
calls exists in the CLI (a renamed flag breaks this test, not a user's nightly job)."""

import re
import shlex
from pathlib import Path

import typer.main
import yaml

from harness.cli import app
from reports.compare import load_rules

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"
MAKEFILE = DOC.parents[1] / "Makefile"


def _blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


def _runs(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def test_the_workflow_has_shards_artifacts_a_merge_a_schedule_and_a_gate():
    workflow = yaml.safe_load(_blocks()[0])
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"]
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    assert shard["strategy"]["matrix"]["shard"] == [1, 2, 3, 4] and merge["needs"] == "shard"
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in shard["steps"])
    assert any(s.get("uses", "").startswith("actions/download-artifact") for s in merge["steps"])
    runs = " ".join(_runs(workflow))
    for needed in ("rtcmatrix run", "--shard", "rtcmatrix merge", "rtcmatrix compare"):
        assert needed in runs


def test_every_command_and_option_it_calls_exists():
    cli = typer.main.get_command(app)
    targets = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE.read_text(), re.M))
    called = []
    for script in _runs(yaml.safe_load(_blocks()[0])):
        for line in re.split(r"&&|\n", re.sub(r"\$\{\{[^}]*\}\}", "1", script)):  # a `run: |` is one command a line
            words = shlex.split(line.replace(">>", " "))
            if words and words[0] == "make":
                assert set(words[1:]) <= targets, f"make {words[1:]}: not a Makefile target"
            for n, w in enumerate(words):
                if not w.endswith("rtcmatrix"):
                    continue
                command = cli.commands.get(words[n + 1])
                assert command is not None, f"rtcmatrix {words[n + 1]}: no such command"
                known = {o for p in command.params for o in p.opts}
                for flag in (x.split("=")[0] for x in words[n + 2:] if x.startswith("--")):
                    assert flag in known, f"rtcmatrix {words[n + 1]} {flag}: no such option"
                called.append(words[n + 1])
    assert {"run", "merge", "compare", "doctor", "history", "trend"} <= set(called)


def test_the_rules_example_is_valid(tmp_path: Path):
    rules = tmp_path / "gate.yaml"
    rules.write_text(_blocks()[1])
    loaded = load_rules(rules)
    assert loaded.behaviour_changes == "fail" and loaded.tolerances()["rtt_ms"] is None
