"""A vendor's published compatibility table, as a specification to measure against.

A claims file transcribes a vendor's tables (e.g. the seed FAQ's two for plivo-browser-sdk): per
row (scenario) and column (browser), the vendor's words. The report prints those words beside the
measured cell, verbatim, and flags the cell where what was measured disagrees with a claim that
says plainly "Supported" or "Not supported". It never replaces a measurement by a claim.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from impairments.profile import format_validation_error, read_yaml


class ClaimsError(ValueError):
    pass


class Claims(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, description="where the table comes from, shown in the report")
    columns: dict[str, str] = {}  # our browser column -> the vendor's name for it
    rows: dict[str, dict[str, str]] = Field(min_length=1)  # scenario -> browser -> the vendor's words
    # The vendor's performance table: a results.json metric (e.g. cpu_call_pct) -> browser -> its
    # words, printed beside the measured figure (never compared: the words carry their own units).
    performance: dict[str, dict[str, str]] = {}


def load_claims(path: Path, scenarios: list[str] | None = None, browsers: list[str] | None = None) -> Claims:
    raw = read_yaml(path, "claims file", ClaimsError, "; see matrices/claims/plivo-seed.yaml")
    try:
        claims = Claims.model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise ClaimsError(format_validation_error(err, str(path))) from None
    for row, cols in claims.rows.items():
        if scenarios is not None and row not in scenarios:
            raise ClaimsError(f"{path}: rows.{row}: unknown scenario; known: {', '.join(scenarios)}")
        for col in cols:
            if browsers is not None and col not in browsers:
                raise ClaimsError(f"{path}: rows.{row}.{col}: unknown browser; known: {', '.join(browsers)}")
    from reports.results import Metrics

    for metric, cols in claims.performance.items():
        if metric not in Metrics.model_fields:
            raise ClaimsError(f"{path}: performance.{metric}: unknown metric; use a results.json metric name "
                              "such as cpu_call_pct, mem_idle_pss_mb, rtt_ms (see reports/results.py)")
        for col in cols:
            if browsers is not None and col not in browsers:
                raise ClaimsError(f"{path}: performance.{metric}.{col}: unknown browser; known: {', '.join(browsers)}")
    return claims


def expects(words: str) -> bool | None:
    """True: the claim says it works; False: it says it does not; None: words to read, not to judge."""
    w = words.strip().lower()
    if w.startswith("not supported"):
        return False
    if w.startswith(("supported", "call continues", "both calls happen")):
        return True
    return None


def differs(words: str | None, status: str) -> bool:
    """Whether a measured status contradicts the claim (failed or not-supported against
    "Supported"; supported or degraded against "Not supported")."""
    want = expects(words) if words else None
    if want is None or status in ("error", "skipped", "interrupted"):
        return False
    return want != (status in ("supported", "degraded"))


def disagreements(run, claims: dict[str, dict]) -> list[tuple[object, str]]:
    """(cell, the claim's words) for every cell whose measured status contradicts its SDK's claims
    (`claims`: SDK -> Claims as a dict)."""
    out = []
    for cell in run.cells:
        words = (((claims.get(cell.sdk) or {}).get("rows") or {}).get(cell.scenario) or {}).get(cell.browser)
        if differs(words, cell.status.value):
            out.append((cell, words))
    return out
