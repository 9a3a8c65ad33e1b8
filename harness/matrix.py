"""Matrix definitions (YAML) and the cells they expand to: SDK x browser x profile x scenario."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.engines.base import BrowserSpec
from harness.sdks import BUILTIN, WORKAROUNDS, Sdk

from impairments.presets import Conditions, resolve
from impairments.profile import ProfileError, format_validation_error, read_yaml

MATRICES = Path(__file__).resolve().parents[1] / "matrices"
DEFAULT_MATRIX = MATRICES / "default.yaml"


class MatrixError(ValueError):
    """The matrix file or a filter is invalid; the message names the field and the fix."""


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    stats_seconds: float = Field(default=6.0, gt=0, le=600, description="how long a call is measured")
    idle_seconds: float = Field(default=2.0, ge=0, le=600,
                                description="make call: how long the browser stays logged in before calling, "
                                            "so its idle CPU and memory are sampled; 0 skips it")
    connect_timeout_s: float = Field(default=20.0, gt=0, le=300)
    link_check_probes: int = Field(default=400, ge=0, le=100_000, description="0 turns the link check off")
    backend: str = Field(default="auto", pattern="^(auto|host|uml)$")
    break_: str = Field(default="", alias="break", pattern=r"^[a-z,-]*$",
                        description="disable one reference-SDK feature (e.g. dtmf), to show a probe can fail")
    audio: str = Field(default="pulse", pattern="^(pulse|fake)$",
                       description="pulse: a private audio server with virtual devices; fake: the engine's fake capture")
    page: dict[str, str | int | float | bool | dict] = Field(
        default={}, description="SDK options on the test page's URL (as an app configures its SDK), e.g. "
                                "{audioConstraints: {echoCancellation: false}}")
    r0: dict[str, float] = Field(default={}, description="the E-model's R0 per codec, e.g. {opus: 95} as Plivo "
                                                         "computes its MOS; G.107's 93.2 for a codec not named")

    @field_validator("r0")
    @classmethod
    def _r0_per_codec(cls, table: dict[str, float]) -> dict[str, float]:
        for codec, r0 in table.items():
            if not 50 <= r0 <= 120:
                raise ValueError(f"R0 for {codec!r} is {r0:g}; use a value from 50 to 120 (G.107's default is 93.2)")
        return {codec.lower(): r0 for codec, r0 in table.items()}


class Column(BaseModel):
    """A browser column: an engine, optionally with a device, a slow CPU or another binary."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    engine: str
    device: str | None = None
    cpu_throttle: float | None = Field(default=None, ge=1, le=20)
    executable: str | None = None
    channel: str | None = None
    driver: str | None = Field(default=None, pattern="^(playwright|webkitgtk)$")
    audio: str | None = Field(default=None, pattern="^(pulse|fake)$")


