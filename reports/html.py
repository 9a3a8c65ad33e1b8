"""The HTML matrix: a feature table and a performance table per profile, like the SDK FAQs users
already read, plus the link as configured and as measured, and every cell's proofs."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from reports import charts
from reports.results import RunResult
from reports.view import MatrixView, per_sdk

TEMPLATES = Path(__file__).with_name("templates")


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["when"] = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"
    env.filters["num"] = lambda v, fmt="{:.1f}": "-" if v is None else fmt.format(v)
    # The cell's label already says "Not supported" or "Skipped": do not repeat it before the reason.
    env.filters["unlabelled"] = lambda reason: re.sub(r"^(Not supported|Skipped): ", "", reason or "")
    return env


def write_html(run: RunResult, path: Path) -> Path:
    view = MatrixView(run)

    def rel(target: str) -> str:
        return os.path.relpath(target, path.parent)

    html = _env().get_template("report.html.j2").render(run=run, view=view, views=per_sdk(run), rel=rel,
                                                        across=charts.across_browsers, timeline=charts.cell_timeline,
                                                        link_chart=charts.link_configured_and_measured)
    path.write_text(html)
    return path
