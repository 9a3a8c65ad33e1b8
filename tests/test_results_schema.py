"""results.json's JSON Schema: the file in the repo is what the models generate, and it rejects
what the models reject (real runs are validated against it in tests/test_run_e2e.py)."""

import json

import jsonschema
import pytest

from reports.results import SCHEMA_FILE, SCHEMA_VERSION, CellResult, Metrics, Proof, RunResult, json_schema


def _run() -> dict:
    cell = CellResult(id="reference-chromium-ideal-outbound-call", browser="chromium", profile="ideal",
                      scenario="outbound-call", feature="make call", status="supported", proven_by=["far-end"],
                      proofs=[Proof(by="far-end", claim="the far end answered this call", ok=True)],
                      metrics=Metrics(rtt_ms=2.0, wire_jitter_ms=0.4, cpu_call_pct=31.5))
    return json.loads(RunResult(rtcmatrix_version="0.1.0", matrix="m", started_at=1.0, cells=[cell]).model_dump_json())


def test_the_schema_in_the_repo_is_the_models_schema():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "run: python -m reports.results --schema"
    assert json_schema()["$id"].endswith(f"results-v{SCHEMA_VERSION}.json")


def test_a_run_validates_and_a_broken_one_does_not():
    schema = json.loads(SCHEMA_FILE.read_text())
    run = _run()
    jsonschema.validate(run, schema)
    for broken in ({**run["cells"][0], "status": "works"},
                   {**run["cells"][0], "metrics": {**run["cells"][0]["metrics"], "cpu_call_pct": "high"}},
                   {k: v for k, v in run["cells"][0].items() if k != "browser"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**run, "cells": [broken]}, schema)
