"""Matrix definitions (YAML) and the cells they expand to: browser x profile x scenario."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from impairments.presets import Conditions, resolve
from impairments.profile import ProfileError, format_validation_error, read_yaml

MATRICES = Path(__file__).resolve().parents[1] / "matrices"
DEFAULT_MATRIX = MATRICES / "default.yaml"


class MatrixError(ValueError):
    """The matrix file or a filter is invalid; the message names the field and the fix."""


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stats_seconds: float = Field(default=6.0, gt=0, le=600, description="how long a call is measured")
    connect_timeout_s: float = Field(default=20.0, gt=0, le=300)
    link_check_probes: int = Field(default=400, ge=0, le=100_000, description="0 turns the link check off")
    backend: str = Field(default="auto", pattern="^(auto|host|uml)$")


class MatrixFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "matrix"
    description: str = ""
    browsers: list[str] = Field(min_length=1)
    profiles: list[str] = Field(min_length=1)
    scenarios: list[str] = Field(min_length=1)
    options: Options = Options()


@dataclass(frozen=True)
class Cell:
    browser: str
    profile: Conditions  # a fixed Profile, or a Schedule that runs during the cell
    scenario: str

    @property
    def id(self) -> str:
        return f"{self.browser}-{self.profile.name}-{self.scenario}"


@dataclass
class Matrix:
    name: str
    path: Path
    browsers: list[str]
    profiles: list[Conditions]
    scenarios: list[str]
    options: Options

    def cells(self) -> list[Cell]:
        # Profile-major order: the lab changes conditions as rarely as possible.
        return [Cell(b, p, s) for p, b, s in itertools.product(self.profiles, self.browsers, self.scenarios)]


def load(path: Path, browsers: list[str] | None = None, profiles: list[str] | None = None,
         scenarios: list[str] | None = None, known_scenarios: list[str] | None = None,
         known_browsers: list[str] | None = None) -> Matrix:
    """Read a matrix file and narrow it by the command line's filters."""
    raw = read_yaml(path, "matrix file", MatrixError, "; pass --matrix FILE")
    try:
        spec = MatrixFile.model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise MatrixError(format_validation_error(err, str(path))) from None

    # A filter replaces the file's list: it may name anything valid, listed in the file or not.
    chosen_browsers = browsers or spec.browsers
    chosen_scenarios = scenarios or spec.scenarios
    for field, values, known in (("browsers", chosen_browsers, known_browsers),
                                 ("scenarios", chosen_scenarios, known_scenarios)):
        for v in values:
            if known is not None and v not in known:
                raise MatrixError(f"{path}: {field}: unknown {field[:-1]} {v!r}; known: {', '.join(known)}")
    chosen_profiles = []
    for spec_name in profiles or spec.profiles:
        try:
            chosen_profiles.append(resolve(spec_name, relative_to=path.parent))
        except ProfileError as err:
            raise MatrixError(f"profiles: {err}") from None
    names = [p.name for p in chosen_profiles]
    if len(set(names)) != len(names):
        raise MatrixError(f"profiles: two profiles share a name ({', '.join(names)}); give each a unique 'name'")
    return Matrix(spec.name, path, chosen_browsers, chosen_profiles, chosen_scenarios, spec.options)
