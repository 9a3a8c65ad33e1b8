"""Named presets, and the one way to turn a user's `--profile` argument into conditions:
a fixed `Profile`, or a `Schedule` when the file has `steps:` (or `ramp:`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Union

import yaml
from pydantic import ValidationError

from impairments.profile import Profile, ProfileError, format_validation_error, profile_from_mapping, read_yaml
from impairments.schedule import Schedule

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
Conditions = Union[Profile, Schedule]


def conditions_from_mapping(data: object, where: str) -> Conditions:
    if isinstance(data, dict) and ("steps" in data or "ramp" in data):
        try:
            return Schedule.model_validate(data)
        except ValidationError as err:
            raise ProfileError(format_validation_error(err, where)) from None
    return profile_from_mapping(data, where)


@functools.cache
def _preset_bodies() -> dict[str, dict]:
    return {name: {"name": name, **(body or {})} for name, body in yaml.safe_load(PRESETS_FILE.read_text()).items()}


def _is_schedule(body: dict) -> bool:
    return "steps" in body or "ramp" in body


@functools.cache
def fixed_presets() -> dict[str, Profile]:
    """The presets that are one fixed profile (what schedule steps may name)."""
    return {name: profile_from_mapping(body, f"{PRESETS_FILE}:{name}")
            for name, body in _preset_bodies().items() if not _is_schedule(body)}


@functools.cache
def presets() -> dict[str, Conditions]:
    fixed = fixed_presets()
    return {name: fixed.get(name) or conditions_from_mapping(body, f"{PRESETS_FILE}:{name}")
            for name, body in _preset_bodies().items()}


def load_conditions_file(path: Path) -> Conditions:
    data = read_yaml(path, "profile file")
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": path.stem}
    return conditions_from_mapping(data, str(path))


def resolve(spec: str, relative_to: Path | None = None) -> Conditions:
    """A preset name, or a path to a user's YAML profile or schedule."""
    if spec in presets():
        return presets()[spec]
    path = Path(spec)
    if not path.is_absolute() and relative_to is not None and (relative_to / path).exists():
        path = relative_to / path
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ProfileError(f"profile file {spec!r} does not exist")
        return load_conditions_file(path)
    raise ProfileError(f"unknown profile {spec!r}: use a preset ({', '.join(presets())}) "
                       "or a path to a YAML profile file")