class SdkEntry(BaseModel):
    """A user's own SDK: its adapter, the scripts it needs before it, and its backend."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    base: str | None = None  # a built-in SDK this entry varies (e.g. plivo with a workaround)
    adapter: Path | None = None
    scripts: list[Path] = []
    backend: str = Field(default="reference", pattern="^(reference|sip)$")
    sip_domain: str | None = None
    workarounds: list[str] = []
    page: dict[str, str | int | float | bool | dict] = Field(
        default={}, description="this SDK's options on the test page's URL, over options.page "
                                "(e.g. {codecs: PCMU}, or {break: call} to show a probe fail)")


class MatrixFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "matrix"
    description: str = ""
    sdks: list[str | SdkEntry] = Field(default=["reference"], min_length=1)
    browsers: list[str | Column] = Field(min_length=1)
    profiles: list[str] = Field(min_length=1)
    scenarios: list[str] = Field(min_length=1)
    options: Options = Options()
    claims: dict[str, Path] = {}  # SDK -> a vendor's table to print beside ours (reports/claims.py)


@dataclass(frozen=True)
class Cell:
    browser: str
    profile: Conditions  # a fixed Profile, or a Schedule that runs during the cell
    scenario: str
    sdk: str = "reference"

    @property
    def id(self) -> str:
        base = f"{self.browser}-{self.profile.name}-{self.scenario}"
        return base if self.sdk == "reference" else f"{self.sdk}-{base}"


@dataclass
class Matrix:
    name: str
    path: Path
    browsers: list[str]
    profiles: list[Conditions]
    scenarios: list[str]
    options: Options
    specs: dict[str, BrowserSpec] = field(default_factory=dict)
    sdks: dict[str, Sdk] = field(default_factory=lambda: {"reference": BUILTIN["reference"]})
    claims: dict[str, dict] = field(default_factory=dict)  # SDK -> Claims as a dict

    def cells(self) -> list[Cell]:
        # Profile-major order: the lab changes conditions as rarely as possible.
        return [Cell(b, p, s, k) for p, k, b, s in
                itertools.product(self.profiles, self.sdks, self.browsers, self.scenarios)]


def load(path: Path, browsers: list[str] | None = None, profiles: list[str] | None = None,
         scenarios: list[str] | None = None, known_scenarios: list[str] | None = None,
         known_browsers: list[str] | None = None, executables: dict[str, str] | None = None,
         channels: dict[str, str] | None = None, sdks: list[str] | None = None) -> Matrix:
    """Read a matrix file and narrow it by the command line's filters."""
    raw = read_yaml(path, "matrix file", MatrixError, "; pass --matrix FILE")
    try:
        spec = MatrixFile.model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise MatrixError(format_validation_error(err, str(path))) from None

    specs = _columns(path, spec, known_browsers)
    # A filter replaces the file's list: it may name a column of the file or any known engine.
    chosen_browsers = browsers or list(specs)
    chosen_scenarios = scenarios or spec.scenarios
    for v in chosen_browsers:
        if v not in specs and (known_browsers is None or v in known_browsers):
            specs[v] = BrowserSpec(name=v, engine=v, audio=spec.options.audio)
        elif v not in specs:
            raise MatrixError(f"{path}: browsers: unknown browser {v!r}; known: "
                              f"{', '.join(dict.fromkeys([*specs, *(known_browsers or [])]))}")
    for v in chosen_scenarios:
        if known_scenarios is not None and v not in known_scenarios:
            raise MatrixError(f"{path}: scenarios: unknown scenario {v!r}; known: {', '.join(known_scenarios)}")
    for flag, given, attr in (("--browser-path", executables, "executable"), ("--browser-channel", channels, "channel")):
        for name, value in (given or {}).items():
            targets = [n for n, s in specs.items() if name in (n, s.engine)]
            if not targets:
                raise MatrixError(f"{flag} {name}={value}: no browser column or engine named {name!r}")
            for n in targets:
                specs[n] = dataclasses.replace(specs[n], **{attr: value})
    chosen_profiles = []
    for spec_name in profiles or spec.profiles:
        try:
            chosen_profiles.append(resolve(spec_name, relative_to=path.parent))
        except ProfileError as err:
            raise MatrixError(f"profiles: {err}") from None
    names = [p.name for p in chosen_profiles]
    if len(set(names)) != len(names):
        raise MatrixError(f"profiles: two profiles share a name ({', '.join(names)}); give each a unique 'name'")
    known_sdks = _sdks(path, spec)
    for v in sdks or []:
        if v not in known_sdks:
            raise MatrixError(f"--sdk {v}: unknown SDK; known: {', '.join(known_sdks)}")
    chosen_sdks = {n: known_sdks[n] for n in (sdks or known_sdks)}
    return Matrix(spec.name, path, chosen_browsers, chosen_profiles, chosen_scenarios, spec.options,
                  {n: specs[n] for n in chosen_browsers}, chosen_sdks, _claims(path, spec, known_scenarios, known_sdks))


