"""A Markdown summary of a run, for CI job pages and pull-request comments."""

from __future__ import annotations

from pathlib import Path

from reports.results import RunResult
from reports.view import MatrixView


def markdown(run: RunResult) -> str:
    view = MatrixView(run)
    lines = [f"# rtcmatrix: {run.matrix}", ""]
    counts = ", ".join(f"{n} {k}" for k, n in view.counts().items() if n)
    lines += [f"Lab backend: {run.lab.get('backend', '-')}. Cells: {counts}."
              + (" **Interrupted: incomplete.**" if run.interrupted else ""), ""]
    for profile in view.profiles:
        lines += [f"## {profile}", "", "| Feature | " + " | ".join(view.browsers) + " |",
                  "|---|" + "---|" * len(view.browsers)]
        for feature in view.features:
            cells = [view.cell(profile, feature, b) for b in view.browsers]
            shown = [f"{view.label(c)}" + (f" ({', '.join(c.proven_by)})" if c and c.proven_by else "") for c in cells]
            lines.append(f"| {feature} | " + " | ".join(shown) + " |")
        lines += ["", "| Metric | " + " | ".join(view.browsers) + " |", "|---|" + "---|" * len(view.browsers)]
        for label, attr, fmt in view.rows:
            lines.append(f"| {label} | " + " | ".join(view.performance(profile, b, attr, fmt) for b in view.browsers) + " |")
        lines.append("")
    return "\n".join(lines)


def write_markdown(run: RunResult, path: Path) -> Path:
    path.write_text(markdown(run))
    return path
