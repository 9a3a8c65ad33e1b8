"""Named presets, and the one way to turn a user's `--profile` argument into a `Profile`."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from impairments.profile import Profile, ProfileError, load_profile_file, profile_from_mapping

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


@functools.cache
def presets() -> dict[str, Profile]:
    data = yaml.safe_load(PRESETS_FILE.read_text())
    return {name: profile_from_mapping({"name": name, **(body or {})}, f"{PRESETS_FILE}:{name}")
            for name, body in data.items()}


def resolve(spec: str, relative_to: Path | None = None) -> Profile:
    """A preset name, or a path to a user's YAML profile."""
    if spec in presets():
        return presets()[spec]
    path = Path(spec)
    if not path.is_absolute() and relative_to is not None and (relative_to / path).exists():
        path = relative_to / path
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ProfileError(f"profile file {spec!r} does not exist")
        return load_profile_file(path)
    raise ProfileError(f"unknown profile {spec!r}: use a preset ({', '.join(presets())}) "
                       "or a path to a YAML profile file")