def _claims(path: Path, spec: MatrixFile, known_scenarios: list[str] | None, known_sdks: dict) -> dict[str, dict]:
    from reports.claims import ClaimsError, load_claims

    out = {}
    for sdk, file in spec.claims.items():
        if sdk not in known_sdks:
            raise MatrixError(f"{path}: claims.{sdk}: no SDK of the matrix is named {sdk!r}; known: {', '.join(known_sdks)}")
        full = file if file.is_absolute() else (path.parent / file).resolve()
        try:
            out[sdk] = load_claims(full, known_scenarios).model_dump()
        except ClaimsError as err:
            raise MatrixError(f"{path}: claims.{sdk}: {err}") from None
    return out


def _sdks(path: Path, spec: MatrixFile) -> dict[str, Sdk]:
    """The matrix's SDKs: a built-in by name, or a user's adapter file (paths relative to the matrix)."""
    out: dict[str, Sdk] = {}
    for n, entry in enumerate(spec.sdks):
        if isinstance(entry, str):
            if entry not in BUILTIN:
                raise MatrixError(f"{path}: sdks[{n}]: unknown SDK {entry!r}; built in: {', '.join(BUILTIN)}, "
                                  "or give {name, adapter, scripts, backend} for your own")
            sdk = BUILTIN[entry]
        else:
            if entry.base is not None and entry.base not in BUILTIN:
                raise MatrixError(f"{path}: sdks[{n}].base: unknown SDK {entry.base!r}; built in: {', '.join(BUILTIN)}")
            base = BUILTIN.get(entry.base or entry.name)
            if entry.adapter is None and base is None:
                raise MatrixError(f"{path}: sdks[{n}].adapter: {entry.name!r} is not built in; give its adapter file")
            rel = lambda p: p if p.is_absolute() else (path.parent / p).resolve()  # noqa: E731
            bad = [w for w in entry.workarounds if w not in WORKAROUNDS]
            if bad:
                raise MatrixError(f"{path}: sdks[{n}].workarounds: unknown {', '.join(map(repr, bad))}; "
                                  f"known: {', '.join(WORKAROUNDS)}")
            fields = {"name": entry.name, "workarounds": tuple(entry.workarounds)}
            if base is None or "backend" in entry.model_fields_set:
                fields["backend"] = entry.backend
            if entry.adapter is not None:
                fields |= {"adapter": rel(entry.adapter), "scripts": tuple(rel(p) for p in entry.scripts)}
            if entry.sip_domain:
                fields["sip_domain"] = entry.sip_domain
            if entry.page:
                fields["page"] = dict(entry.page)
            sdk = base.model_copy(update=fields) if base else Sdk(**fields)
        if sdk.name in out:
            raise MatrixError(f"{path}: sdks[{n}]: two SDKs are named {sdk.name!r}")
        missing = [str(p) for p in sdk.missing()]
        if missing and sdk.name not in BUILTIN:
            raise MatrixError(f"{path}: sdks[{n}]: {sdk.name}: no such file: {', '.join(missing)}")
        out[sdk.name] = sdk
    return out


def _columns(path: Path, spec: MatrixFile, known_engines: list[str] | None) -> dict[str, BrowserSpec]:
    columns: dict[str, BrowserSpec] = {}
    for n, entry in enumerate(spec.browsers):
        column = Column(name=entry, engine=entry) if isinstance(entry, str) else entry
        if known_engines is not None and column.engine not in known_engines:
            what = "browser" if isinstance(entry, str) else "engine"
            raise MatrixError(f"{path}: browsers[{n}]: unknown {what} {column.engine!r}; known: {', '.join(known_engines)}")
        if column.name in columns:
            raise MatrixError(f"{path}: browsers[{n}]: two columns are named {column.name!r}; give each a unique 'name'")
        columns[column.name] = BrowserSpec(**{**column.model_dump(exclude={"audio"}),
                                              "audio": column.audio or spec.options.audio})
    return columns
